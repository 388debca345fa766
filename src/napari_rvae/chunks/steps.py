"""Detection, probability maps, windows and encoding of a movie in chunks of frames.

Everything that needs the whole movie is settled before the chunks run, so every chunk gives
exactly the rows the whole movie gives: the lattice is estimated once (from the frames
:func:`~napari_rvae.detect.lattice.estimate_lattice` picks) and, with every scale-dependent
parameter, handed to every chunk (:class:`~napari_rvae.detect.stages.DetectionPlan`). The intensity
classes (a mixture fit over all sites) and the plausibility checks need all the sites, so they run
after the chunks, on the columns they need, read back from the partitions.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .graph import ChunkSettings, cluster, compute, movie_blocks, one_thread, read_block
from .store import (create_frames_array, partition_path, read_partitions, read_record, remove_side_arrays,
                    side_arrays, start_table, write_frames, write_partition, write_record, write_side_arrays)



def _delayed(function, *args):
    import dask

    return dask.delayed(function, pure=False)(*args)


# ----------------------------------------------------------------------------------- detection
def detect_atoms_chunked(movie, output: str | os.PathLike, *, settings: ChunkSettings | None = None, client=None,
                         save_map: str | os.PathLike | None = None, **options) -> Path:
    """:func:`~napari_rvae.detect.detect_atoms` over chunks of frames; the sites go to a folder of
    Parquet partitions (one per chunk) at ``output``, read back by :func:`napari_rvae.io.sites.read_sites`.

    Parameters
    ----------
    movie : (T, Y, X) array-like
        numpy array, ``np.load(path, mmap_mode="r")`` memory map, or a dask array (e.g. from a lazy reader).
    output : path
        The table's folder (``sites.parquet``); replaced if it exists.
    settings : ChunkSettings
        Frames per chunk and where the chunks run (default: local processes, one thread each).
    client : dask.distributed.Client, optional
        Run on this cluster (its workers must reach ``output`` and the movie's file).
    save_map : path, optional
        Also write the segmenter's probability maps ``(T, C, Y, X)`` to this zarr array.
    **options
        The keyword arguments of :func:`~napari_rvae.detect.detect_atoms` (not ``probabilities``).

    Returns
    -------
    Path of the folder. Its ``_run.json`` holds the detection record (as ``sites.attrs["detection"]``
    of the in-memory call) and the graph's settings under ``"dask"``.
    """
    from ..detect.stages import plan_detection

    if "probabilities" in options:
        raise ValueError("probabilities: give the probability maps' movie to detect_atoms instead; "
                         "a chunked run computes the maps chunk by chunk")
    settings = settings or ChunkSettings()
    started = time.perf_counter()
    plan = plan_detection(movie, **options)
    shape, blocks = movie_blocks(movie, settings.frames_per_chunk(_shape(movie)))
    folder = start_table(output)
    map_path = None
    if save_map is not None:
        map_path = Path(save_map)
        create_frames_array(map_path, (shape[0], _map_channels(plan.model)) + shape[1:])
    tasks = [_delayed(_detect_chunk, block, plan, a, str(folder), None if map_path is None else str(map_path))
             for a, _, block in blocks]
    with cluster(settings, client) as used:
        results = sorted(compute(tasks, settings, used), key=lambda r: r["start"])
        graph = settings.record(shape, used)
    record = _finish(folder, plan, shape, results)
    record["dask"] = graph
    record["dask"]["seconds"] = round(time.perf_counter() - started, 3)
    if map_path is not None:
        record["map"] = str(map_path)
    write_record(folder, record)
    return folder


def _shape(movie) -> tuple:
    shape = tuple(getattr(movie, "shape", np.shape(movie)))
    return shape if len(shape) == 3 else (1,) + shape


def _map_channels(model) -> int:
    from ..detect.find import model_record

    return int(model_record(model)["unet"]["n_classes"])


def _detect_chunk(block, plan, start: int, folder: str, map_path: str | None) -> dict:
    """One chunk: read, detect (class from channels, else 0 until the whole movie is classified), write."""
    from ..detect.find import atom_map
    from ..detect.stages import detect_frames, site_geometry

    with one_thread():
        frames = read_block(block)
        sites, channels, maps = detect_frames(frames, plan, first_frame=start, keep_maps=True)
        if map_path is not None:
            if maps is None:
                maps = atom_map(frames, lattice=plan.lattice, model=plan.model, precision=plan.precision)
            write_frames(map_path, start, maps)
        geometry = site_geometry(sites, plan, frames.shape)
    if len(sites):
        write_partition(sites, folder, start)
    # what the finish needs of these sites waits on disk, so the client's memory does not grow with the movie
    write_side_arrays(folder, start, geometry.to_arrays())
    return {"start": start, "rows": len(sites), "channels": channels}


def _finish(folder: Path, plan, shape: tuple, results: list) -> dict:
    """Classes over the whole movie (rewritten into the partitions), checks and the record, from what the
    chunks left on disk (intensities and classes in the partitions, the sites' geometry beside them),
    one column at a time into arrays of the movie's size: never the whole table."""
    from ..detect.stages import detection_record, movie_classes, uses_channel_classes
    from ..io.sites import empty_sites

    channels = next((r["channels"] for r in results if r["channels"] is not None), None)
    geometry = _joined_geometry(folder)
    remove_side_arrays(folder)
    rows = [r["rows"] for r in results]
    if sum(rows) == 0:
        write_partition(empty_sites(), folder, 0)
        return detection_record(plan, shape, geometry, stacklevel=4)
    if not uses_channel_classes(plan, channels):  # the class the chunks gave is final when it is the channel's
        intensity = np.empty(sum(rows))
        offset = 0
        for r in results:
            if r["rows"]:
                intensity[offset: offset + r["rows"]] = _column(folder, r["start"], "intensity")
            offset += r["rows"]
        classes = movie_classes(intensity, plan, channels, None)
        del intensity
        offset = 0
        for r in results:
            mine = classes[offset: offset + r["rows"]]
            if r["rows"] and not np.array_equal(mine, _column(folder, r["start"], "class")):
                part = pd.read_parquet(partition_path(folder, r["start"]))
                part["class"] = mine
                write_partition(part, folder, r["start"])
            offset += r["rows"]
        del classes
    return detection_record(plan, shape, geometry, stacklevel=4)


def _column(folder: Path, start: int, name: str) -> np.ndarray:
    import pyarrow.parquet as pq

    return pq.read_table(partition_path(folder, start), columns=[name]).column(0).to_numpy()


def _joined_geometry(folder: Path):
    """The chunks' :class:`~napari_rvae.detect.plausibility.SiteGeometry`, read into arrays of the movie's size."""
    from ..detect.plausibility import SiteGeometry

    files = side_arrays(folder)
    counts, names = [], None
    for path in files:
        with np.load(path, allow_pickle=False) as arrays:
            counts.append(arrays["counts"])
            names = set(arrays.files) if names is None else names & set(arrays.files)
    counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    joined = {name: np.empty(int(counts.sum())) for name in (names or {"nn"}) - {"counts"}}
    offset = 0
    for path in files:
        with np.load(path, allow_pickle=False) as arrays:
            size = len(arrays["nn"])
            for name, out in joined.items():
                out[offset: offset + size] = arrays[name]
            offset += size
    return SiteGeometry.from_arrays({"counts": counts, **joined})


# ------------------------------------------------------------------------------ probability maps
def atom_maps_chunked(movie, output: str | os.PathLike, *, settings: ChunkSettings | None = None, client=None,
                      lattice=None, model="default", precision: str = "auto", spacing: float | None = None):
    """The segmenter's probability maps ``(T, C, Y, X)`` (:func:`~napari_rvae.detect.find.atom_map`) over
    chunks of frames, written to a zarr array at ``output``; returns it as a lazy dask array."""
    from ..detect.find import movie_lattice
    from .store import open_frames

    settings = settings or ChunkSettings()
    if lattice is None:
        lattice = movie_lattice(movie, spacing=spacing)
    shape, blocks = movie_blocks(movie, settings.frames_per_chunk(_shape(movie)))
    create_frames_array(output, (shape[0], _map_channels(model)) + shape[1:])
    tasks = [_delayed(_map_chunk, block, lattice, model, precision, spacing, a, str(output)) for a, _, block in blocks]
    with cluster(settings, client) as used:
        compute(tasks, settings, used)
    return open_frames(output)


def _map_chunk(block, lattice, model, precision, spacing, start, path) -> int:
    from ..detect.find import atom_map

    with one_thread():
        frames = read_block(block)
        write_frames(path, start, atom_map(frames, lattice=lattice, spacing=spacing, model=model, precision=precision))
    return start


# --------------------------------------------------------------------------- windows + encoding
def encode_sites_chunked(model, images, sites, output: str | os.PathLike, *, settings: ChunkSettings | None = None,
                         client=None, normalisation: dict | None = None) -> Path:
    """:func:`~napari_rvae.vae.latents.encode_sites` over chunks of frames: windows are cut at the sites
    of each chunk from ``images`` (the movie, or the atom probability the model was trained on) and
    encoded; the table with latents goes to a folder of Parquet partitions at ``output``.

    ``model``: a model or its folder; ``sites``: a table, or the path of one (a partitioned folder is
    read chunk by chunk, never whole). Rows come in the order of the chunks, and within a chunk in
    the order of ``sites``. Returns the folder; its ``_run.json`` holds the windows report and the
    graph's settings.
    """
    settings = settings or ChunkSettings()
    started = time.perf_counter()
    if isinstance(model, (str, os.PathLike)):  # read its record only: the workers load the weights
        model = str(model)
        from ..io.files import read_model_record

        recipe = read_model_record(model, "vae").get("normalisation")
    else:
        recipe = getattr(model, "normalisation", None)
    recipe = normalisation or recipe or {"mode": "none"}
    if recipe.get("delay"):
        raise ValueError("a model with time-delayed windows needs neighbouring frames; encode it in memory")
    shape, blocks = movie_blocks(images, settings.frames_per_chunk(_shape(images)))
    table_source = _sites_source(sites, shape[0])
    folder = start_table(output)
    tasks = [_delayed(_encode_chunk, block, model, table_source(a, b), a, b, str(folder), recipe)
             for a, b, block in blocks]
    with cluster(settings, client) as used:
        results = sorted(compute(tasks, settings, used), key=lambda r: r["start"])
        graph = settings.record(shape, used)
    report = {}
    for r in results:
        for key, value in r["report"].items():
            report[key] = report.get(key, 0) + value
    if not any(r["rows"] for r in results):
        write_partition(_empty_latents(model), folder, 0)
    record = {"windows": report, "dask": graph}
    record["dask"]["seconds"] = round(time.perf_counter() - started, 3)
    write_record(folder, record)
    return folder


def _sites_source(sites, n_frames: int):
    """``(start, stop) ->`` what a task receives for its sites: the rows, or where to read them."""
    if isinstance(sites, (str, os.PathLike)) and Path(sites).is_dir():
        folder = str(sites)
        return lambda a, b: (folder, a, b)
    if isinstance(sites, (str, os.PathLike)):
        from ..io.sites import read_sites

        sites = read_sites(sites)
    from ..io.sites import validate_sites

    sites = validate_sites(sites)
    frames = sites["frame"].to_numpy()
    if len(frames) and (frames.min() < 0 or frames.max() >= n_frames):
        raise ValueError(f"sites: frame numbers must lie in 0..{n_frames - 1}")
    return lambda a, b: sites[(frames >= a) & (frames < b)]


def _encode_chunk(block, model, sites, start: int, stop: int, folder: str, recipe: dict) -> dict:
    from ..io.sites import validate_sites
    from ..vae.latents import encode_sites

    with one_thread():
        if isinstance(sites, tuple):
            sites = validate_sites(read_partitions(sites[0], frames=sites[1:]))
        if len(sites) == 0:
            return {"start": start, "rows": 0, "report": {}}
        if isinstance(model, str):
            from ..vae.files import load_model

            model = load_model(model)
        frames = read_block(block)
        local = sites.copy()
        local["frame"] = local["frame"] - start
        table, report = encode_sites(model, frames, local, normalisation=recipe)
        table["frame"] = table["frame"] + start
    write_partition(table.reset_index(drop=True), folder, start)
    return {"start": start, "rows": len(table), "report": dataclasses.asdict(report)}


def _empty_latents(model) -> pd.DataFrame:
    from ..io.sites import empty_sites

    if isinstance(model, str):
        from ..vae.files import load_model

        model = load_model(model)
    cfg = model.config
    names = cfg.structural_names() + [f"z{i}" for i in range(cfg.latent)]
    table = empty_sites()
    for name in names + [f"{n}_sigma" for n in names]:
        table[name] = np.zeros(0)
    return table


def run_record(folder: str | os.PathLike) -> dict:
    """The record a chunked run left in its table's folder (``{}`` if none)."""
    return read_record(folder)
