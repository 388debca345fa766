"""``--dask-address`` / ``--chunk`` for ``detect``, ``encode`` and ``analyze``: the same graph on local
workers or a cluster; the tables go to folders of Parquet partitions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .graph import SCHEDULERS, ChunkSettings

#: detect options that need every frame at once (kept out of chunked runs, with one clear message)
WHOLE_MOVIE = {"walls": "--walls", "perovskite": "--perovskite"}


def add_chunk_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("long movies in chunks of frames (dask)")
    g.add_argument("--chunk", type=int, default=None, metavar="FRAMES",
                   help="process the movie in chunks of this many frames (bounded memory; a multiple of 4 gives "
                        "the in-memory result bit for bit); the table is written as a folder of Parquet "
                        "partitions, -o NAME.parquet")
    g.add_argument("--dask-address", default=None, metavar="HOST:PORT",
                   help="run the chunks on this dask.distributed scheduler (see docs/large-data.md); implies chunks")
    g.add_argument("--dask-scheduler", choices=SCHEDULERS, default="processes",
                   help="local chunks on worker processes (default), threads, or one thread (sync)")
    g.add_argument("--workers", type=int, default=None, help="local workers, one thread each (default: the CPUs)")


def chunked(args: argparse.Namespace) -> bool:
    """Whether the command was asked to run in chunks."""
    return getattr(args, "chunk", None) is not None or getattr(args, "dask_address", None) is not None


def settings(args: argparse.Namespace) -> ChunkSettings:
    return ChunkSettings(chunk=args.chunk, scheduler=args.dask_scheduler, address=args.dask_address,
                         workers=args.workers)


def table_folder(path: Path, flag: str = "-o") -> Path:
    if Path(path).suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(f"{flag} {path}: a chunked run writes the table as a folder of Parquet partitions; "
                         "give a name ending in .parquet")
    return Path(path)


def movie_frames(movie, paths) -> object:
    """The movie's frames without reading them: a memory map of a float32 ``.npy`` (read by plain
    file reads in the workers), else the reader's array (lazy for large files)."""
    sources = paths if isinstance(paths, list) else [paths]
    if len(sources) == 1 and Path(sources[0]).suffix.lower() == ".npy":
        mapped = np.load(sources[0], mmap_mode="r", allow_pickle=False)
        if mapped.dtype == np.float32 and tuple(mapped.shape) == tuple(movie.data.shape):
            return mapped
    return movie.data


def detect(args: argparse.Namespace, movie, data) -> tuple[Path, dict]:
    """``detect`` in chunks: atoms (with ``--tracks`` and ``--rings``); returns the table's folder and its record."""
    import pandas as pd

    from .steps import detect_atoms_chunked, run_record
    from .store import write_record

    for name, flag in WHOLE_MOVIE.items():
        if getattr(args, name, False):
            raise ValueError(f"{flag} needs the whole movie at once; run detect without --chunk/--dask-address, "
                             "or add it afterwards to the table this writes")
    output = table_folder(args.output)
    map_path = output.with_name(output.stem + "_map.zarr") if args.save_map else None
    folder = detect_atoms_chunked(data, output, settings=settings(args), save_map=map_path, method=args.method,
                                  model=args.model, spacing=args.spacing, contrast=args.contrast,
                                  threshold=args.threshold, sigma=args.sigma, min_distance=args.min_distance,
                                  edge_margin=args.edge_margin, refine=args.refine, classify=args.classify,
                                  rescale=args.rescale, precision=args.precision)
    record = run_record(folder)
    _tracks_and_rings(args, folder, record)
    if movie.pixel_size_nm is not None:  # y_nm / x_nm as the in-memory command writes them
        from ..io.units import add_physical_columns
        from .store import partitions, write_partition

        for part in partitions(folder):
            table = add_physical_columns(pd.read_parquet(part), movie.pixel_size_nm)
            write_partition(table, folder, int(part.stem.split("-")[1]))
        record["pixel_size_nm"] = list(movie.pixel_size_nm)
    sources = args.movie if isinstance(args.movie, list) else [args.movie]
    record = {"movie": [str(p) for p in sources], "channel": movie.channel, **record}
    write_record(folder, record)
    return folder, record


def _tracks_and_rings(args: argparse.Namespace, folder: Path, record: dict) -> None:
    """``--tracks`` then ``--rings`` on the partitions, with the in-memory command's defaults."""
    from .passes import link_tracks_in_partitions, rings_in_partitions
    from .store import partitions

    spacing = (record.get("lattice") or {}).get("spacing")
    if args.tracks and partitions(folder):
        r_max, step = args.r_max, spacing
        if not r_max and not step:  # as in memory: the first frame's nearest-neighbour distance
            import pandas as pd

            from ..detect._checks import nearest_neighbour_distance

            first = pd.read_parquet(partitions(folder)[0], columns=["frame", "y", "x"])
            step = nearest_neighbour_distance(first.loc[first["frame"] == first["frame"].min(), ["y", "x"]].to_numpy())
        r_max = r_max or 1.5 * step
        n = link_tracks_in_partitions(folder, r_max=float(r_max), classes=args.track_class or None,
                                      max_gap=args.max_gap, min_length=args.min_length)
        record["tracks"] = {"count": n, "r_max": float(r_max)}
    if args.rings and partitions(folder):
        record["rings"] = {"count": rings_in_partitions(folder, bond_length=args.bond_length or spacing,
                                                        settings=settings(args)),
                           "bond_length": args.bond_length or spacing}


def encode(args: argparse.Namespace, model_dir: Path, movie_data, map_path: Path | None) -> Path:
    """``encode`` in chunks: windows from the movie (or the atom probability the model was trained on)."""
    from .steps import encode_sites_chunked
    from .store import open_frames

    output = table_folder(args.output)
    from ..io.files import read_model_record

    source = (read_model_record(model_dir, "vae").get("normalisation") or {}).get("source", "image")
    images = movie_data
    if source == "map":
        if map_path is None and Path(args.sites).is_dir():
            beside = Path(args.sites).with_name(Path(args.sites).stem + "_map.zarr")
            map_path = beside if beside.exists() else None
        if map_path is None or Path(map_path).suffix != ".zarr":
            raise ValueError("this model was trained on atom-probability windows: give the map detect wrote "
                             "with --chunk --save-map (--map SITES_map.zarr)")
        images = 1.0 - open_frames(map_path)[:, 0]
    return encode_sites_chunked(str(model_dir), images, args.sites, output, settings=settings(args))


def analyze_sites(args: argparse.Namespace, data) -> tuple:
    """``analyze --chunk`` / ``--dask-address``: the atoms found in chunks (in a temporary folder), read
    back for the rest of the pipeline; ``(sites, the graph's settings)``."""
    import tempfile

    from ..io.sites import read_sites
    from .steps import detect_atoms_chunked, run_record

    with tempfile.TemporaryDirectory(prefix=".napari-rvae-chunks-", dir=Path(args.output).resolve().parent) as tmp:
        folder = detect_atoms_chunked(data, Path(tmp) / "sites.parquet", settings=settings(args),
                                      method=args.detect_method, spacing=args.spacing)
        record = run_record(folder)
        sites = read_sites(folder)
    graph = record.pop("dask")
    sites.attrs["detection"] = record
    return sites, graph
