"""The ``napari-rvae`` command line (DESIGN §4).

Each subcommand is a pair of functions, ``_add_NAME(parser)`` declaring its
options and ``_run_NAME(args)`` doing the work through the core; it is listed
once in ``COMMANDS`` with what it writes (an :class:`~napari_rvae.io.outputs.Output`),
which is checked before the command does any work. Errors print one clear line
on stderr: ``ValueError`` (bad input, a refused output, a diverged training) exits
with status 2, ``OSError`` (a full disk, a lost permission) and ``MemoryError`` with 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import __version__
from .cli_checks import check_analyze_options, check_detect_options, check_sample_size
from .display import usable_display
from .io.outputs import Output, add_overwrite_option, check_output, describe_os_error, keep_results, write_or_rescue
from .vae import commands as _vae  # torch is imported only when a VAE command runs
from .vae import train_command as _train  # likewise
from .analysis import commands as _analysis2  # likewise
from .export import commands as _export  # likewise
from .reproduce import commands as _reproduce  # likewise


# --------------------------------------------------------------------- info
_MOVIE_HELP = ("a movie or image file in any readable format; several files, a folder or a glob "
               "('scans/*.h5') open as one movie, one frame per file, in natural order")
_CHANNEL_HELP = "channel of a multi-channel file, by name (e.g. Phase, HAADF) or index; default: {}"


def _add_movie_arguments(p: argparse.ArgumentParser, default_channel: str) -> None:
    p.add_argument("movie", type=Path, nargs="+", help=_MOVIE_HELP)
    p.add_argument("--channel", default=None, metavar="NAME|INDEX", help=_CHANNEL_HELP.format(default_channel))
    p.add_argument("--register", action="store_true",
                   help="several files: remove drift between them (sub-pixel phase correlation; shifts in run.json)")


def _movie_source(paths: list[Path]) -> Path | list[Path]:
    return paths[0] if len(paths) == 1 else paths


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie", type=Path, nargs="+", help=_MOVIE_HELP)
    p.add_argument("--register", action="store_true", help="several files: register drift and report the shifts")


def _run_info(args: argparse.Namespace) -> int:
    from .io.movie import describe_movies, read_movie

    source = _movie_source(args.movie)
    movies = read_movie(source, register=args.register)
    print(describe_movies(movies, str(source) if isinstance(source, Path) else f"{len(source)} files"))
    print(describe_lattices(movies), flush=True)
    return 0


def describe_lattices(movies) -> str:
    """One line per channel: the atom lattice estimated from up to four of its frames (and the spacing
    in nm where the file is calibrated)."""
    import numpy as np

    from .detect.lattice import estimate_lattice

    lines = ["  atom lattice (estimated from the frames; detect, analyze and the docks derive their defaults from it):"]
    for i, movie in enumerate(movies):
        picks = np.unique(np.linspace(0, movie.n_frames - 1, min(4, movie.n_frames)).round().astype(int))
        frames = np.stack([movie.frame(int(t)) for t in picks])  # the frames it uses: a lazy movie stays on disk
        lattice = estimate_lattice(frames, max_frames=4)
        lattice.analysed = [int(picks[t]) for t in lattice.analysed]  # back to the movie's frame numbers
        text = lattice.summary()
        size = getattr(movie, "pixel_size_nm", None)
        if lattice.found and size:
            text += f"; {lattice.spacing * float(np.mean(size)):.4g} nm"
        lines.append(f"    {i}: {movie.channel or movie.name}: {text}")
    return "\n".join(lines)


# ------------------------------------------------------------------- sample
def _add_sample(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="sample name (see --list)")
    p.add_argument("-o", "--output", type=Path, help="output .npz file (data, scale, units, ground truth)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--frames", type=int, help="number of frames (movies)")
    p.add_argument("--size", type=int, help="image size in pixels (square)")
    p.add_argument(
        "--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
        help="any other generator parameter, VALUE as JSON (e.g. --set dose=20 --set grain=false)",
    )
    p.add_argument("--list", action="store_true", help="list the samples and their parameters, then exit")


def _run_sample(args: argparse.Namespace) -> int:
    import json
    import time

    from .synth import DESCRIPTIONS, SAMPLES, make_sample, sample_parameters, save_sample

    if args.list:
        for name in SAMPLES:
            defaults = ", ".join(f"{k}={v!r}" for k, v in sample_parameters(name).items())
            print(f"{name:15s} {DESCRIPTIONS[name]}\n{'':15s} parameters: {defaults}")
        return 0
    if not args.name:
        raise ValueError("give a sample NAME (or --list to see them)")
    if args.output is None:
        raise ValueError("give an output file with -o FILE.npz")
    params = {}
    if args.frames is not None:
        params["frames"] = args.frames
    if args.size is not None:
        params["size"] = args.size
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    if args.name in SAMPLES:
        allowed = sample_parameters(args.name)
        for flag in ("frames", "size"):
            if flag in params and flag not in allowed:
                raise ValueError(f"sample {args.name!r} has no --{flag}; its parameters: {', '.join(allowed)}")
    check_sample_size(params)
    start = time.perf_counter()
    sample = make_sample(args.name, seed=args.seed, **params)
    seconds = time.perf_counter() - start
    path = write_or_rescue(lambda target: save_sample(sample, target), args.output, "the sample")
    print(f"{args.name}: data {tuple(sample['data'].shape)} + {len(sample) - 1} arrays -> {path} ({seconds:.1f} s)")
    return 0


# ------------------------------------------------------------------- detect
def _add_detect(p: argparse.ArgumentParser) -> None:
    _add_movie_arguments(p, "the phase channel with --walls, else the first")
    p.add_argument("-o", "--output", type=Path, required=True, help="sites table to write (.csv or .parquet)")
    p.add_argument("--method", choices=("auto", "model", "peaks", "threshold"), default="auto",
                   help="atoms from the shipped segmenter at the lattice's scale (auto, the default; see "
                        "docs/detection.md), a segmenter (model), peak finding (peaks) or threshold + components")
    p.add_argument("--model", default="default", help="segmenter: 'default' (shipped) or a model folder")
    p.add_argument("--spacing", type=float, default=None, metavar="PIXELS",
                   help="nearest-neighbour atom spacing; default: estimated from the frames (info prints it). "
                        "Sets the smoothing, minimum distance, segmenter rescale and refinement box")
    p.add_argument("--contrast", choices=("auto", "bright", "dark"), default="auto",
                   help="atoms brighter (HAADF) or darker (ABF/BF) than their surroundings; default: from the frames")
    p.add_argument("--rescale", type=float, default=None,
                   help="segmenter input rescale (default: the model's training spacing / the spacing)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "int8"), default="auto",
                   help="segmenter arithmetic: auto = bfloat16 where the CPU computes it natively (about 2x "
                        "faster, the same atoms), else float32; int8 is about 2x faster per frame on long movies, "
                        "calibrated on this movie (falls back to float32 with a warning if the model cannot be "
                        "quantised)")
    p.add_argument("--save-map", action="store_true",
                   help="also write the segmenter's per-class probability map beside the sites (SITES_map.npz; "
                        "channels 'atoms' = 1 - background, and one per class); train/encode/analyze --map use it")
    p.add_argument("--threshold", type=float, default=None, help="probability threshold (maps) or relative peak height")
    p.add_argument("--sigma", type=float, default=None, help="smoothing before peak finding, pixels (default 0.2 × spacing)")
    p.add_argument("--min-distance", type=float, default=None,
                   help="minimum atom separation, pixels (default 0.55 × spacing)")
    p.add_argument("--edge-margin", type=float, default=2.0, help="drop sites closer to the border, pixels (default 2)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True, help="sub-pixel Gaussian fit")
    p.add_argument("--classify", choices=("auto", "intensity", "channel", "none"), default="auto")
    p.add_argument("--walls", action="store_true", help="PFM phase movie: domain-wall pixels instead of atoms")
    p.add_argument("--wall-threshold", default="otsu", help="phase level between domains (number or 'otsu')")
    p.add_argument("--wall-channel", type=int, default=None,
                   help="with --walls --model PATH: the segmenter's wall channel instead of the PFM phase")
    p.add_argument("--n-walls", type=int, default=None, help="keep at most N wall sites per frame")
    p.add_argument("--wall-spacing", type=float, default=0.0, help="minimum spacing of wall sites, pixels")
    p.add_argument("--tip-sigma", type=float, default=1.0,
                   help="tip blur σ in pixels for the domain-map fit that recovers small blurred domains "
                        "(default 1; 0 = threshold only)")
    p.add_argument("--wall-method", choices=["boundary", "canny"], default="boundary",
                   help="walls as the domain map's exact boundary (default) or Canny edges of it")
    p.add_argument("--min-domain", type=float, default=None, metavar="NM2",
                   help="with --walls on a calibrated wrapped phase: smallest domain kept, nm² (default 1000)")
    p.add_argument("--level", choices=("median-diff", "median", "poly", "none"), default="median-diff",
                   help="with --walls: scan-line levelling of the phase (default median-diff)")
    p.add_argument("--no-clean", action="store_true",
                   help="with --walls: skip the phase clean-up (wrapping, levelling, noise and stripe masks)")
    p.add_argument("--perovskite", action="store_true",
                   help="perovskite image: A/B sublattice per atom (by geometry), unit-cell sites (kind 'cell') and "
                        "the B-site displacement disp_y, disp_x (pixels) per cell")
    p.add_argument("--a-site", choices=("bright", "dark"), default="bright",
                   help="with --perovskite: A columns are the brighter (HAADF, default) or the dimmer sublattice")
    p.add_argument("--rings", action="store_true", help="add ring counts n5..n8 and ring-centre (hollow) sites")
    p.add_argument("--bond-length", type=float, default=None, help="bond length for --rings, pixels (default: data)")
    p.add_argument("--tracks", action="store_true", help="link atoms across frames into track_id")
    p.add_argument("--track-class", type=int, nargs="*", default=[1], help="classes to track (default 1 = bright/Si)")
    p.add_argument("--r-max", type=float, default=None, help="largest step between frames, pixels (default 1.5 bonds)")
    p.add_argument("--max-gap", type=int, default=1, help="frames a track may skip (default 1)")
    p.add_argument("--min-length", type=int, default=3, help="shortest track kept, frames (default 3)")
    from .chunks.commands import add_chunk_arguments

    add_chunk_arguments(p)


def _run_detect(args: argparse.Namespace) -> int:
    import numpy as np

    from .detect import detect_atoms, find_rings, find_walls, link_tracks
    from .detect._checks import nearest_neighbour_distance
    from .detect.rings import with_hollows
    from .io.movie import select_movie
    from .io.sites import write_sites
    from .io.units import add_physical_columns

    from .chunks.commands import chunked

    movie = select_movie(_movie_source(args.movie), args.channel, prefer="phase" if args.walls else None,
                         register=args.register)
    if chunked(args):
        return _detect_in_chunks(args, movie)
    data = np.asarray(movie.data, dtype=np.float32)
    check_detect_options(args, data.shape)
    print(f"{movie.name}: {data.shape[0]} frame(s) of {data.shape[1]}×{data.shape[2]} px", flush=True)
    if args.walls and args.wall_channel is not None:
        from .detect import model_probabilities, wall_sites, walls_from_probabilities

        probabilities = model_probabilities(data, args.model or "default", rescale=args.rescale,
                                            precision=args.precision)
        mask = walls_from_probabilities(probabilities, args.wall_channel, threshold=args.threshold or 0.5)
        sites = wall_sites(mask, n_per_frame=args.n_walls, min_spacing=args.wall_spacing, edge_margin=args.edge_margin)
    elif args.walls:
        level = args.wall_threshold
        threshold = level if level == "otsu" else _number(level, "--wall-threshold")
        clean = {"quality": not args.no_clean and "auto", "unit": movie.metadata.get("value_unit"),
                 "pixel_size_nm": movie.pixel_size_nm, "level": None if args.level == "none" else args.level}
        if args.min_domain is not None:
            clean["min_domain_nm2"] = args.min_domain
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = find_walls(data, threshold=threshold, n_per_frame=args.n_walls, min_spacing=args.wall_spacing,
                               edge_margin=args.edge_margin, tip_sigma=args.tip_sigma if args.tip_sigma > 0 else None,
                               method=args.wall_method, **clean)
        _print_frames(sites.attrs.get("frames"))
    else:
        sites = _detect_atoms_command(args, data)
        spacing = (sites.attrs.get("detection", {}).get("lattice") or {}).get("spacing")
        if len(sites) and args.tracks:
            first = sites[sites["frame"] == sites["frame"].iloc[0]]
            r_max = args.r_max or 1.5 * (spacing or nearest_neighbour_distance(first[["y", "x"]].to_numpy()))
            sites = link_tracks(sites, r_max=float(r_max), classes=args.track_class or None,
                                max_gap=args.max_gap, min_length=args.min_length)
        if len(sites) and args.rings:
            sites, hollows = find_rings(sites, bond_length=args.bond_length or spacing)
            sites = with_hollows(sites, hollows)
        if len(sites) and args.perovskite:
            from .detect.perovskite import with_cells

            record = sites.attrs.get("detection")
            sites = with_cells(sites, a_site=args.a_site)
            if record is not None:
                sites.attrs["detection"] = record
            counts = sites["sublattice"].value_counts() if "sublattice" in sites else {}
            print(f"perovskite: {counts.get('A', 0)} A and {counts.get('B', 0)} B columns, "
                  f"{int((sites['kind'] == 'cell').sum())} unit cells", flush=True)
    record = sites.attrs.get("detection")
    sites = add_physical_columns(sites, movie.pixel_size_nm)
    write_or_rescue(lambda target: write_sites(sites, target), args.output, "the sites table")
    if record is not None:
        from .io.files import write_json

        write_json(detection_record_path(args.output), {"movie": [str(p) for p in args.movie],
                                                         "channel": movie.channel, **record})
    kinds = ", ".join(f"{n} {k}" for k, n in sites["kind"].value_counts().items()) if len(sites) else "no sites"
    print(f"{kinds} in {data.shape[0] if data.ndim == 3 else 1} frame(s) -> {args.output}")
    return 0


def _detect_in_chunks(args: argparse.Namespace, movie) -> int:
    """``detect --chunk`` / ``--dask-address``: atoms chunk by chunk into a folder of Parquet partitions."""
    from .chunks import commands as chunks

    data = chunks.movie_frames(movie, _movie_source(args.movie))
    check_detect_options(args, data.shape)
    print(f"{movie.name}: {data.shape[0]} frame(s) of {data.shape[1]}×{data.shape[2]} px, in chunks", flush=True)
    folder, record = chunks.detect(args, movie, data)
    print(f"lattice: {record['lattice'].get('spacing', float('nan')):.2f} px ({record['lattice'].get('kind')})")
    for finding in record.get("findings", []):
        print(f"warning: {finding}", file=sys.stderr, flush=True)
    graph = record["dask"]
    print(f"{graph['chunk_frames']} frames per chunk on {graph['workers']} {graph['scheduler']} worker(s), "
          f"{graph['seconds']:.1f} s -> {folder} (run record: {folder / '_run.json'})")
    return 0


def detection_record_path(sites_path: Path) -> Path:
    """Where ``detect`` writes what it estimated, used and found, beside the sites table."""
    return sites_path.with_name(sites_path.stem + "_detection.json")


def map_path(sites_path: Path) -> Path:
    """Where ``detect --save-map`` writes the probability map, beside the sites table."""
    return sites_path.with_name(sites_path.stem + "_map.npz")


def _detect_atoms_command(args: argparse.Namespace, data):
    """Atoms for ``detect``: the lattice printed, detection, findings printed, the map saved when asked."""
    from .detect import detect_atoms
    from .detect.find import AUTO_METHOD, atom_map, model_probabilities, movie_lattice

    lattice = movie_lattice(data, spacing=args.spacing, contrast=args.contrast)
    print(f"lattice: {lattice.summary()}" + (f" [{lattice.note}]" if lattice.found and lattice.note else ""),
          flush=True)
    uses_model = (AUTO_METHOD if args.method == "auto" else args.method) == "model"
    maps = None
    if (lattice.found or lattice.candidate) and args.rescale is None and (uses_model or args.save_map):
        maps = atom_map(data, lattice=lattice, model=args.model, precision=args.precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sites = detect_atoms(data, method=args.method, model=args.model, lattice=lattice,
                             probabilities=maps if uses_model else None, threshold=args.threshold,
                             sigma=args.sigma, min_distance=args.min_distance, edge_margin=args.edge_margin,
                             refine=args.refine, classify=args.classify, rescale=args.rescale,
                             precision=args.precision)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr, flush=True)
    record = sites.attrs.get("detection", {})
    if record.get("inverted"):
        print("atoms are darker than their surroundings (ABF/BF): the frames were inverted for detection", flush=True)
    if args.save_map:
        if maps is None:
            maps = model_probabilities(data, args.model, rescale=args.rescale or 1.0, precision=args.precision)
        from .io.maps import write_probability_map

        record["map"] = str(write_probability_map(map_path(args.output), maps))
        print(f"probability map ({maps.shape[1]} classes) -> {record['map']}", flush=True)
    return sites


def _print_frames(frames: dict | None) -> None:
    """The per-frame PFM report: switched fraction on the reliable area, walls, what was masked."""
    if not frames:
        return
    import pandas as pd

    table = pd.DataFrame(frames)
    for row in table.itertuples():
        fraction = "no domain contrast" if not row.contrast else f"switched {row.switched_fraction:.3f}"
        print(f"frame {row.frame}: {fraction}, walls {row.wall_fraction:.1%} of the frame, "
              f"masked {row.masked_fraction:.1%} (noise {row.noise_fraction:.1%}, stripes {row.stripe_fraction:.1%})"
              + (f" — {row.note}" if row.note else ""), flush=True)


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option}: expected a number or 'otsu', got {text!r}") from None
# ---------------------------------------------------------- train-segmenter
def _add_train_segmenter(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, help="frames: .npy or .tif, (Y, X) or (T, Y, X)")
    p.add_argument("labels", type=Path, help="painted labels, same shape: 0 unlabelled, 1 background, 2… classes")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX", help=_CHANNEL_HELP.format("the first"))
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to write (saved after every epoch)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--classes", type=int, default=None, help="number of label values incl. background (default: max label)")
    p.add_argument("--crop", type=int, default=64, help="training crop side in pixels (multiple of 2**depth)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=32, help="optimisation steps per epoch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--filters", type=int, default=8, help="filters of the first level (new models)")
    p.add_argument("--depth", type=int, default=3, help="down-samplings (new models)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fine-tune", type=str, default=None, metavar="MODEL",
                   help="start from this model folder ('default' = the shipped atom model)")


def _run_train_segmenter(args: argparse.Namespace) -> int:
    from .segment.cli_support import train_segmenter_command

    return train_segmenter_command(args)


# --------------------------------------------------------------------- demo
def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true",
                   help="run the pipeline without a window and write figures and tables (automatic when there is no "
                        "usable display)")
    p.add_argument("--no-run", action="store_true", help="open napari with the sample and the docks but do not start the pipeline")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="headless: project folder for sites.csv, model/, figures/, run.json (default: a new temporary folder)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 12)")


def _run_demo(args: argparse.Namespace) -> int:
    import os

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be ≥ 1, got {args.epochs}")
    if not args.headless:
        ok, why = usable_display()  # tested in a child process: Qt aborts on a broken display
        if ok:
            from .widgets.demo import run_demo_gui

            return run_demo_gui(run=not args.no_run)
        if args.no_run:
            raise ValueError(f"--no-run opens napari without running the pipeline, but there is no usable display ({why});"
                             " drop --no-run to run the demo headless")
        print(f"no usable display ({why}): running the demo pipeline headless", flush=True)
    elif args.no_run:
        raise ValueError("--headless with --no-run would do nothing; drop one of them")
    import tempfile

    from ._samples import _load
    from .pipeline import demo_settings, run_pipeline, write_outputs

    out = args.out or Path(tempfile.mkdtemp(prefix="napari-rvae-demo-"))
    # two OpenMP threads collapse when another process is busy on a core: then train on one
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= 1.0
    from .pipeline import DEMO_EPOCHS

    settings = demo_settings(leave_core_for_gui=busy, epochs=args.epochs or DEMO_EPOCHS)
    movie = _load("graphene-movie")["data"]
    print(f"graphene-movie sample: {movie.shape[0]} frames of {movie.shape[1]}×{movie.shape[2]} px")
    result = run_pipeline(movie, settings, log=lambda line: print("  " + line))
    written = write_or_rescue(lambda target: write_outputs(result, target, extra={"sample": "graphene-movie (shipped, seed 0)"}),
                              out, "the demo project")
    figures = sorted({p.name for k, p in written.items() if k.startswith("figure_")})
    print(f"done in {result.timings.get('total_s', float('nan')):.0f} s; wrote to {out}:")
    print(f"  sites.csv ({len(result.sites)} sites with angle, dx, dy, z0, z1, cluster), model/, results.npz, run.json")
    print(f"  project.json: reopen everything in napari with  napari {Path(out) / 'project.json'}")
    print(f"  figures/: {', '.join(figures)}")
    return 0


# ------------------------------------------------------------------ analyze
def _add_analyze(p: argparse.ArgumentParser) -> None:
    _add_movie_arguments(p, "the phase channel with --walls, else the first")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="project folder to write (sites.csv, model/, figures/, results.npz, run.json, project.json)")
    p.add_argument("--sites", type=Path, help="use this sites table (CSV/Parquet) instead of detecting sites")
    p.add_argument("--walls", action="store_true",
                   help="PFM phase movie: windows centred on domain-wall pixels (boundaries of the fitted domain map)")
    p.add_argument("--walls-per-frame", type=int, default=400, help="wall sites kept per frame with --walls (default 400)")
    p.add_argument("--grid", type=int, metavar="STEP",
                   help="windows on a regular grid with this step (pixels) in every frame, as paper 002 does for "
                        "segmented domain movies, instead of detecting atoms; with --arch shift-vae the model "
                        "trains on windows at random positions and maps its latents on the grid (paper 004)")
    p.add_argument("--detect-method", choices=("auto", "model", "peaks", "threshold"), default="auto",
                   help="atom finding (see detect --method; default auto: the shipped atom finder)")
    p.add_argument("--spacing", type=float, default=None, metavar="PIXELS",
                   help="nearest-neighbour atom spacing; default: estimated from the frames")
    p.add_argument("--window", type=int, default=None,
                   help="window size in pixels (default: two atom spacings, e.g. 24 for graphene at 12 px)")
    p.add_argument("--windows-from", choices=("auto", "map", "image"), default="auto",
                   help="cut atom windows from the atom probability map (as the papers do) or the image; "
                        "default: the map for atom sites, the image otherwise")
    p.add_argument("--arch", choices=("rvae", "skip-rvae", "shift-vae", "vae"), default="rvae", help="model (default rvae)")
    p.add_argument("--latent", type=int, default=2, help="content latents (default 2)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 12, more where the windows are few: at least 1200 optimiser steps; "
                        "shift-vae: 20, after 20 shift warm-up epochs; skip-rvae: 20)")
    p.add_argument("--per-frame", type=int, help="random sites per frame used for training (default all)")
    p.add_argument("--clusters", type=int, default=5, help="GMM clusters on the latents (default 5)")
    p.add_argument("--bias", type=Path,
                   help="bias per frame: CSV (frame,bias) or .npz with a 'bias' array; a sample .npz movie's own "
                        "bias is used automatically")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--preset", choices=("ferroic-variants",), default=None,
                   help="a named recipe: ferroic-variants = paper 003 on a perovskite HAADF image: windows of two "
                        "B-B spacings centred on the detected B columns (sub-pixel), round columns, one global "
                        "scale, rotation-only rVAE (about 1800 optimiser steps unless --epochs), angle peaks = polarisation variants, "
                        "GMM on (angle, latents); --window, --latent, --epochs, --clusters, --seed and --sites apply "
                        "(docs/reproduce.md)")
    from .chunks.commands import add_chunk_arguments

    add_chunk_arguments(p)  # detection in chunks (locally or on a cluster); training needs the windows in memory


def _run_analyze(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    import pandas as pd

    from .analysis.hysteresis import read_bias
    from .io.movie import select_movie
    from .io.sites import read_sites
    from .io.units import add_physical_columns
    from .pipeline import demo_settings, iter_pipeline, write_outputs

    check_analyze_options(args)
    source = _movie_source(args.movie)
    movie = select_movie(source, args.channel, prefer="phase" if args.walls else None, register=args.register)
    movie_path = Path(movie.metadata.get("files", [source])[0]) if not isinstance(source, Path) else source
    data = np.asarray(movie.data, dtype=np.float32)
    print(f"{movie.name}: {data.shape[0]} frame(s) of {data.shape[1]}×{data.shape[2]} px", flush=True)
    sites = read_sites(args.sites) if args.sites else None
    if args.preset == "ferroic-variants":
        return _run_ferroic_preset(args, data, movie, movie_path, sites)
    graph = None
    if sites is None and args.grid is None and not args.walls:
        from .chunks import commands as chunks

        if chunks.chunked(args):
            sites, graph = chunks.analyze_sites(args, chunks.movie_frames(movie, source))
            print(f"detect in chunks: {len(sites)} sites, {graph['chunk_frames']} frames per chunk on "
                  f"{graph['workers']} {graph['scheduler']} worker(s), {graph['seconds']:.1f} s", flush=True)
    if args.grid is not None and sites is None:
        from .patches import grid_sites

        if args.grid < 1:
            raise ValueError(f"--grid must be a step of at least 1 pixel, got {args.grid}")
        sites = grid_sites(data.shape, args.window or 24, step=args.grid)
        print(f"grid: {len(sites)} sites (step {args.grid} px)", flush=True)
    if args.walls and sites is None:
        from .detect import find_walls

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = find_walls(data, n_per_frame=args.walls_per_frame, min_spacing=2.0, edge_margin=(args.window or 24) / 2,
                               seed=args.seed, unit=movie.metadata.get("value_unit"),
                               pixel_size_nm=movie.pixel_size_nm)
        _print_frames(sites.attrs.get("frames"))
        print(f"walls: {len(sites)} wall sites", flush=True)
    bias = None
    bias_source = args.bias
    if bias_source is None and movie_path.suffix.lower() == ".npz":
        with np.load(movie_path, allow_pickle=False) as archive:
            bias_source = movie_path if "bias" in archive.files else None
    if bias_source is not None:
        bias = read_bias(bias_source, frames=range(data.shape[0]))
    settings = demo_settings(detect_method=args.detect_method, window=args.window, arch=args.arch, latent=args.latent,
                             **({"epochs": args.epochs} if args.epochs else {}), per_frame=args.per_frame, seed=args.seed, spacing=args.spacing,
                             windows_from=args.windows_from)
    start = time.perf_counter()
    steps = iter_pipeline(data, settings, sites)
    total = settings.epochs + settings.warmup_epochs  # shift-VAE: warm-up epochs come first
    while True:
        try:
            item = next(steps)
        except StopIteration as done:
            result = done.value
            break
        except ValueError as err:
            if getattr(err, "model", None) is not None:  # training diverged: keep the sites and the last good model
                raise type(err)(f"{err}; {keep_results(args.output, err.sites, err.model)}", err.epoch) from None
            raise
        if item[0] == "stage":
            print(f"[{time.perf_counter() - start:6.1f} s] {item[1]}: {item[2]}", flush=True)
        elif item[0] == "plan":  # the epochs follow from the number of windows (at least MIN_STEPS steps)
            total = item[1]["epochs"] + item[1]["warmup_epochs"]
        elif item[0] == "epoch":
            stats = item[1]
            bar = "#" * min(20, int(20 * stats["epoch"] / total))  # a rejected shift-VAE run trains again
            print(f"\r[{time.perf_counter() - start:6.1f} s] train [{bar:<20s}] epoch {stats['epoch']}/{total}"
                  f" loss {stats.get('train_loss', float('nan')):.4g}", end="" if stats["epoch"] < total else "\n",
                  flush=True)
    if bias is not None and len(bias) != data.shape[0]:
        raise ValueError(f"bias: {len(bias)} values for {data.shape[0]} frames")
    extra = {"command": "analyze", "movie": [str(p) for p in args.movie] if len(args.movie) > 1 else str(movie_path),
             "channel": movie.channel, "pixel_size_nm": movie.pixel_size_nm,
             "drift_shifts": movie.metadata.get("drift_shifts")}
    if graph is not None:
        extra["dask"] = graph
    if isinstance(sites, pd.DataFrame) and sites.attrs.get("frames"):
        extra["pfm_frames"] = sites.attrs["frames"]
    result_sites = getattr(result, "sites", None)
    if isinstance(result_sites, pd.DataFrame):
        result.sites = add_physical_columns(result_sites, movie.pixel_size_nm)
    try:
        written = write_or_rescue(lambda target: write_outputs(result, target, movie=data, movie_path=movie_path.resolve(),
                                                               bias=bias, n_clusters=args.clusters, extra=extra),
                                  args.output, "the project")
    except ValueError as err:  # the analysis after training failed: keep the sites with latents and the model
        raise ValueError(f"{err}; {keep_results(args.output, result.sites, result.model)}") from None
    figures = sorted(p.name for k, p in written.items() if k.startswith("figure_"))
    _print_analysis_record(Path(written.get("run", args.output / "run.json")))
    print(f"done in {time.perf_counter() - start:.0f} s; project written to {args.output}")
    print(f"  sites.csv, model/, {'results.npz, ' if 'results' in written else ''}run.json, project.json; "
          f"figures/: {len(figures)} PNG")
    print(f"  reopen in napari: napari {args.output / 'project.json'}")
    return 0


def _run_ferroic_preset(args: argparse.Namespace, data, movie, movie_path: Path, sites) -> int:
    """``analyze --preset ferroic-variants``: the recipe of :mod:`napari_rvae.ferroic`, a project folder."""
    import time

    from .ferroic import FerroicRecipe, ferroic_variants, write_ferroic_outputs

    if args.grid is not None or args.walls or args.arch != "rvae":
        raise ValueError("--preset ferroic-variants cuts windows on the B columns with a rotation-only rVAE; "
                         "drop --grid, --walls and --arch")
    recipe = FerroicRecipe(latent=args.latent, n_clusters=args.clusters, seed=args.seed,
                           **({"epochs": args.epochs} if args.epochs else {}))
    start = time.perf_counter()
    result = ferroic_variants(data, recipe, sites=sites, window=args.window,
                              log=lambda m: print(f"[{time.perf_counter() - start:6.1f} s] {m}", flush=True))
    extra = {"command": "analyze", "movie": str(movie_path), "channel": movie.channel,
             "pixel_size_nm": movie.pixel_size_nm}
    written = write_or_rescue(lambda target: write_ferroic_outputs(
        result, target, movie_path=movie_path.resolve(), movie_info={"shape": [int(s) for s in data.shape]},
        extra=extra), args.output, "the project")
    figures = sorted(p.name for k, p in written.items() if k.startswith("figure_"))
    print(f"done in {time.perf_counter() - start:.0f} s; project written to {args.output}")
    print(f"  sites.csv (B sites: angle, z0.., variant, cluster), model/, run.json, project.json; "
          f"figures/: {', '.join(figures)}")
    return 0


def _print_analysis_record(run_json: Path) -> None:
    """One line per analysis step that was skipped (uninformative latents) or failed, from the run record."""
    import json

    try:
        analysis = json.loads(run_json.read_text()).get("analysis") or {}
    except (OSError, ValueError):
        return
    for step, why in (analysis.get("skipped") or {}).items():
        print(f"  not reported: {step} ({why})")
    for step, why in (analysis.get("failed") or {}).items():
        print(f"  failed: {step} ({why}); the rest was written")


# -------------------------------------------------------------------- bench
def _checkout_benchmarks():
    """The source checkout's ``benchmarks.bench`` module, or ``None`` in an installed wheel.

    The benchmark code (AtomAI comparisons, GUI latency, validations) lives in the repository's
    top-level ``benchmarks/`` folder, not in the package: it is importable only when this package
    runs from a checkout (editable install or ``PYTHONPATH=src``).
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "bench.py").is_file() or not (root / "pyproject.toml").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.append(str(root))
    import importlib

    return importlib.import_module("benchmarks.bench")


