"""Latent maps: a per-site value (angle, z0, …) interpolated into an image for every frame.

Papers 001 and 004 show latents "on the image": every site coloured by its
latent value, or the value interpolated between sites into a continuous map
(the shift-VAE paper's latent maps, whose smoothness is scored by FFT).
Angles are periodic: they are interpolated through (cos, sin) so that a
site at +π and one at −π average to π, not to 0.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from scipy.interpolate import griddata

METHODS = ("linear", "nearest", "cubic")


def _check(sites: pd.DataFrame, column: str, shape, step: int, method: str) -> tuple[int, int]:
    if not isinstance(sites, pd.DataFrame):
        raise ValueError(f"sites: expected a pandas DataFrame (the sites table), got {type(sites).__name__}")
    missing = [c for c in ("frame", "y", "x", column) if c not in sites.columns]
    if missing:
        raise ValueError(f"sites: missing column(s) {', '.join(missing)}; a latent map needs frame, y, x and {column!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape: expected (Y, X) image size in pixels, got {tuple(shape)}")
    if int(step) < 1:
        raise ValueError(f"step: must be a positive number of pixels, got {step}")
    if method not in METHODS:
        raise ValueError(f"method: choose one of {', '.join(METHODS)}, got {method!r}")
    return int(shape[0]), int(shape[1])


def map_grid(shape, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (y, x) of the map grid: every ``step`` pixels, starting at 0; shapes (Y', X')."""
    ny, nx = int(shape[0]), int(shape[1])
    return np.meshgrid(np.arange(0, ny, step, dtype=np.float64), np.arange(0, nx, step, dtype=np.float64), indexing="ij")


def frame_latent_map(y, x, values, shape, *, step: int = 1, method: str = "linear", circular: bool = False) -> np.ndarray:
    """Interpolate site values at (y, x) pixels onto the (Y, X) image grid of one frame.

    Parameters
    ----------
    y, x : array (N,)
        Site positions in pixels (row, column), sub-pixel.
    values : array (N,)
        The value at each site (radians when ``circular``).
    shape : (int, int)
        Image size (Y, X) in pixels.
    step : int
        Map pixel spacing in image pixels (the map has shape ``ceil(Y/step), ceil(X/step)``).
    method : {'linear', 'nearest', 'cubic'}
        scipy ``griddata`` method; 'linear' and 'cubic' leave NaN outside the sites' convex hull.
    circular : bool
        Treat values as angles (radians) and interpolate their unit vectors; the result is in [−π, π].

    Returns
    -------
    ndarray, float32, shape (ceil(Y/step), ceil(X/step))
        NaN where nothing can be interpolated (fewer than 3 usable sites, outside the hull).
    """
    gy, gx = map_grid(shape, step)
    y, x, values = (np.asarray(a, dtype=np.float64).ravel() for a in (y, x, values))
    ok = np.isfinite(y) & np.isfinite(x) & np.isfinite(values)
    y, x, values = y[ok], x[ok], values[ok]
    out = np.full(gy.shape, np.nan, dtype=np.float32)
    if len(values) < 3 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return out
    points = np.column_stack([y, x])
    grid = (gy, gx)
    try:
        if circular:
            c = griddata(points, np.cos(values), grid, method=method)
            s = griddata(points, np.sin(values), grid, method=method)
            out[:] = np.arctan2(s, c)
        else:
            out[:] = griddata(points, values, grid, method=method)
    except Exception as err:  # qhull fails on degenerate (collinear) site sets
        if "qhull" not in type(err).__name__.lower() and "QH" not in str(err):
            raise
    return out


def iter_latent_maps(sites: pd.DataFrame, column: str, shape, *, frames=None, step: int = 1,
                     method: str = "linear", circular: bool | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame, map)`` for each frame: :func:`frame_latent_map` of that frame's sites.

    ``circular`` defaults to True for angle columns (``angle``, ``angle_*``).
    ``frames`` defaults to ``0 … max(frame)``; frames without sites give NaN maps.
    """
    _check(sites, column, shape, step, method)
    if circular is None:
        circular = column == "angle" or column.startswith("angle_")
    frame_of_site = sites["frame"].to_numpy(dtype=np.int64)
    if frames is None:
        frames = range(int(frame_of_site.max()) + 1 if len(frame_of_site) else 1)
    order = np.argsort(frame_of_site, kind="stable")
    sorted_frames = frame_of_site[order]
    y, x, v = (sites[c].to_numpy(dtype=np.float64)[order] for c in ("y", "x", column))
    for frame in frames:
        lo, hi = np.searchsorted(sorted_frames, [frame, frame + 1])
        yield int(frame), frame_latent_map(y[lo:hi], x[lo:hi], v[lo:hi], shape, step=step, method=method, circular=circular)


def latent_maps(sites: pd.DataFrame, column: str, shape, *, frames=None, step: int = 1,
                method: str = "linear", circular: bool | None = None) -> np.ndarray:
    """All frames' maps stacked: float32 array (T, ceil(Y/step), ceil(X/step)). See :func:`iter_latent_maps`.

    Examples
    --------
    >>> import pandas as pd
    >>> sites = pd.DataFrame({"frame": [0, 0, 0, 0], "y": [0, 0, 9, 9], "x": [0, 9, 0, 9], "z0": [0, 9, 0, 9]})
    >>> float(latent_maps(sites, "z0", (10, 10))[0, 5, 3])
    3.0
    """
    maps = [m for _, m in iter_latent_maps(sites, column, shape, frames=frames, step=step, method=method, circular=circular)]
    if not maps:
        gy, _ = map_grid(shape, step)
        return np.zeros((0, *gy.shape), dtype=np.float32)
    return np.stack(maps)
