"""The VAE subcommands of ``napari-rvae``: ``encode``, ``decode``, ``bench`` (``train`` is
in :mod:`.train_command`), and the input helpers they share.

Each is an ``add_*(parser)`` / ``run_*(args)`` pair listed in ``cli.COMMANDS``.
torch is imported only when a command runs, so ``napari-rvae --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def _widths(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return values


def _radii(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a radius or two comma-separated radii, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected radii of at least 1 pixel, got {text!r}")
    return values


def read_movie_array(path: Path, channel: str | int | None = None) -> np.ndarray:
    """A movie file (any format ``io.movie`` reads; ``channel`` by name or index, default the
    first) as a ``(T, Y, X)`` float32 array."""
    from ..io.movie import select_movie

    return np.asarray(select_movie(path, channel).data, dtype=np.float32)


def window_images(movie: np.ndarray, sites, source: str, sites_path: Path | None = None,
                  map_path: Path | None = None) -> tuple[np.ndarray, str]:
    """The ``(T, Y, X)`` images windows are cut from and which they are (``"map"`` or ``"image"``).

    ``source``: ``"image"``; ``"map"`` (the atom probability: ``map_path``, else the
    ``SITES_map.npz`` that ``detect --save-map`` wrote beside the sites table, else
    computed now by the shipped atom finder); ``"auto"``: the map for atom sites when
    one was given or saved beside the sites, the image otherwise.
    """
    from ..pipeline import atom_probability

    if source not in ("auto", "map", "image"):
        raise ValueError(f"windows from: expected auto, map or image, got {source!r}")
    if map_path is None and sites_path is not None:
        beside = Path(sites_path).with_name(Path(sites_path).stem + "_map.npz")
        map_path = beside if beside.exists() else None
    atoms = sites is None or "kind" not in sites or bool((sites["kind"] == "atom").all())
    if source == "image" or (source == "auto" and (map_path is None or not atoms)):
        return movie, "image"
    if map_path is not None:
        from ..io.maps import read_atom_probability

        image = read_atom_probability(map_path)
        if image.shape != movie.shape:
            raise ValueError(f"{map_path}: map of shape {image.shape} does not match the movie {movie.shape}")
        return image, "map"
    from ..detect.find import atom_map

    print("windows from the atom probability map: running the shipped atom finder on the movie", flush=True)
    return atom_probability(atom_map(movie)), "map"


def default_window(sites, arch: str = "rvae") -> int:
    """Two atom spacings (the atoms' median nearest-neighbour distance in the first frame that has two),
    as :func:`napari_rvae.detect.lattice.scale_defaults` gives; five for a skip-rVAE (the chemistry
    map's windows, paper 000). One clear error for other sites."""
    from ..detect.lattice import scale_defaults
    from ..patches import site_spacing

    atoms = sites[sites["kind"] == "atom"] if "kind" in sites else sites
    spacing = site_spacing(atoms, max_frames=1, min_sites=2)
    if spacing is None:
        raise ValueError("give the window size with --window (the sites are not atoms, or too few to measure "
                         "their spacing)")
    return int(scale_defaults(spacing)["chemistry_window" if arch == "skip-rvae" else "window"])


def load_windows_npy(path: Path) -> np.ndarray:
    """An ``(N, w, w)`` (or ``(N, w)``) ``.npy`` of windows as float32; one-line errors for an
    empty, truncated, pickled or hostile file."""
    from ..io.limits import check_npy

    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); give an (N, w, w) .npy of windows")
    check_npy(path)
    try:
        windows = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a plain numeric .npy array ({' '.join(str(err).split())[:200]})") from None
    if windows.dtype.kind not in "uif":
        raise ValueError(f"{path}: windows must be numbers, got dtype {windows.dtype}")
    windows = windows.astype(np.float32, copy=False)
    if windows.ndim not in (2, 3) or len(windows) == 0 or windows.size == 0:
        raise ValueError(f"{path}: expected windows of shape (N, w, w) or (N, w), got {windows.shape}")
    if not np.isfinite(windows).all():
        raise ValueError(f"{path}: windows contain NaN or infinite values")
    return windows


def _load_windows_or_movie(path: Path, sites_path, window, options, bond_symmetry: int = 3, channel=None,
                           source: str = "auto", map_path: Path | None = None, arch: str = "rvae"):
    """Return ``(windows, sites table or None, cut report or None, normalisation dict)``."""
    from ..io.sites import read_sites
    from ..patches import BOND_ANGLE, cut_windows, normalise, with_orientation

    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if sites_path is None:
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{path}: give an (N, w, w) .npy of windows, or a movie with --sites sites.csv")
        windows = load_windows_npy(path)
        windows, norm = normalise(windows, options.get("normalisation", "none"), options.get("lo"), options.get("hi"))
        return windows, None, None, norm
    movie = read_movie_array(path, channel)
    recipe = {"orientation": options.get("orientation"), "bond_symmetry": bond_symmetry}
    sites = with_orientation(read_sites(sites_path), recipe)
    if window is None:
        window = default_window(sites, arch)
    images, used = window_images(movie, sites, source, sites_path, map_path)
    cut = cut_windows(images, sites, window, **options)
    if len(cut) == 0:
        raise ValueError(f"no windows could be cut: {cut.report.summary()}")
    cut.normalisation["source"] = used
    if options.get("orientation") == BOND_ANGLE:
        cut.normalisation["bond_symmetry"] = int(bond_symmetry)
    return cut.windows, sites, cut, cut.normalisation


# ------------------------------------------------------- shared by train
def _add_window_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--windows-from", choices=("auto", "map", "image"), default="auto",
                   help="cut windows from the atom probability map (as the papers do for atoms) or the image; "
                        "default: the map when one is given (--map) or saved beside the sites (detect --save-map)")
    p.add_argument("--map", type=Path, default=None, metavar="MAP",
                   help="atom probability map (SITES_map.npz from detect --save-map)")


