"""How a chunked run is split and where it runs: chunks of frames, the frames of one chunk, the scheduler.

A movie is cut into chunks of consecutive frames; every chunk becomes one task that reads its
frames, works on them and writes its result to disk, so only a few chunks are in memory at a
time. The same list of tasks runs on local threads, local processes, or a ``dask.distributed``
cluster (an existing ``Client`` or a scheduler address).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np

SCHEDULERS = ("processes", "threads", "sync")
#: The segmenter predicts tiles in batches of this many; chunks hold a multiple of it so every batch
#: holds the same tiles as in a whole-movie run (results are then bit-identical).
FRAME_MULTIPLE = 4
#: Pixels per chunk aimed at by the default chunk size (16 MB of float32 frames; a worker detecting
#: atoms in 4 frames of 1024² peaks at about 0.7 GB, torch included).
CHUNK_PIXELS = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ChunkSettings:
    """Settings of a chunked run (recorded with its outputs).

    chunk : frames per chunk (default: about 4 Mpixel, a multiple of 4, at least 4).
    scheduler : ``"processes"`` (default; detection is CPU-bound Python), ``"threads"`` or ``"sync"``
        (one thread, for debugging); ignored when ``address`` or a client is given.
    address : a ``dask.distributed`` scheduler, ``HOST:PORT`` (``tcp://`` optional).
    workers : local workers (default: the CPUs this process may use); each runs one thread.
    """

    chunk: int | None = None
    scheduler: str = "processes"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self):
        if self.chunk is not None and (int(self.chunk) != self.chunk or self.chunk < 1):
            raise ValueError(f"chunk: expected a number of frames >= 1, got {self.chunk!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: expected one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.workers is not None and (int(self.workers) != self.workers or self.workers < 1):
            raise ValueError(f"workers: expected a number >= 1, got {self.workers!r}")
        if self.address is not None and not str(self.address).strip():
            raise ValueError("dask address: expected HOST:PORT, got an empty string")

    def frames_per_chunk(self, shape: tuple) -> int:
        if self.chunk is not None:
            return int(self.chunk)
        pixels = max(1, int(shape[1]) * int(shape[2]))
        return max(FRAME_MULTIPLE, (CHUNK_PIXELS // pixels) // FRAME_MULTIPLE * FRAME_MULTIPLE)

    def n_workers(self) -> int:
        if self.workers is not None:
            return int(self.workers)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def record(self, shape: tuple, client=None) -> dict:
        """What the run record keeps: chunk size, scheduler, address and workers."""
        out = {"chunk_frames": self.frames_per_chunk(shape), "scheduler": self.scheduler, "address": self.address,
               "workers": self.n_workers(), "threads_per_worker": 1}
        if client is not None:
            info = client.scheduler_info()
            workers = info.get("workers", {})
            out.update(scheduler="distributed", address=info.get("address", self.address), workers=len(workers),
                       threads_per_worker=sorted({w.get("nthreads", 1) for w in workers.values()}) or None)
        elif self.address is not None:
            out["scheduler"] = "distributed"
        return out


def frame_ranges(n_frames: int, chunk: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``0..n_frames`` in chunks of ``chunk`` frames."""
    return [(a, min(a + chunk, n_frames)) for a in range(0, n_frames, chunk)]


@dataclasses.dataclass(frozen=True)
class NpyFrames:
    """Frames ``start:stop`` of a ``.npy`` file, read with plain file reads (no memory map, so the
    pages read do not stay in the reading process)."""

    path: str
    offset: int
    shape: tuple
    dtype: str
    start: int
    stop: int

    def read(self) -> np.ndarray:
        frame = int(np.prod(self.shape[1:]))
        dtype = np.dtype(self.dtype)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + self.start * frame * dtype.itemsize)
            data = np.fromfile(fh, dtype=dtype, count=(self.stop - self.start) * frame)
        return data.reshape((self.stop - self.start,) + tuple(self.shape[1:]))


