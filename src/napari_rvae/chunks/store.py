"""Where chunked runs put their results: a sites table as a folder of Parquet partitions (one per
chunk of frames) and per-frame maps as a zarr array written chunk by chunk.

A partitioned table is a folder ``NAME.parquet/`` holding ``part-000000.parquet``,
``part-000016.parquet``, … (named by their first frame) and ``_run.json`` (the run record;
Parquet readers skip names that start with ``_``). :func:`napari_rvae.io.sites.read_sites`
reads the folder as one table, in frame order.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.files import atomic_write, write_json

RECORD = "_run.json"


def partition_path(folder: str | os.PathLike, start: int) -> Path:
    return Path(folder) / f"part-{int(start):06d}.parquet"


def start_table(folder: str | os.PathLike) -> Path:
    """An empty folder for a partitioned table (an earlier one at the same place is replaced)."""
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"{folder}: a file is in the way of the partitioned table; remove it or choose another name")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def write_partition(table: pd.DataFrame, folder: str | os.PathLike, start: int) -> Path:
    """Write the rows of one chunk atomically (pyarrow, no index)."""
    return atomic_write(partition_path(folder, start), lambda p: table.to_parquet(p, index=False, engine="pyarrow"))


def partitions(folder: str | os.PathLike) -> list[Path]:
    """The partitions of a table, in frame order."""
    return sorted(Path(folder).glob("part-*.parquet"))


def read_partitions(folder: str | os.PathLike, columns: list | None = None,
                    frames: tuple[int, int] | None = None) -> pd.DataFrame:
    """The table of a partitioned folder (only ``columns``; only frames ``start <= frame < stop``)."""
    import pyarrow.dataset as ds

    files = partitions(folder)
    if not files:
        raise ValueError(f"{folder}: no part-*.parquet partitions in this folder")
    where = None
    if frames is not None:
        where = (ds.field("frame") >= int(frames[0])) & (ds.field("frame") < int(frames[1]))
    try:
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        table = dataset.to_table(columns=columns, filter=where).to_pandas()
    except Exception as err:  # pyarrow raises several kinds for broken or mismatched partitions
        raise ValueError(f"{folder}: cannot read the partitioned table ({type(err).__name__}: {err})") from None
    return table.reset_index(drop=True)


def write_side_arrays(folder: str | os.PathLike, start: int, arrays: dict) -> Path:
    """What a chunk leaves for the run's finish beside its partition: ``_side-NNNNNN.npz`` (a name that
    Parquet readers skip), removed by :func:`remove_side_arrays`."""
    def write(target: Path) -> None:
        with open(target, "wb") as fh:  # a file object: numpy adds no suffix
            np.savez(fh, **arrays)

    return atomic_write(Path(folder) / f"_side-{int(start):06d}.npz", write)


def side_arrays(folder: str | os.PathLike) -> list[Path]:
    return sorted(Path(folder).glob("_side-*.npz"))


def remove_side_arrays(folder: str | os.PathLike) -> None:
    for path in side_arrays(folder):
        path.unlink()


def write_record(folder: str | os.PathLike, record: dict) -> Path:
    return write_json(Path(folder) / RECORD, record)


def read_record(folder: str | os.PathLike) -> dict:
    path = Path(folder) / RECORD
    return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------- per-frame arrays (zarr)
def create_frames_array(path: str | os.PathLike, shape: tuple, dtype="float32"):
    """A zarr array for per-frame results of ``shape = (T, ...)``, one zarr chunk per frame so
    chunks of frames are written independently (by different workers at once)."""
    import zarr

    path = Path(path)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return zarr.create_array(store=str(path), shape=tuple(int(n) for n in shape),
                             chunks=(1,) + tuple(int(n) for n in shape[1:]), dtype=dtype, fill_value=0)


def write_frames(path: str | os.PathLike, start: int, block: np.ndarray) -> None:
    """Write frames ``start : start + len(block)`` of a zarr array made by :func:`create_frames_array`."""
    import zarr

    array = zarr.open_array(str(path), mode="r+")
    array[int(start): int(start) + len(block)] = np.asarray(block, dtype=array.dtype)


def open_frames(path: str | os.PathLike):
    """A zarr array written by :func:`write_frames`, as a lazy dask array chunked by frames."""
    import dask.array as da

    return da.from_zarr(str(path))
