"""``napari-rvae export atomai|hyperspy|decoder``: write results in the formats peers use."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.outputs import Output, add_overwrite_option

EXPORT_MARKER = "export.json"  # what a folder written by `export atomai|hyperspy` holds (io.outputs.MARKERS)


def add_export(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", metavar="FORMAT", required=True)

    a = sub.add_parser("atomai", help="AtomAI coordinate dictionary (coordinates.npz) and .npy window stack",
                       description="Write coordinates.npz ({frame: (N, 3) row, column, class}) and, with --movie "
                                   "and --window, windows.npy (N, w, w) with windows_com.npy, windows_frames.npy "
                                   "and windows_rows.npy.")
    a.add_argument("sites", type=Path, help="sites table (.csv or .parquet)")
    a.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    a.add_argument("--movie", type=Path, help="movie to cut the windows from (raw frames or a probability map)")
    a.add_argument("--channel", default=None, metavar="NAME|INDEX", help="channel of a multi-channel movie")
    a.add_argument("--window", type=int, help="window side in pixels (with --movie)")
    a.add_argument("--classes", type=int, nargs="*", default=None, help="keep only these classes in the windows")
    add_overwrite_option(a)
    a.set_defaults(_export_run=run_atomai, _output=Output("folder", holds="export", inputs=("sites", "movie")))

    h = sub.add_parser("hyperspy", help="latent maps and the sites table as HyperSpy signals (.hspy)",
                       description="Write sites.hspy and latent_map_<column>.hspy (frames × Y × X, nm when the "
                                   "movie is calibrated) through rosettasciio; needs the io extra.")
    h.add_argument("sites", type=Path, help="sites table with latent columns (.csv or .parquet)")
    h.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    h.add_argument("--movie", type=Path, help="the movie the sites come from (frame size and calibration)")
    h.add_argument("--channel", default=None, metavar="NAME|INDEX", help="channel of a multi-channel movie")
    h.add_argument("--shape", type=int, nargs=2, metavar=("Y", "X"), help="frame size in pixels, without --movie")
    h.add_argument("--columns", default=None, help="comma-separated columns to map (default: every latent)")
    h.add_argument("--step", type=int, default=1, help="map pixel step (default 1)")
    add_overwrite_option(h)
    h.set_defaults(_export_run=run_hyperspy, _output=Output("folder", holds="export", inputs=("sites", "movie")))

    d = sub.add_parser("decoder", help="a model's decoder as TorchScript (.pt) or ONNX (.onnx) plus a JSON",
                       description="Write the decoder (inputs z, [angle], [dx, dy], [classes] in the latents "
                                   "table's units; output windows) and FILE.json describing its inputs.")
    d.add_argument("model", type=Path, help="model folder (model.safetensors + model.json)")
    d.add_argument("-o", "--output", type=Path, required=True, help="decoder file: .pt (TorchScript) or .onnx")
    add_overwrite_option(d)
    d.set_defaults(_export_run=run_decoder, _output=Output("file", (".pt", ".onnx"), inputs=("model",)))


def run_export(args: argparse.Namespace) -> int:
    return args._export_run(args)


def _written_as_a_whole(args: argparse.Namespace, write) -> dict:
    """Run ``write(folder)`` into a staging folder that replaces ``-o`` when it succeeds (a re-export
    leaves nothing of the previous one); ``export.json`` lists what was written."""
    from .. import __version__
    from ..io.files import write_json
    from ..io.folders import replaced_folder

    with replaced_folder(args.output, markers=(EXPORT_MARKER,)) as stage:
        written = write(stage)
        write_json(stage / EXPORT_MARKER, {"format": args.what, "napari_rvae_version": __version__,
                                           "sites": str(args.sites), "movie": str(args.movie) if args.movie else None,
                                           "files": sorted(p.name for p in written.values())})
    return written


def _movie(path: Path, channel):
    from ..io.movie import select_movie

    return select_movie(path, channel)


def run_atomai(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io.sites import read_sites
    from .atomai import save_atomai

    sites = read_sites(args.sites)
    movie = None
    if args.movie is not None:
        movie = np.asarray(_movie(args.movie, args.channel).data, dtype=np.float32)
    options = {"classes": args.classes} if args.classes else {}
    counts = {}

    def write(folder):
        written = save_atomai(folder, sites, movie, args.window, **options)
        if "windows" in written:
            counts["windows"] = len(np.load(written["windows"], mmap_mode="r"))
        return written

    written = _written_as_a_whole(args, write)
    extra = f", {counts['windows']} windows" if counts else ""
    print(f"{len(sites)} sites{extra} -> {args.output}: {', '.join(p.name for p in written.values())}")
    return 0


def run_hyperspy(args: argparse.Namespace) -> int:
    from ..io.sites import read_sites
    from ..io.units import table_pixel_size_nm
    from .hyperspy import save_hyperspy

    sites = read_sites(args.sites)
    if args.movie is not None:
        movie = _movie(args.movie, args.channel)
        shape, pixel_nm = tuple(movie.data.shape[-2:]), movie.pixel_size_nm
    elif args.shape is not None:
        shape, pixel_nm = tuple(args.shape), table_pixel_size_nm(sites)
    else:
        raise ValueError("give the movie (--movie) or the frame size (--shape Y X)")
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    written = _written_as_a_whole(args, lambda folder: save_hyperspy(folder, sites, shape, columns=columns,
                                                                      pixel_size_nm=pixel_nm, step=args.step))
    print(f"{len(written)} HyperSpy signal(s) -> {args.output}: {', '.join(p.name for p in written.values())}")
    return 0


def run_decoder(args: argparse.Namespace) -> int:
    from ..vae.files import load_model
    from .decoder import export_decoder

    model = load_model(args.model)
    path, description = export_decoder(model, args.output)
    print(f"decoder -> {path} (inputs described in {description.name})")
    return 0