def movie_blocks(movie, chunk: int) -> tuple[tuple, list]:
    """``(shape, [(start, stop, block), ...])``: each block is what one task receives for its
    frames (a numpy slice, an :class:`NpyFrames` reader for a memory-mapped ``.npy``, or a slice
    of a dask array, which dask computes where the task runs)."""
    from ..detect._checks import lazy_movie

    memmap = _memmap_source(movie)
    if memmap is not None:
        lazy_movie(np.zeros((1,) + memmap.shape[1:], dtype=memmap.dtype))  # the same checks as for arrays
        return memmap.shape, [(a, b, dataclasses.replace(memmap, start=a, stop=b))
                              for a, b in frame_ranges(memmap.shape[0], chunk)]
    data = lazy_movie(movie)
    if data.ndim == 2:
        data = data[None]
    shape = tuple(int(n) for n in data.shape)
    return shape, [(a, b, data[a:b]) for a, b in frame_ranges(shape[0], chunk)]


def _memmap_source(data) -> NpyFrames | None:
    """An :class:`NpyFrames` for a C-ordered memory map (``np.load(path, mmap_mode="r")``, or a slice of
    consecutive frames of it), else None."""
    if not isinstance(data, np.memmap) or data.ndim != 3 or not data.flags.c_contiguous:
        return None
    root = data
    while isinstance(root.base, np.memmap):
        root = root.base
    if getattr(root, "filename", None) is None or root.offset is None:
        return None
    offset = int(root.offset) + (data.__array_interface__["data"][0] - root.__array_interface__["data"][0])
    if offset < 0 or offset + data.nbytes > os.path.getsize(root.filename):
        return None
    return NpyFrames(str(root.filename), offset, tuple(int(n) for n in data.shape), data.dtype.str, 0,
                     int(data.shape[0]))


def read_block(block) -> np.ndarray:
    """The frames of a block as a ``(T, Y, X)`` array (integers become float32, as for a whole movie)."""
    from ..detect._checks import as_movie

    if isinstance(block, NpyFrames):
        block = block.read()
    return as_movie(np.asarray(block))


@contextlib.contextmanager
def one_thread():
    """Numerical libraries (BLAS, OpenMP, torch) on one thread inside a task: the workers are the
    parallelism."""
    from threadpoolctl import threadpool_limits

    torch = None
    with contextlib.suppress(ImportError):
        import torch
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None and previous is not None:
                torch.set_num_threads(previous)


def compute(tasks: list, settings: ChunkSettings, client=None) -> list:
    """Run dask ``tasks`` (delayed) on ``client`` (see :func:`cluster`), or locally as ``settings`` say."""
    import dask

    if not tasks:
        return []
    if client is not None:
        return list(client.compute(tasks, sync=True))
    workers = settings.n_workers()
    if settings.scheduler == "sync" or workers == 1 and settings.scheduler == "threads":
        return list(dask.compute(*tasks, scheduler="sync"))
    return list(dask.compute(*tasks, scheduler=settings.scheduler, num_workers=workers))


@contextlib.contextmanager
def cluster(settings: ChunkSettings, client=None):
    """The client to run on: ``client``, one connected to ``settings.address`` (closed afterwards), or None
    (local workers)."""
    if client is not None or settings.address is None:
        yield client
        return
    with connect(settings.address) as remote:
        yield remote


@contextlib.contextmanager
def connect(address: str):
    """A ``dask.distributed.Client`` for the scheduler at ``address`` (one clear error if unreachable)."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("a dask cluster needs the 'distributed' package: pip install 'napari-rvae[dask]'") from None
    target = address if "://" in address else f"tcp://{address}"
    try:
        client = Client(target, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ValueError(f"cannot reach the dask scheduler at {address} ({err}); start one with 'dask scheduler' "
                         "and workers with 'dask worker HOST:PORT', or leave --dask-address out") from None
    try:
        yield client
    finally:
        client.close()