_NO_BENCH = ("the benchmarks are not part of the installed package; run `napari-rvae bench` from a source "
             "checkout of napari-rvae (pip install -e . in the clone)")


def _add_bench(p: argparse.ArgumentParser) -> None:
    bench = _checkout_benchmarks()
    if bench is None:
        p.description = f"{p.description} — {_NO_BENCH}"
        p.set_defaults(_accepts_any_options=True)  # whatever the options, the answer is _NO_BENCH
    else:
        bench.add_arguments(p)


def _run_bench(args: argparse.Namespace) -> int:
    bench = _checkout_benchmarks()
    if bench is None:
        raise ValueError(_NO_BENCH)
    return bench.main(args)


# ------------------------------------------------------------ registry / main
TABLE = (".csv", ".parquet", ".pq")
# (name, help, add-arguments function, run function, what it writes)
COMMANDS = [
    ("info", "list a movie's channels, frames and calibration (pixel size, field, where it came from)", _add_info, _run_info,
     None),
    ("sample", "write a synthetic movie with its ground truth to .npz (--list shows the samples)", _add_sample, _run_sample,
     Output("file", (".npz",))),
    ("detect", "find atoms or domain walls; refine, classify, rings, tracks -> sites table", _add_detect, _run_detect,
     Output("file", TABLE, inputs=("movie", "model"))),
    ("train-segmenter", "train or fine-tune a U-Net segmenter from painted labels", _add_train_segmenter,
     _run_train_segmenter, Output("folder", holds="model", inputs=("image", "labels", "fine_tune"))),
    ("train", "train a VAE / rVAE / skip-rVAE / shift-VAE on windows or on a movie's sites", _train.add_train,
     _train.run_train, Output("folder", holds="model", inputs=("input", "sites", "map"), resume="resume")),
    ("encode", "encode windows or a movie's sites with a trained model into a latents table", _vae.add_encode,
     _vae.run_encode, Output("file", TABLE, inputs=("model", "input", "sites", "map"))),
    ("decode", "decode a latent grid (manifold) of a trained model into a PNG", _vae.add_decode, _vae.run_decode,
     Output("file", (".png", ".npy"), inputs=("model",))),
    ("bench", "benchmark every stage: rVAE training, quality and latency vs AtomAI, U-Net inference, refinement, GUI",
     _add_bench, _run_bench, Output("file", (".json",))),
    ("chemistry-map", "ring chemistry (n5..n8 at the centre atom) of a model's decoded latent plane -> .npz/.png",
     _analysis2.add_chemistry_map, _analysis2.run_chemistry_map, Output("file", (".npz", ".png"), inputs=("model",))),
    ("beta-search", "shift-VAE beta-schedule grid search ranked by latent-map FFT smoothness -> folder",
     _analysis2.add_beta_search, _analysis2.run_beta_search, Output("folder", holds="results", inputs=("image",))),
    ("analyze", "the whole pipeline headless: sites -> windows -> rVAE -> latents -> clusters, dynamics; a project folder",
     _add_analyze, _run_analyze, Output("folder", holds="project", inputs=("movie", "sites", "bias"))),
    ("export", "write sites, latent maps or a decoder in the formats peers use: AtomAI, HyperSpy, TorchScript/ONNX",
     _export.add_export, _export.run_export, None),  # each format declares its own output (export/commands.py)
    ("reproduce", "each paper's headline experiment on the samples -> report folder with figures and a table paper says / we get",
     _reproduce.add_reproduce, _reproduce.run_reproduce, Output("folder", holds="report")),
    ("demo", "napari with the graphene sample, the docks and a Run pipeline button; headless without a display",
     _add_demo, _run_demo, Output("folder", holds="project", option="out")),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-rvae",
        description="Invariant VAEs for STEM / PFM movies: segment, detect, train, explore, quantify.",
    )
    parser.add_argument("--version", action="version", version=f"napari-rvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add, run, output in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        if output is not None:
            add_overwrite_option(p)
        p.set_defaults(_run=run, _output=output)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "_accepts_any_options", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 1
    try:
        if args._output is not None:
            check_output(args, args._output)  # before any work: a bad -o costs nothing
        return int(args._run(args) or 0)
    except ValueError as err:
        print(f"napari-rvae {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"napari-rvae {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    except MemoryError as err:
        print(f"napari-rvae {args.command}: error: out of memory ({' '.join(str(err).split()) or 'no detail'}); "
              "use a smaller input or fewer frames", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"napari-rvae {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
