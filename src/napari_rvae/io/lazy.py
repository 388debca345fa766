"""Lazy movies: files larger than :func:`lazy_bytes` open as dask arrays chunked one frame per chunk.

Nothing is read until a frame is asked for. Each lazy array reads its file through a small
:class:`FileArray` that opens the file on first access *in the process that reads* and never
carries file handles or pixels when pickled, so the same dask graph runs in threads, in
worker processes or on a ``dask.distributed`` cluster (every worker opens the file itself).

Sources: ``.npy`` (read by file offset), one HDF5 dataset (h5py), a TIFF series (tifffile's
zarr store, strip by strip; a memory map where zarr is not installed), a zarr array, a signal
that rosettasciio reads lazily (DM3/DM4, SER, MRC: rosettasciio reopens the file in each process),
and, for sequences of files, one delayed read per file (:func:`stacked_files`).

The threshold is :data:`~.movie.LAZY_BYTES` (1 GiB); the environment variable
``NAPARI_RVAE_LAZY_BYTES`` (a number of bytes) overrides it, e.g. to try the lazy path on small files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: environment variable that sets the lazy threshold in bytes
LAZY_ENV = "NAPARI_RVAE_LAZY_BYTES"


def lazy_bytes() -> int:
    """Files larger than this many bytes open lazily: ``NAPARI_RVAE_LAZY_BYTES`` when set, else
    :data:`~.movie.LAZY_BYTES` (read at call time, so tests may lower either)."""
    from . import movie

    text = os.environ.get(LAZY_ENV, "").strip()
    if text:
        try:
            return max(int(float(text)), 0)
        except ValueError:
            raise ValueError(f"{LAZY_ENV}={text!r}: expected a number of bytes") from None
    return int(movie.LAZY_BYTES)


def is_large(path: str | os.PathLike) -> bool:
    """True when ``path`` (a file, or a folder such as a ``.zarr`` store: its files together)
    is larger than :func:`lazy_bytes`."""
    path = Path(path)
    if path.is_dir():
        total = 0
        limit = lazy_bytes()
        for root, _, files in os.walk(path):
            for name in files:
                total += os.path.getsize(os.path.join(root, name))
                if total > limit:
                    return True
        return False
    return path.stat().st_size > lazy_bytes()


# ------------------------------------------------------------------ openers
class NpyFrames:
    """A ``.npy`` file read frames at a time by file offset (no memory map: pages of a mapped file
    count in the process's resident memory until the map is dropped, so streaming a movie bigger
    than memory through a map looks like using all of it)."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if dtype.hasobject:
            raise ValueError(f"{Path(path).name}: holds Python objects; only numeric arrays are read")
        self.path, self.shape, self.dtype, self.fortran = path, tuple(shape), np.dtype(dtype), bool(fortran)
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        if self.fortran or self.ndim < 2 or not isinstance(index[0], slice):
            return np.asarray(np.load(self.path, mmap_mode="r", allow_pickle=False)[index])
        start, stop, step = index[0].indices(self.shape[0])
        frame = int(np.prod(self.shape[1:], dtype=np.int64))
        count = max(stop - start, 0)
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * frame * self.dtype.itemsize)
            block = np.fromfile(f, dtype=self.dtype, count=count * frame).reshape((count,) + self.shape[1:])
        return block[(slice(None, None, step),) + index[1:]]


def _open_npy(path: str, key: str) -> Any:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):  # a 3.0 (utf-8) header: memory map
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return NpyFrames(path)


def _open_h5(path: str, key: str) -> Any:
    import h5py

    return h5py.File(path, "r")[key]


def _open_tiff(path: str, key: str) -> Any:
    import tifffile

    try:  # strip by strip through tifffile's zarr store (file reads, compressed or not)
        import zarr
    except ImportError:  # without zarr: a memory map (uncompressed, contiguous files only)
        return tifffile.memmap(path, series=int(key or 0), mode="r")
    tif = tifffile.TiffFile(path)
    return zarr.open(tif.series[int(key or 0)].aszarr(), mode="r")


def _open_zarr(path: str, key: str) -> Any:
    import zarr

    return zarr.open_array(store=path, path=key or None, mode="r")


def _open_rsciio(path: str, key: str) -> Any:
    """Signal ``index`` (of those with an image) of a file rosettasciio reads lazily; key ``module:index``."""
    import importlib

    module, index = key.rsplit(":", 1)
    signals = importlib.import_module(f"rsciio.{module}").file_reader(path, lazy=True)
    return [s for s in signals if np.ndim(s["data"]) >= 2][int(index)]["data"]


