"""A ``D × D`` grid over two latents, decoded in batches (shared by the latent-plane maps).

Orientation (same as :mod:`.chemistry`): ``map[i, j]`` is the latent point
``(grid[j], grid[i])`` — columns follow the first latent, rows the second,
row 0 at the lowest value (draw with the origin at the bottom).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np


def as_decoder(decoder) -> Callable:
    """A trained VAE (→ :func:`~napari_rvae.analysis.chemistry.model_decoder`) or a callable
    ``z (N, 2) → windows (N, h, w)``."""
    if hasattr(decoder, "config") and hasattr(decoder, "decode_parts"):
        from .chemistry import model_decoder

        return model_decoder(decoder)
    if not callable(decoder):
        raise ValueError("decoder: expected a trained VAE or a callable z (N, 2) -> windows (N, h, w)")
    return decoder


def grid_points(d: int, span: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """``(grid (d,), points (d·d, 2))``: ``linspace(−span, span, d)`` and the points in map (row-major) order."""
    if not 1 <= int(d) <= 1000:
        raise ValueError(f"d: grid points per axis must be 1–1000, got {d}")
    if not span > 0:
        raise ValueError(f"span: must be > 0 latent units, got {span}")
    grid = np.linspace(-span, span, int(d))
    points = np.stack(np.meshgrid(grid, grid, indexing="xy"), axis=-1).reshape(-1, 2)
    return grid, points


def decoded_batches(decoder, points: np.ndarray, batch: int = 512) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, windows (b, h, w) float32)`` for consecutive batches of ``points``."""
    decoder = as_decoder(decoder)
    if int(batch) < 1:
        raise ValueError(f"batch: must be ≥ 1 windows, got {batch}")
    for s in range(0, len(points), int(batch)):
        chunk = points[s : s + int(batch)]
        windows = np.asarray(decoder(chunk), dtype=np.float32)
        if windows.ndim != 3 or len(windows) != len(chunk):
            raise ValueError(f"decoder: expected (N, h, w) windows for N latent points, got shape {windows.shape}")
        yield s, windows


def subgrid_pixels(decoder, d: int, span: float, max_side: int = 32) -> np.ndarray:
    """Every decoded pixel value over a sub-grid of at most ``max_side²`` latent points."""
    _, points = grid_points(min(int(d), max_side), span)
    return np.concatenate([w.ravel() for _, w in decoded_batches(decoder, points)])


def subgrid_median(decoder, d: int, span: float, max_side: int = 32) -> float:
    """Median decoded pixel value over a sub-grid of at most ``max_side²`` latent points
    (the "median value of latent space" that splits switched from unswitched)."""
    return float(np.median(subgrid_pixels(decoder, d, span, max_side)))