# -------------------------------------------------------------------- encode
def add_encode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("input", type=Path, help="windows .npy, or a movie (with --sites)")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX",
                   help="channel of a multi-channel movie, by name (e.g. Phase) or index (default the first)")
    p.add_argument("-o", "--output", type=Path, required=True, help="latents table (CSV)")
    p.add_argument("--sites", type=Path, help="sites table: cut windows there with the model's window size")
    p.add_argument("--map", type=Path, default=None, metavar="MAP",
                   help="atom probability map for a model trained on map windows (default: SITES_map.npz beside "
                        "the sites, else the shipped atom finder is run)")
    from ..chunks.commands import add_chunk_arguments

    add_chunk_arguments(p)


def run_encode(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io.outputs import write_or_rescue
    from ..io.sites import read_sites, write_sites
    from ..patches import recipe_options
    from .files import load_model
    from .latents import encode, encode_sites

    from ..chunks import commands as chunks

    if chunks.chunked(args):
        return _encode_in_chunks(args)
    model = load_model(args.model)
    norm = model.normalisation
    if args.sites is not None:
        if not args.input.exists():
            raise ValueError(f"{args.input}: file not found")
        sites = read_sites(args.sites)
        images, _ = window_images(read_movie_array(args.input, args.channel), sites,
                                  (norm or {}).get("source", "image"), args.sites, args.map)
        table, report = encode_sites(model, images, sites)
        print(f"windows: {report.summary()}")
    else:
        windows, _, _, _ = _load_windows_or_movie(args.input, None, None, recipe_options(norm))
        table = pd.concat([pd.DataFrame({"window": np.arange(len(windows))}), encode(model, windows)], axis=1)
    latents = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    if len(table) and latents and table[latents].isna().all().all():
        raise ValueError(f"{args.model}: the model gave no finite latents for any window; nothing was written")
    write_or_rescue(lambda target: write_sites(table, target), args.output, "the latents table")
    print(f"{len(table)} rows with latents written to {args.output}")
    return 0


def _encode_in_chunks(args: argparse.Namespace) -> int:
    """``encode --chunk`` / ``--dask-address``: windows and latents chunk by chunk into Parquet partitions."""
    from ..chunks import commands as chunks
    from ..chunks.steps import run_record
    from ..io.movie import select_movie

    if args.sites is None:
        raise ValueError("encoding in chunks works on a movie with --sites (a table or a folder of partitions); "
                         "encode a windows .npy without --chunk/--dask-address")
    if not args.input.exists():
        raise ValueError(f"{args.input}: file not found")
    if not Path(args.sites).exists():
        raise ValueError(f"{args.sites}: file not found")
    movie = select_movie(args.input, args.channel)
    folder = chunks.encode(args, args.model, chunks.movie_frames(movie, args.input), args.map)
    record = run_record(folder)
    windows = record.get("windows", {})
    graph = record["dask"]
    print(f"windows: {windows.get('cut', 0)} of {windows.get('requested', 0)} cut; {graph['chunk_frames']} frames "
          f"per chunk on {graph['workers']} {graph['scheduler']} worker(s), {graph['seconds']:.1f} s -> {folder}")
    return 0


# -------------------------------------------------------------------- decode
#: decode --grid: at most this many windows per side, and mosaics at most this many pixels per side
MAX_GRID = 200
MAX_MOSAIC = 8192


def add_decode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("--grid", type=int, default=10, help="D: a D×D grid over two content latents (default 10, at most 200)")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG (or .npy for the raw mosaic)")
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="the two content latents to span")
    p.add_argument("--span", type=float, default=3.0, help="linear grid over [−span, span]")
    p.add_argument("--icdf", action="store_true", help="Normal-icdf grid (quantiles 0.05…0.95) instead")
    p.add_argument("--angle", type=float, default=0.0, help="radians")
    p.add_argument("--dx", type=float, default=0.0, help="pixels")
    p.add_argument("--dy", type=float, default=0.0, help="pixels")


