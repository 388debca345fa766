"""Latent dynamics: per-frame kernel densities and their NMF (loadings vs bias: see hysteresis).

Paper 001 (Fig. 7) shows how the distribution of each latent (angle, z0, z1)
changes over a movie as a *frame × value* density image. Paper 002 stacks a
per-frame 2D density of the latent plane into a *frames × pixels* matrix,
factorises it with NMF into a few latent "populations", and plots each
population's loading against the applied bias, where switching shows up as a
hysteresis loop.

Densities are Gaussian kernel density estimates on a fixed grid, evaluated by
linear binning followed by a Gaussian filter (cost O(sites + grid), so a
movie with millions of windows is fine). The angle uses a wrapped
(circular) kernel on ``[-π, π)``. Each frame's density integrates to 1 over
its grid (up to the tails falling outside a linear grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from threadpoolctl import threadpool_limits

from .angles import wrap_angle


@dataclass
class FrameDensity:
    """Density of one or two variables in every frame.

    Attributes
    ----------
    density : (T, G) or (T, Gy, Gx) float64
        Density per frame, in 1 / (variable units); 1D rows integrate to 1
        with ``grid`` spacing, 2D images with ``grids`` spacings.
    frames : (T,) int64
        Frame number of each row.
    grids : tuple of (G,) arrays
        Grid of each variable (``(grid,)`` in 1D, ``(y_grid, x_grid)`` in 2D).
    bandwidth : tuple of float
        Kernel width per variable, in the variable's units.
    names : tuple of str
        Variable names.
    """

    density: np.ndarray
    frames: np.ndarray
    grids: tuple
    bandwidth: tuple
    names: tuple

    @property
    def grid(self) -> np.ndarray:
        """The (first) grid."""
        return self.grids[0]

    def matrix(self) -> np.ndarray:
        """The densities flattened to a (T, pixels) matrix (input of :func:`density_nmf`)."""
        return self.density.reshape(len(self.density), -1)


def _frame_index(frames: np.ndarray, frame_ids) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames).ravel().astype(np.int64)
    if frame_ids is None:
        frame_ids = np.unique(frames)
    else:
        frame_ids = np.asarray(frame_ids).ravel().astype(np.int64)
        if len(np.unique(frame_ids)) != len(frame_ids):
            raise ValueError("frame_ids: must not repeat a frame")
    order = np.argsort(frame_ids)
    pos = np.searchsorted(frame_ids[order], frames)
    pos = np.clip(pos, 0, len(frame_ids) - 1)
    known = frame_ids[order][pos] == frames if len(frame_ids) else np.zeros(len(frames), bool)
    return frame_ids, np.where(known, order[pos], -1)


def _linear_bins(t: np.ndarray, size: int, circular: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Linear binning of fractional bin coordinates ``t`` onto ``size`` bins."""
    lo = np.floor(t)
    frac = t - lo
    lo = lo.astype(np.int64)
    out = []
    for idx, w in ((lo, 1.0 - frac), (lo + 1, frac)):
        if circular:
            idx = np.mod(idx, size)
        out.append((idx, w))
    return out


