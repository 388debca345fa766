"""What ``detect --tracks`` and ``--rings`` add to a table detected in chunks, partition by partition.

Rings are found frame by frame, so each partition gets its ring counts and hollow sites on its own
(one task per partition, on the same workers as the detection). Tracks link sites across frames and
chunks: only the columns linking needs (frame, y, x) of the sites it links are read from every
partition (a few bytes per site; for dopants a few rows per frame), linked as in memory, and the
``track_id`` column is written back into each partition. The rows are those of the in-memory
command; within a partition the hollow sites follow that partition's atoms (in memory they follow
all the atoms of the movie).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .graph import ChunkSettings, cluster, compute
from .store import partitions, write_partition

LINK_COLUMNS = ("frame", "y", "x", "kind", "class")


def link_tracks_in_partitions(folder: str | os.PathLike, *, r_max: float, classes=None, kind: str | None = "atom",
                              min_length: int = 2, max_gap: int = 0, drift: str | None = "auto") -> int:
    """:func:`~napari_rvae.detect.tracks.link_tracks` on a partitioned table (same parameters): adds
    ``track_id`` to every partition; returns the number of tracks."""
    import pyarrow.parquet as pq

    from ..detect.tracks import link_tracks

    files = partitions(folder)
    linked = []
    for number, path in enumerate(files):
        file = pq.ParquetFile(path)
        part = file.read(columns=[c for c in LINK_COLUMNS if c in file.schema_arrow.names]).to_pandas()
        use = np.ones(len(part), bool)
        if kind is not None and "kind" in part:
            use &= (part["kind"] == kind).to_numpy()
        if classes is not None:
            if "class" not in part:
                raise ValueError("classes: the sites table has no 'class' column")
            use &= np.isin(part["class"].to_numpy(), np.atleast_1d(classes))
        rows = np.flatnonzero(use)
        linked.append(pd.DataFrame({"frame": part["frame"].to_numpy()[rows], "y": part["y"].to_numpy()[rows],
                                    "x": part["x"].to_numpy()[rows], "part": number, "row": rows}))
    table = pd.concat(linked, ignore_index=True) if linked else pd.DataFrame(columns=["frame", "y", "x"])
    tracks = link_tracks(table, r_max=r_max, kind=None, min_length=min_length, max_gap=max_gap, drift=drift) \
        if len(table) else table.assign(track_id=np.zeros(0, np.int64))
    ids = tracks["track_id"].to_numpy(np.int64)
    for number, path in enumerate(files):
        part = pd.read_parquet(path)
        track = np.full(len(part), -1, np.int64)
        mine = tracks["part"].to_numpy() == number if len(tracks) else np.zeros(0, bool)
        track[tracks["row"].to_numpy()[mine].astype(np.int64)] = ids[mine]
        part["track_id"] = track
        write_partition(part, folder, _start(path))
    return int(ids.max()) + 1 if len(ids) and ids.max() >= 0 else 0


def rings_in_partitions(folder: str | os.PathLike, *, bond_length: float | None, settings: ChunkSettings | None = None,
                        client=None) -> int:
    """:func:`~napari_rvae.detect.rings.find_rings` + :func:`~napari_rvae.detect.rings.with_hollows` on
    every partition of a table (one task each); returns the number of rings."""
    import dask

    settings = settings or ChunkSettings()
    tasks = [dask.delayed(_rings_partition, pure=False)(str(path), bond_length) for path in partitions(folder)]
    with cluster(settings, client) as used:
        return int(sum(compute(tasks, settings, used)))


def _rings_partition(path: str, bond_length: float | None) -> int:
    from ..detect.rings import find_rings, with_hollows

    part = pd.read_parquet(path)
    if not len(part):
        return 0
    atoms, hollows = find_rings(part, bond_length=bond_length)
    write_partition(with_hollows(atoms, hollows), os.path.dirname(path), _start(path))
    return len(hollows)


def _start(path) -> int:
    return int(os.path.basename(str(path)).split("-")[1].split(".")[0])