OPENERS: dict[str, Callable[[str, str], Any]] = {"npy": _open_npy, "h5": _open_h5, "tiff": _open_tiff, "zarr": _open_zarr,
                                                 "rsciio": _open_rsciio}


class FileArray:
    """A read-only array-like over one array in one file, opened on first access in each process.

    Parameters
    ----------
    path : path
    kind : {"npy", "h5", "tiff", "zarr", "rsciio"}
    key : str
        The dataset inside the file (HDF5 dataset name, zarr array path, TIFF series index,
        ``module:index`` of a rosettasciio signal).
    shape, dtype
        As the file declares them (known before anything is read).
    """

    def __init__(self, path: str | os.PathLike, kind: str, key: str, shape: Sequence[int], dtype: Any):
        if kind not in OPENERS:
            raise ValueError(f"kind must be one of {', '.join(OPENERS)}, got {kind!r}")
        self.path, self.kind, self.key = str(path), kind, str(key)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._handle: Any = None
        self._lock = threading.Lock()

    def _array(self) -> Any:
        with self._lock:
            if self._handle is None:
                self._handle = OPENERS[self.kind](self.path, self.key)
            return self._handle

    def __getitem__(self, index: Any) -> np.ndarray:
        part = self._array()[index]
        if hasattr(part, "dask"):  # rosettasciio's own lazy array: computed here, no nested thread pool
            part = part.compute(scheduler="synchronous")
        return np.asarray(part)

    def __getstate__(self) -> dict:
        return {"path": self.path, "kind": self.kind, "key": self.key, "shape": self.shape, "dtype": self.dtype.str}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["kind"], state["key"], state["shape"], state["dtype"])

    def __repr__(self) -> str:
        return f"FileArray({self.path!r}, {self.kind!r}, {self.key!r}, shape={self.shape}, dtype={self.dtype})"


def frame_chunks(shape: Sequence[int]) -> tuple[int, ...]:
    """One frame per chunk: ``(1, Y, X[, …])`` for 3-D and larger arrays, the whole array otherwise."""
    shape = tuple(int(s) for s in shape)
    return ((1,) + shape[1:]) if len(shape) >= 3 else shape


def lazy_array(array: Any, *, name: str | None = None) -> Any:
    """Wrap an array-like (a :class:`FileArray`, memmap, h5py dataset, zarr array) as a dask
    array chunked one frame per chunk (along the first axis)."""
    import dask.array as da

    if isinstance(array, da.Array):
        return array.rechunk(frame_chunks(array.shape))
    if name is None and isinstance(array, FileArray):
        from dask.base import tokenize

        stat = os.stat(array.path)
        name = "file-" + tokenize(array.path, array.kind, array.key, stat.st_mtime_ns, stat.st_size)
    return da.from_array(array, chunks=frame_chunks(array.shape), name=name or None, asarray=True, fancy=False)


def open_lazy(path: str | os.PathLike, kind: str, key: str = "", *, reverse: bool = False) -> Any:
    """A dask array over one array of a file (see :class:`FileArray`), chunked per frame.

    ``reverse=True`` for files that store a movie with its axes reversed (``(X, Y, T)``, as
    EMD does): the array is read one frame (last stored axis) per chunk and transposed.
    """
    import dask.array as da

    probe = OPENERS[kind](str(path), key)
    source = FileArray(path, kind, key, probe.shape, probe.dtype)
    if not reverse or source.ndim < 3:
        return lazy_array(source)
    stat = os.stat(source.path)
    from dask.base import tokenize

    chunks = source.shape[:-1] + (1,)
    name = "file-" + tokenize(source.path, kind, key, stat.st_mtime_ns, stat.st_size, "reversed")
    return da.from_array(source, chunks=chunks, name=name, asarray=True, fancy=False).transpose()


def stacked_files(read_frames: Callable[[Path], np.ndarray], files: Sequence[Path], shapes: Sequence[tuple],
                  dtype: Any = np.float32) -> Any:
    """One dask array of the frames of several files: file ``k`` (``shapes[k]`` = ``(T_k, Y, X)``)
    is read by ``read_frames(file)`` only when one of its frames is needed (one delayed task per file)."""
    import dask
    import dask.array as da

    parts = [da.from_delayed(dask.delayed(read_frames, pure=True)(Path(f)), shape=tuple(int(s) for s in shape),
                             dtype=dtype) for f, shape in zip(files, shapes)]
    return da.concatenate(parts, axis=0)
