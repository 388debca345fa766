"""Checking a movie's values block by block, so a movie larger than memory is checked in bounded memory.

:func:`value_summary` reads a ``(T, Y, X)`` movie (numpy, memory map or dask) a block of frames
at a time (at most :data:`BLOCK_BYTES` of pixels) and returns the finite value range, the
counts of NaN and infinite pixels, and the frames that cannot be analysed (all NaN or
infinite, or constant). :func:`check_finite` stops at the first block holding a NaN or an
infinite pixel and raises the message the pipeline has always given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

#: pixels (as float32) read at once
BLOCK_BYTES = 64 * 2**20

#: the pipeline's message for a movie with NaN or infinite pixels
NOT_FINITE = "{name}: contains NaN or infinite pixels; crop or fill them first"


@dataclass
class ValueSummary:
    """What :func:`value_summary` found: finite range, bad pixels, frames that cannot be analysed."""

    low: float = float("nan")
    high: float = float("nan")
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    #: frame index → why it cannot be analysed ("all pixels are NaN or infinite", "the frame is constant")
    unusable: dict = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        return self.nan == 0 and self.posinf == 0 and self.neginf == 0


def frame_blocks(data: Any, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """``(first frame, block)`` over a ``(T, Y, X)`` movie, each block an in-memory float32 array of
    at most ``block_bytes`` (one frame at least); dask blocks are computed one at a time, in the
    calling thread."""
    if data.ndim == 2:
        data = data[None]
    frame = max(int(np.prod(data.shape[1:], dtype=np.int64)) * 4, 1)
    step = max(1, int(block_bytes) // frame)
    chunks = getattr(data, "chunks", None)
    if chunks and isinstance(chunks, tuple) and isinstance(chunks[0], tuple):  # dask: whole chunks per block
        step = max(step // max(chunks[0]), 1) * max(chunks[0])
    for start in range(0, int(data.shape[0]), step):
        block = data[start:start + step]
        if hasattr(block, "dask"):  # in this thread: one block in memory, no thread pool
            block = block.compute(scheduler="synchronous")
        yield start, np.asarray(block, dtype=np.float32)


def value_summary(data: Any, *, block_bytes: int = BLOCK_BYTES) -> ValueSummary:
    """Finite range, NaN / ±inf counts and unusable frames of a ``(T, Y, X)`` movie, block by block."""
    summary = ValueSummary()
    low, high = np.inf, -np.inf
    for start, block in frame_blocks(data, block_bytes):
        finite = np.isfinite(block)
        nan = np.isnan(block)
        summary.nan += int(nan.sum())
        summary.posinf += int((block == np.inf).sum())
        summary.neginf += int((block == -np.inf).sum())
        lo = np.where(finite, block, np.inf).min(axis=(1, 2))
        hi = np.where(finite, block, -np.inf).max(axis=(1, 2))
        for k, (a, b) in enumerate(zip(lo, hi)):
            if not np.isfinite(a):
                summary.unusable[start + k] = "all pixels are NaN or infinite"
            elif b <= a:
                summary.unusable[start + k] = "the frame is constant"
        if np.isfinite(lo).any():
            low, high = min(low, float(lo[np.isfinite(lo)].min())), max(high, float(hi[np.isfinite(hi)].max()))
    if np.isfinite(low):
        summary.low, summary.high = low, high
    return summary


def check_finite(data: Any, name: str = "movie", *, block_bytes: int = BLOCK_BYTES) -> None:
    """Raise ``ValueError`` (the pipeline's message) at the first block holding NaN or ±inf."""
    for _, block in frame_blocks(data, block_bytes):
        if not np.isfinite(block).all():
            raise ValueError(NOT_FINITE.format(name=name))


def sample_range(data: Any, n_frames: int = 3) -> tuple[float, float] | None:
    """Finite ``(low, high)`` of a few evenly spaced frames (first, middle, last): contrast limits
    for a lazy movie without reading it all; ``None`` when those frames hold no finite value."""
    count = int(data.shape[0]) if data.ndim >= 3 else 1
    picks = np.unique(np.linspace(0, count - 1, min(n_frames, count)).round().astype(int))
    low, high = np.inf, -np.inf
    for t in picks:
        frame = np.asarray(data[int(t)] if data.ndim >= 3 else data, dtype=np.float32)
        finite = frame[np.isfinite(frame)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if not np.isfinite(low):
        return None
    return low, (high if high > low else low + 1.0)
