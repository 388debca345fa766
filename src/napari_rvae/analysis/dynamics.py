"""Latent dynamics: per-frame kernel densities, their NMF, loadings vs bias.

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

import os
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
    bandwidths: list[float], circular: list[bool],
) -> np.ndarray:
    """Binned Gaussian KDE per frame on a product grid (1 or 2 variables)."""
    fine_sizes, oversample, coords = [], [], []
    for v, grid, h, circ in zip(values, grids, bandwidths, circular):
        step = (2 * np.pi / len(grid)) if circ else (grid[1] - grid[0])
        m = max(1, int(np.ceil(3.0 * step / h)))  # fine bins ≤ h / 3
        size = len(grid) * m if circ else (len(grid) - 1) * m + 1
        fine_sizes.append(size)
        oversample.append(m)
        coords.append((v - grid[0]) / (step / m))
    hist = np.zeros((n_frames, *fine_sizes), dtype=np.float64)
    counts = np.bincount(frame_pos[frame_pos >= 0], minlength=n_frames).astype(np.float64)
    binned = [_linear_bins(c, s, circ) for c, s, circ in zip(coords, fine_sizes, circular)]
    keep_rows = frame_pos >= 0
    for combo in np.ndindex(*(2,) * len(values)):
        idx, w, ok = [frame_pos], np.ones(len(frame_pos)), keep_rows.copy()
        for axis, corner in enumerate(combo):
            i, wi = binned[axis][corner]
            ok &= (i >= 0) & (i < fine_sizes[axis])
            idx.append(i)
            w = w * wi
        np.add.at(hist, tuple(i[ok] for i in idx), w[ok])
    sigmas = [0.0] + [h / ((2 * np.pi / len(g)) / m if c else (g[1] - g[0]) / m)
                      for h, g, m, c in zip(bandwidths, grids, oversample, circular)]
    modes = ["constant"] + ["wrap" if c else "constant" for c in circular]
    hist = gaussian_filter(hist, sigma=sigmas, mode=modes, truncate=4.0)
    cell = np.prod([((2 * np.pi / len(g)) if c else (g[1] - g[0])) / m
                    for g, m, c in zip(grids, oversample, circular)])
    hist /= cell * np.maximum(counts, 1.0).reshape(-1, *(1,) * len(values))
    return hist[(slice(None), *(slice(None, None, m) for m in oversample))]


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
    return float(bandwidth) * (spread if spread > 1e-12 else 1.0)


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
    density = _kde_grid([values], pos, len(frame_ids), [grid], [h], [circular])
    return FrameDensity(density, frame_ids, (grid,), (h,), (name,))


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
    density = _kde_grid([y, x], pos, len(frame_ids), [y_grid, x_grid], [hy, hx], [False, False])
    return FrameDensity(density, frame_ids, (y_grid, x_grid), (hy, hx), (names[1], names[0]))


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


def sweep_direction(bias: np.ndarray) -> np.ndarray:
    """+1 where the bias rises, -1 where it falls (turning points keep the last direction)."""
    bias = np.asarray(bias, dtype=np.float64).ravel()
    step = np.diff(bias)
    direction = np.sign(np.concatenate([step[:1], step])) if len(bias) > 1 else np.ones(len(bias))
    for i in range(len(direction)):  # flat steps inherit the previous direction
        if direction[i] == 0:
            direction[i] = direction[i - 1] if i else 1
    return direction.astype(np.int64)


def hysteresis_loop(loadings: np.ndarray, bias: np.ndarray, frames: np.ndarray | None = None) -> pd.DataFrame:
    """Tidy table of loadings against bias: ``frame, bias, sweep, loading0 …``.

    ``sweep`` is ``"up"`` or ``"down"`` (:func:`sweep_direction`).
    """
    loadings = np.asarray(loadings, dtype=np.float64)
    loadings = loadings[:, None] if loadings.ndim == 1 else loadings
    bias = np.asarray(bias, dtype=np.float64).ravel()
    if len(bias) != len(loadings):
        raise ValueError(f"bias: {len(bias)} values for {len(loadings)} frames; attach one bias per frame")
    table = pd.DataFrame({
        "frame": np.arange(len(bias)) if frames is None else np.asarray(frames),
        "bias": bias,
        "sweep": np.where(sweep_direction(bias) > 0, "up", "down"),
    })
    for k in range(loadings.shape[1]):
        table[f"loading{k}"] = loadings[:, k]
    return table


def loop_area(bias: np.ndarray, values: np.ndarray, kind: str = "signed", n_bins: int | None = None) -> float:
    """Area enclosed by a curve of ``values`` against ``bias`` (units: bias × value).

    ``kind="signed"``: shoelace formula over the path in frame order, closed
    back to its start; positive for a counter-clockwise loop, ≈ 0 when up-
    and down-sweeps retrace each other. ``kind="absolute"``: ∫ |up − down| d
    bias, with each sweep averaged in ``n_bins`` bias bins over the range both
    sweeps cover (noise adds a small positive amount).
    """
    bias = np.asarray(bias, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if bias.shape != values.shape or len(bias) < 3:
        raise ValueError("bias and values: need the same length, at least 3 frames")
    if kind == "signed":
        x, y = bias, values
        return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if kind != "absolute":
        raise ValueError(f"kind: {kind!r} unknown; use 'signed' or 'absolute'")
    up = sweep_direction(bias) > 0
    if up.all() or not up.any():
        return 0.0
    lo = max(bias[up].min(), bias[~up].min())
    hi = min(bias[up].max(), bias[~up].max())
    if not hi > lo:
        return 0.0
    n_bins = n_bins or max(2, min(up.sum(), (~up).sum()) // 2)
    edges = np.linspace(lo, hi, n_bins + 1)

    def binned(mask):
        idx = np.clip(np.digitize(bias[mask], edges) - 1, 0, n_bins - 1)
        inside = (bias[mask] >= lo) & (bias[mask] <= hi)
        total = np.bincount(idx[inside], values[mask][inside], n_bins)
        count = np.bincount(idx[inside], minlength=n_bins)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    gap = np.abs(binned(up) - binned(~up))
    return float(np.nansum(gap) * (hi - lo) / n_bins)


def read_bias(path: str | os.PathLike, frames: Sequence[int] | None = None) -> np.ndarray:
    """Read a bias per frame from a CSV: columns ``frame, bias`` or a single ``bias`` column.

    Returns
    -------
    (T,) float64
        Bias for each frame in ``frames`` (default: the frames in the file, sorted).
    """
    try:
        table = pd.read_csv(path)
    except Exception as err:
        raise ValueError(f"{path}: cannot read a bias table ({type(err).__name__}: {err})") from None
    if "bias" not in table.columns:
        raise ValueError(f"{path}: needs a 'bias' column (and optionally 'frame')")
    if "frame" not in table.columns:
        table["frame"] = np.arange(len(table))
    series = table.set_index("frame")["bias"].astype(float).sort_index()
    if frames is None:
        return series.to_numpy()
    missing = sorted(set(int(f) for f in frames) - set(series.index.astype(int)))
    if missing:
        raise ValueError(f"{path}: no bias for frame(s) {missing[:5]}{' …' if len(missing) > 5 else ''}")
    return series.loc[list(frames)].to_numpy()