def _kde_grid(
    values: list[np.ndarray], frame_pos: np.ndarray, n_frames: int, grids: list[np.ndarray],
    bandwidths: list[float], circular: list[bool], max_cells: int = 4_000_000,
) -> np.ndarray:
    """Binned Gaussian KDE per frame on a product grid (1 or 2 variables).

    Sites are binned linearly onto bins at most half the bandwidth wide, the
    histogram is smoothed with a Gaussian (wrapped on circular axes) and
    sampled back at the output grid. Frames are processed in chunks so the
    fine histogram never exceeds ``max_cells`` values (~32 MB).

    A kernel far narrower than the grid spacing (e.g. the relative bandwidth of a
    collapsed latent whose values are all but identical) would need a fine
    histogram too large for memory; it is widened to the narrowest kernel the
    fine grid resolves, which the grid could not show apart anyway. Returns
    ``(density, bandwidths used)``.
    """
    per_axis = max_cells ** (1.0 / len(values))  # fine bins per axis that fit in max_cells
    fine_sizes, oversample, coords, steps, used = [], [], [], [], []
    for v, grid, h, circ in zip(values, grids, bandwidths, circular):
        step = (2 * np.pi / len(grid)) if circ else (grid[1] - grid[0])
        most = max(1, int(per_axis // len(grid)))  # the finest oversampling that fits
        h = max(float(h), 2.0 * step / most)
        m = max(1, min(most, int(np.ceil(2.0 * step / h))))  # fine bins ≤ h / 2 (error < 0.5 % of the peak)
        fine_sizes.append(len(grid) * m if circ else (len(grid) - 1) * m + 1)
        oversample.append(m)
        steps.append(step / m)
        coords.append((v - grid[0]) / (step / m))
        used.append(h)
    bandwidths = used
    cells = int(np.prod(fine_sizes))
    binned = [_linear_bins(c, s, circ) for c, s, circ in zip(coords, fine_sizes, circular)]
    order = np.argsort(frame_pos, kind="stable")
    sorted_pos = frame_pos[order]
    sigmas = [0.0] + [h / st for h, st in zip(bandwidths, steps)]
    modes = ["constant"] + ["wrap" if c else "constant" for c in circular]
    sample = (slice(None), *(slice(None, None, m) for m in oversample))
    out = np.zeros((n_frames, *(len(g) for g in grids)), dtype=np.float64)
    chunk = max(1, max_cells // cells)
    for first in range(0, n_frames, chunk):
        last = min(n_frames, first + chunk)
        lo, hi = np.searchsorted(sorted_pos, [first, last])
        rows = order[lo:hi]
        if not len(rows):
            continue
        shape = (last - first, *fine_sizes)
        hist = np.zeros(int(np.prod(shape)), dtype=np.float64)
        for combo in np.ndindex(*(2,) * len(values)):
            idx, w, ok = [frame_pos[rows] - first], np.ones(len(rows)), np.ones(len(rows), bool)
            for axis, corner in enumerate(combo):
                i, wi = binned[axis][corner]
                i, wi = i[rows], wi[rows]
                ok &= (i >= 0) & (i < fine_sizes[axis])
                idx.append(i)
                w = w * wi
            flat = np.ravel_multi_index(tuple(i[ok] for i in idx), shape)
            hist += np.bincount(flat, weights=w[ok], minlength=hist.size)  # much faster than np.add.at
        hist = gaussian_filter(hist.reshape(shape), sigma=sigmas, mode=modes, truncate=4.0)
        out[first:last] = hist[sample]
    counts = np.bincount(frame_pos[frame_pos >= 0], minlength=n_frames).astype(np.float64)
    out /= np.prod(steps) * np.maximum(counts, 1.0).reshape(-1, *(1,) * len(values))
    return out, tuple(bandwidths)


def _bandwidth(values: np.ndarray, bandwidth: float, relative: bool, circular: bool = False) -> float:
    if not bandwidth > 0:
        raise ValueError(f"bandwidth: must be > 0, got {bandwidth}")
    if not relative:
        return float(bandwidth)
    if circular:  # circular standard deviation, at most that of a uniform angle (π/√3)
        resultant = float(np.abs(np.exp(1j * values).mean())) if len(values) else 0.0
        spread = min(np.sqrt(-2 * np.log(max(resultant, 1e-300))), np.pi / np.sqrt(3))
    else:
        spread = float(np.std(values)) if len(values) > 1 else 0.0
    h = float(bandwidth) * (spread if spread > 1e-12 else 1.0)
    if len(values) and not circular:  # wide enough for the grid to be resolved at the values' magnitude
        h = max(h, 1e4 * float(np.spacing(np.abs(values).max())))
    return h


def _check_grid(grid, name: str) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64).ravel()
    if len(grid) < 3 or not np.all(np.diff(grid) > 0) or not np.allclose(np.diff(grid), grid[1] - grid[0], rtol=1e-6):
        raise ValueError(f"{name}: expected an evenly spaced increasing grid of ≥ 3 values")
    return grid


def circular_grid(n_grid: int = 180) -> np.ndarray:
    """Evenly spaced angles ``-π + k·2π/n`` (radians), the grid of circular densities."""
    return -np.pi + 2 * np.pi * np.arange(int(n_grid)) / int(n_grid)


def density_vs_frame(
    frames: np.ndarray,
    values: np.ndarray,
    *,
    grid: np.ndarray | None = None,
    n_grid: int = 128,
    bandwidth: float = 0.075,
    relative_bandwidth: bool = True,
    circular: bool = False,
    frame_ids: Sequence[int] | None = None,
    name: str = "value",
) -> FrameDensity:
    """Kernel density of one variable in every frame → a frame × value image.

    Parameters
    ----------
    frames : (N,) int
        Frame of each site.
    values : (N,) float
        The variable (e.g. a latent ``z0``; an angle in radians when ``circular``).
    grid : (G,) array, optional
        Evenly spaced values to evaluate the density at. Default: ``n_grid``
        points from ``min - 4h`` to ``max + 4h`` (linear) or
        :func:`circular_grid` (circular).
    bandwidth : float
        Gaussian kernel width. With ``relative_bandwidth`` (default) it is in
        standardised units, i.e. multiplied by the standard deviation of all
        values (paper 001 uses 0.075; for angles the circular standard
        deviation, at most π/√3); otherwise in the variable's units.
    circular : bool
        Treat values as angles: wrap them to (-π, π] and use a wrapped kernel
        on ``[-π, π)``.
    frame_ids : sequence of int, optional
        Frames to report (rows of the image), e.g. ``range(T)`` so frames
        without sites appear as zero rows. Default: frames present.

    Returns
    -------
    FrameDensity
        ``density`` has shape (T, G); every row with sites integrates to ~1.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    frames = np.asarray(frames).ravel()
    if values.shape != frames.shape:
        raise ValueError(f"frames and values: need the same length, got {frames.size} and {values.size}")
    ok = np.isfinite(values)
    values, frames = values[ok], frames[ok]
    if not len(values):
        raise ValueError("values: no finite values to estimate a density from")
    if circular:
        values = wrap_angle(values)
    h = _bandwidth(values, bandwidth, relative_bandwidth, circular)
    if circular:
        h = min(h, np.pi / 2)
        grid = circular_grid(n_grid) if grid is None else _check_grid(grid, "grid")
        if circular and not np.isclose((grid[1] - grid[0]) * len(grid), 2 * np.pi, rtol=1e-6):
            raise ValueError("grid: a circular grid must cover one full turn (use circular_grid(n))")
    elif grid is None:
        grid = np.linspace(values.min() - 4 * h, values.max() + 4 * h, int(n_grid))
    else:
        grid = _check_grid(grid, "grid")
    frame_ids, pos = _frame_index(frames, frame_ids)
    density, used = _kde_grid([values], pos, len(frame_ids), [grid], [h], [circular])
    return FrameDensity(density, frame_ids, (grid,), used, (name,))


def latents_vs_frame(
    sites: pd.DataFrame,
    columns: Sequence[str] | None = None,
    **kwargs,
) -> dict[str, FrameDensity]:
    """:func:`density_vs_frame` for several sites-table columns (paper 001, Fig. 7).

    ``angle`` is treated as circular; other keyword arguments are passed on.
    Default columns: ``angle`` and every ``z`` latent present.
    """
    from ..io.sites import latent_columns

    if "frame" not in sites.columns:
        raise ValueError("sites: missing column 'frame'")
    columns = list(columns) if columns is not None else [c for c in latent_columns(sites) if c not in ("dx", "dy")]
    if not columns:
        raise ValueError("columns: no latent columns to show; encode the sites first or pass columns=[...]")
    out = {}
    for name in columns:
        if name not in sites.columns:
            raise ValueError(f"columns: {name!r} not in the sites table")
        out[name] = density_vs_frame(
            sites["frame"].to_numpy(), sites[name].to_numpy(), circular=(name == "angle"), name=name, **kwargs
        )
    return out


def latent_density_2d(
    frames: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_grid: int = 64,
    bandwidth: float = 0.075,
    relative_bandwidth: bool = True,
    extent: tuple[float, float, float, float] | None = None,
    frame_ids: Sequence[int] | None = None,
    names: tuple[str, str] = ("z0", "z1"),
) -> FrameDensity:
    """2D kernel density of a latent plane in every frame (paper 002).

    Parameters
    ----------
    frames : (N,) int
    x, y : (N,) float
        The two latents (horizontal and vertical axis of the density image).
    n_grid : int
        Grid points per axis.
    bandwidth, relative_bandwidth : float, bool
        Kernel width per axis (relative: × that axis' standard deviation).
    extent : (x_min, x_max, y_min, y_max), optional
        Fixed grid limits; default: data range ± 4 kernel widths.

    Returns
    -------
    FrameDensity
        ``density`` (T, n_grid, n_grid), rows = y, columns = x; ``grids`` =
        ``(y_grid, x_grid)``. ``matrix()`` gives the frames × pixels matrix.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    frames = np.asarray(frames).ravel()
    if not (x.shape == y.shape == frames.shape):
        raise ValueError(f"frames, x, y: need the same length, got {frames.size}, {x.size}, {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, frames = x[ok], y[ok], frames[ok]
    if not len(x):
        raise ValueError("x, y: no finite values to estimate a density from")
    hx = _bandwidth(x, bandwidth, relative_bandwidth)
    hy = _bandwidth(y, bandwidth, relative_bandwidth)
    if extent is None:
        extent = (x.min() - 4 * hx, x.max() + 4 * hx, y.min() - 4 * hy, y.max() + 4 * hy)
    if len(extent) != 4 or not (extent[1] > extent[0] and extent[3] > extent[2]):
        raise ValueError(f"extent: expected (x_min, x_max, y_min, y_max) with min < max, got {extent}")
    x_grid = np.linspace(extent[0], extent[1], int(n_grid))
    y_grid = np.linspace(extent[2], extent[3], int(n_grid))
    frame_ids, pos = _frame_index(frames, frame_ids)
    density, used = _kde_grid([y, x], pos, len(frame_ids), [y_grid, x_grid], [hy, hx], [False, False])
    return FrameDensity(density, frame_ids, (y_grid, x_grid), used, (names[1], names[0]))


@dataclass
class DensityNMF:
    """NMF of a frames × density matrix.

    Attributes
    ----------
    components : (K, ...) float64
        Each component is a density with the grid shape of the input and the
        same total mass as an average frame, so ...
    loadings : (T, K) float64
        ... the loadings of a frame are roughly the fractions of the sites
        that belong to each population (they sum to ≈ 1).
    frames : (T,) int64
    error : float
        Relative reconstruction error ‖X − LC‖ / ‖X‖.
    """

    components: np.ndarray
    loadings: np.ndarray
    frames: np.ndarray
    error: float


def density_nmf(
    density: FrameDensity | np.ndarray, n_components: int = 2, *, seed: int = 0, max_iter: int = 2000
) -> DensityNMF:
    """Factorise per-frame densities into populations and their loadings vs frame.

    Parameters
    ----------
    density : FrameDensity or (T, ...) array
        Non-negative densities, one per frame.
    n_components : int
        Number of populations.
    seed : int
        Random state of the NMF initialisation.

    Returns
    -------
    DensityNMF
        Components ordered by the position of their maximum on the grid.
    """
    from sklearn.decomposition import NMF

    frames = density.frames if isinstance(density, FrameDensity) else None
    data = density.density if isinstance(density, FrameDensity) else np.asarray(density, dtype=np.float64)
    if data.ndim < 2:
        raise ValueError(f"density: expected (frames, ...) densities, got shape {data.shape}")
    shape = data.shape[1:]
    matrix = np.clip(data.reshape(len(data), -1), 0.0, None)
    n_components = int(n_components)
    if not 1 <= n_components <= min(matrix.shape):
        raise ValueError(f"n_components: must be between 1 and {min(matrix.shape)}, got {n_components}")
    if not matrix.any():
        raise ValueError("density: all zero; nothing to factorise")
    model = NMF(n_components, init="nndsvda", random_state=seed, max_iter=max_iter, tol=1e-6)
    with threadpool_limits(1):  # small matrices: threads only add contention
        loadings = model.fit_transform(matrix)
    components = model.components_.copy()
    row_mass = matrix.sum(axis=1)
    target = float(row_mass[row_mass > 0].mean())
    mass = components.sum(axis=1)
    mass[mass <= 0] = 1.0
    components *= (target / mass)[:, None]
    loadings *= (mass / target)[None, :]
    order = np.argsort(np.argmax(components, axis=1), kind="stable")
    components, loadings = components[order], loadings[:, order]
    error = float(np.linalg.norm(matrix - loadings @ components) / np.linalg.norm(matrix))
    if frames is None:
        frames = np.arange(len(matrix))
    return DensityNMF(components.reshape(n_components, *shape), loadings, np.asarray(frames), error)