def run_decode(args: argparse.Namespace) -> int:
    from ..io.files import atomic_write
    from ..io.limits import bounded
    from ..io.outputs import write_or_rescue
    from .files import load_model
    from .latents import manifold

    bounded(args.grid, "--grid", 1, MAX_GRID, why="the number of decoded windows per side")
    for name in ("span", "angle", "dx", "dy"):
        bounded(getattr(args, name), f"--{name}", -1e6, 1e6)
    model = load_model(args.model)
    h, w = model.config.window if model.config.dims == 2 else (1, model.config.window[0])
    if args.grid * max(h, w) > MAX_MOSAIC:
        raise ValueError(f"--grid {args.grid}: a {args.grid * h}×{args.grid * w} px mosaic of {h}×{w} px windows is too "
                         f"large; use at most {MAX_MOSAIC // max(h, w)}")
    if min(args.dims) < 0 or max(args.dims) >= max(model.config.latent, 1):
        raise ValueError(f"--dims: the model has {model.config.latent} content latents")
    _, mosaic, _ = manifold(model, d=args.grid, dims=tuple(args.dims), kind="icdf" if args.icdf else "linear",
                            span=args.span, angle=args.angle, dx=args.dx, dy=args.dy)
    if args.output.suffix.lower() == ".npy":
        write_or_rescue(lambda target: atomic_write(target, lambda p: np.save(p, mosaic)), args.output, "the mosaic")
    else:
        from PIL import Image

        lo, hi = float(mosaic.min()), float(mosaic.max())
        image = ((mosaic - lo) / (hi - lo if hi > lo else 1.0) * 255).round().astype(np.uint8)
        write_or_rescue(lambda target: atomic_write(target, lambda p: Image.fromarray(image).save(p, format="PNG")),
                        args.output, "the mosaic")
    print(f"{args.grid}×{args.grid} manifold ({mosaic.shape[0]}×{mosaic.shape[1]} px) written to {args.output}")
    return 0

