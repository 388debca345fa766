"""PFM domain-wall metrics (paper 000, Fig. 7 and Methods).

* **Time-delayed wall-centred windows**: wall pixels found at frame ``t``
  (:func:`napari_rvae.detect.find_walls`) are the centres of windows cut from
  frame ``t + Δ`` (:func:`napari_rvae.patches.cut_windows` with ``delay``).
  With Δ > 0 a window holds where the wall *went*.
* **Switching degree** ``D_s = (A_s − A_us) / (A_s + A_us)``: ``A_s`` is the
  number of pixels above the threshold (switched), ``A_us`` below (Methods:
  "classified by the median value of latent space"). For a window centred on
  a wall, 0 means a static wall and > 0 an advancing switched domain.
* **Walls** of a window are the iso-contours at the same threshold
  (``skimage.measure.find_contours``, sub-pixel), at least ``min_length``
  pixels long; the **wall count** is their number.
* **Curvature** (1/pixels) of a wall: algebraic circle fit (Pratt) to its
  contour points, ``κ = 2|A| / sqrt(B² + C² − 4AD)`` for
  ``A(x² + y²) + Bx + Cy + D = 0`` — a straight wall gives 0 without a
  special case. Sign: positive when the fitted centre lies on the switched
  side (the switched domain bulges outwards), negative otherwise. A window's
  curvature is the mean over its walls for one or two walls, NaN with no
  wall and 0 with three or more (Methods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from .latent_grid import as_decoder, decoded_batches, grid_points, subgrid_median


# ----------------------------------------------------------------- windows
def wall_windows(movie, wall_sites: pd.DataFrame, window: int = 40, delay: int = 1, **cut_options):
    """Windows of frame ``t + delay`` centred on the wall sites of frame ``t``.

    Parameters
    ----------
    movie : (T, Y, X) array
        PFM phase (or a domain map).
    wall_sites : DataFrame
        Sites table of wall pixels (e.g. ``detect.find_walls(phase, n_per_frame=80)``).
    window : int
        Window width in pixels (paper: 40).
    delay : int
        Time delay Δ in frames (0 = same frame).
    **cut_options
        Passed to :func:`napari_rvae.patches.cut_windows` (``normalisation`` …).

    Returns
    -------
    :class:`napari_rvae.patches.Windows` (``frames`` = ``t + delay``, ``rows`` into ``wall_sites``).
    """
    from ..patches import cut_windows

    if int(delay) != delay:
        raise ValueError(f"delay: must be an integer number of frames, got {delay}")
    return cut_windows(movie, wall_sites, window, delay=int(delay), **cut_options)


# ------------------------------------------------------- switching degree
def _threshold(windows: np.ndarray, threshold) -> float:
    if threshold is None:
        return float(np.nanmedian(windows))
    return float(threshold)


def switching_degree(windows, threshold: float | None = None) -> np.ndarray:
    """``D_s`` of each window: ``(N,)`` in [−1, 1].

    ``threshold`` splits switched (above) from unswitched pixels; default the
    median of all pixels of all ``windows`` (the paper's median split).
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.size == 0:
        raise ValueError(f"windows: expected a non-empty (N, h, w) stack, got shape {w.shape}")
    t = _threshold(w, threshold)
    flat = w.reshape(len(w), -1)
    valid = np.isfinite(flat)
    above = ((flat > t) & valid).sum(1)
    below = ((flat <= t) & valid).sum(1)
    total = above + below
    return np.where(total > 0, (above - below) / np.maximum(total, 1), np.nan)


def switching_degree_per_frame(phase, *, threshold: float | str = "otsu", smooth: float = 1.0,
                               unit: str | None = None, pixel_size_nm: tuple[float, float] | None = None) -> np.ndarray:
    """``D_s`` of every whole frame: ``(T,)``, ``2·f − 1`` with ``f`` the switched fraction.

    The domain split is :func:`napari_rvae.detect.analyse_walls` (one Otsu threshold for
    the movie by default, after ``smooth`` pixels of Gaussian smoothing: a movie-wide median
    would split the noise of frames that are mostly one domain). A wrapped phase (degrees or
    radians) is first cleaned up and ``f`` counts its reliable area only; a frame without
    domain contrast gives NaN.
    """
    from ..detect.walls import analyse_walls

    result = analyse_walls(phase, threshold=threshold, smooth=smooth, unit=unit, pixel_size_nm=pixel_size_nm)
    return 2.0 * result.report["switched_fraction"].to_numpy() - 1.0


# ------------------------------------------------------------- curvature
_PRATT_N = np.array([[0, 0, 0, -2.0], [0, 1, 0, 0], [0, 0, 1, 0], [-2.0, 0, 0, 0]])
_PRATT_N_INV = np.linalg.inv(_PRATT_N)


def circle_fits(curves) -> tuple[np.ndarray, np.ndarray]:
    """Pratt algebraic circle fits of many point sets at once.

    ``curves``: a sequence of ``(n_i, 2)`` (row, col) point sets. Returns ``curvature``
    ``(S,)`` (≥ 0, 1/pixels) and ``centre`` ``(S, 2)`` (row, col). A straight set gives
    curvature ≈ 0 and an infinite centre; fewer than 3 distinct points give NaN.

    All fits are one batched eigen-solve (``N⁻¹M`` has the generalised eigenpairs of
    Pratt's ``(M, N)``): a background job that fitted the walls one by one released and
    retook Python's lock for every small solve, and the GUI thread waiting for the lock
    could not get it for 50–90 ms at a time.
    """
    parts = [np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in curves]
    n_sets = len(parts)
    kappa = np.full(n_sets, np.nan)
    centre = np.full((n_sets, 2), np.nan)
    if n_sets == 0:
        return kappa, centre
    sizes = np.array([len(c) for c in parts], dtype=np.int64)
    points = np.concatenate(parts) if sizes.sum() else np.zeros((0, 2))
    which = np.repeat(np.arange(n_sets), sizes)
    # distinct points per set
    rounded = np.round(points, 6)
    order = np.lexsort((rounded[:, 1], rounded[:, 0], which))
    r, w = rounded[order], which[order]
    first = np.ones(len(r), bool)
    first[1:] = (w[1:] != w[:-1]) | np.any(r[1:] != r[:-1], axis=1)
    ok = np.bincount(w[first], minlength=n_sets) >= 3
    if not ok.any():
        return kappa, centre
    n = np.maximum(sizes, 1).astype(np.float64)
    mean = np.stack([np.bincount(which, points[:, i], n_sets) for i in range(2)], 1) / n[:, None]
    d = points - mean[which]
    scale = np.sqrt(np.bincount(which, (d * d).sum(1), n_sets) / n)
    scale[~(scale > 0)] = 1.0
    y, x = (d / scale[which][:, None]).T
    z = (x * x + y * y, x, y, np.ones_like(x))
    m = np.empty((n_sets, 4, 4))
    for i in range(4):
        for j in range(i, 4):
            m[:, i, j] = m[:, j, i] = np.bincount(which, z[i] * z[j], n_sets) / n
    sets = np.flatnonzero(ok)
    vals, vecs = _eig_each(_PRATT_N_INV @ m[sets])
    vals = np.real(vals)
    vals[~(np.isfinite(vals) & (vals > -1e-12))] = np.inf
    pick = np.argmin(vals, axis=1)
    found = np.isfinite(vals[np.arange(len(sets)), pick])
    coef = np.real(vecs[np.arange(len(sets)), :, pick])  # (S', 4): a, b, c, d
    a, b, c, dd = coef.T
    disc = b * b + c * c - 4 * a * dd
    good = found & (disc > 0)
    s = sets[good]
    a, b, c, disc = a[good], b[good], c[good], disc[good]
    kappa[s] = 2 * np.abs(a) / np.sqrt(disc) / scale[s]
    with np.errstate(divide="ignore", invalid="ignore"):
        centre[s] = np.where((a != 0)[:, None], np.stack([-c / (2 * a), -b / (2 * a)], 1) * scale[s, None]
                             + mean[s], np.inf)
    return kappa, centre


def _eig_each(matrices: np.ndarray):
    """``np.linalg.eig`` of a stack; a matrix that does not converge gives NaN, not an error."""
    try:
        return np.linalg.eig(matrices)
    except np.linalg.LinAlgError:
        vals = np.full(matrices.shape[:2], np.nan, dtype=complex)
        vecs = np.full(matrices.shape, np.nan, dtype=complex)
        for k, one in enumerate(matrices):
            try:
                vals[k], vecs[k] = np.linalg.eig(one)
            except np.linalg.LinAlgError:
                pass
        return vals, vecs


def circle_fit(points) -> tuple[float, np.ndarray]:
    """Pratt algebraic circle fit of one point set: ``(curvature ≥ 0 (1/pixels), centre (2,) (row, col))``
    (see :func:`circle_fits`)."""
    kappa, centre = circle_fits([points])
    return float(kappa[0]), centre[0]


def window_walls(window, threshold: float, *, smooth: float = 0.0, min_length: float | None = None) -> list[np.ndarray]:
    """Walls of one window: iso-contours ``(n, 2)`` (row, col, sub-pixel) at ``threshold``,
    each at least ``min_length`` pixels long (default a quarter of the window width)."""
    from skimage.measure import find_contours

    w = np.asarray(window, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"window: expected a 2D window, got shape {w.shape}")
    if smooth > 0:
        w = ndimage.gaussian_filter(w, smooth)
    w = np.where(np.isfinite(w), w, threshold)
    min_length = w.shape[1] / 4 if min_length is None else float(min_length)
    walls = []
    for contour in find_contours(w, threshold):
        length = float(np.hypot(*np.diff(contour, axis=0).T).sum())
        if length >= min_length:
            walls.append(contour)
    return walls


def signed_curvatures(fields, curves, threshold: float) -> np.ndarray:
    """Signed curvature (1/pixels) of each wall ``curves[i]`` of the map ``fields[i]`` (see module
    docstring): one batched fit (:func:`circle_fits`), then the sign from the side of the
    fitted centre. ``fields`` may repeat one map for all curves."""
    kappa, centre = circle_fits(curves)
    out = kappa.copy()
    for k in np.flatnonzero(np.isfinite(kappa) & (kappa != 0) & np.isfinite(centre).all(1)):
        contour, field = np.asarray(curves[k], dtype=np.float64).reshape(-1, 2), fields[k]
        mid = contour[len(contour) // 2]
        u = centre[k] - mid
        u /= np.hypot(*u) or 1.0
        probe = np.clip(np.rint(mid + 2.0 * u).astype(int), 0, np.array(field.shape) - 1)
        if not field[probe[0], probe[1]] > threshold:
            out[k] = -kappa[k]
    return out


def wall_curvature(window, contour, threshold: float) -> float:
    """Signed curvature (1/pixels) of one wall of ``window`` (see :func:`signed_curvatures`)."""
    return float(signed_curvatures([window], [contour], threshold)[0])


def wall_metrics(windows, threshold: float | None = None, *, smooth: float = 0.0,
                 min_length: float | None = None, pixel_size_nm: float | None = None) -> pd.DataFrame:
    """Switching degree, wall count and curvature of each window.

    Parameters
    ----------
    windows : (N, h, w) array
        Wall-centred windows (or decoded windows).
    threshold : float, optional
        Switched / unswitched split; default the median of all pixels.
    smooth : float
        Gaussian smoothing (pixels) before contouring (noisy data).
    min_length : float, optional
        Shortest wall (contour length, pixels); default ``w / 4``.
    pixel_size_nm : float, optional
        Pixel size of a calibrated movie: adds ``curvature_per_nm`` beside ``curvature``.

    Returns
    -------
    DataFrame with ``switching_degree``, ``wall_count``, ``wall_length`` (pixels, all walls of
    the window), ``curvature`` (1/pixels; NaN with no wall, 0 with ≥ 3 walls) and, when
    calibrated, ``wall_length_nm`` and ``curvature_per_nm``.
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.size == 0:
        raise ValueError(f"windows: expected a non-empty (N, h, w) stack, got shape {w.shape}")
    t = _threshold(w, threshold)
    counts = np.zeros(len(w), np.int64)
    lengths = np.zeros(len(w))
    curvature = np.full(len(w), np.nan)
    fitted, owner = [], []  # walls of windows with one or two walls: fitted together
    for k, win in enumerate(w):
        walls = window_walls(win, t, smooth=smooth, min_length=min_length)
        counts[k] = len(walls)
        lengths[k] = sum(float(np.hypot(*np.diff(c, axis=0).T).sum()) for c in walls)
        if len(walls) >= 3:
            curvature[k] = 0.0
        elif walls:
            fitted += walls
            owner += [k] * len(walls)
    if fitted:
        owner = np.asarray(owner)
        kappa = signed_curvatures([w[k] for k in owner], fitted, t)
        for k in np.unique(owner):
            mine = kappa[owner == k]
            curvature[k] = float(np.nanmean(mine)) if np.isfinite(mine).any() else np.nan
    table = pd.DataFrame({"switching_degree": switching_degree(w, t), "wall_count": counts, "wall_length": lengths,
                          "curvature": curvature})
    if pixel_size_nm is not None:
        if not pixel_size_nm > 0:
            raise ValueError(f"pixel_size_nm: must be > 0, got {pixel_size_nm}")
        table["wall_length_nm"] = lengths * float(pixel_size_nm)
        table["curvature_per_nm"] = curvature / float(pixel_size_nm)
    return table


def curvature_vs_frame(curvature, frames) -> pd.DataFrame:
    """Mean and dispersion (standard deviation) of window curvatures per frame.

    Returns a DataFrame ``frame, mean, std, n`` (windows with a finite curvature).
    """
    c = np.asarray(curvature, dtype=np.float64).ravel()
    f = np.asarray(frames).ravel()
    if c.shape != f.shape:
        raise ValueError(f"curvature and frames: need the same length, got {c.size} and {f.size}")
    table = pd.DataFrame({"frame": f, "curvature": c}).dropna()
    out = table.groupby("frame")["curvature"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "n"})


def per_frame_mean(values, frames) -> pd.DataFrame:
    """Mean of a per-window value (e.g. switching degree) per frame: ``frame, mean, n``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    f = np.asarray(frames).ravel()
    if v.shape != f.shape:
        raise ValueError(f"values and frames: need the same length, got {v.size} and {f.size}")
    out = pd.DataFrame({"frame": f, "v": v}).dropna().groupby("frame")["v"].agg(["mean", "count"]).reset_index()
    return out.rename(columns={"count": "n"})


# --------------------------------------------------------- latent-plane maps
@dataclass
class WallMaps:
    """Wall metrics of decoded windows over the latent plane (``(D, D)``, rows = second latent)."""

    grid: np.ndarray
    switching_degree: np.ndarray
    wall_count: np.ndarray
    curvature: np.ndarray
    threshold: float


def wall_metrics_map(decoder, d: int = 100, *, span: float = 3.0, threshold: float | None = None,
                     smooth: float = 0.0, min_length: float | None = None, batch: int = 512,
                     progress=None) -> WallMaps:
    """Switching degree, wall count and curvature of the window decoded at each grid point.

    ``threshold`` defaults to the median decoded value over a ≤ 32 × 32
    sub-grid of the same latent square (the paper's latent-space median).
    ``progress(fraction)`` is called after each batch (raise to cancel).
    """
    decoder = as_decoder(decoder)
    grid, points = grid_points(d, span)
    t = subgrid_median(decoder, d, span) if threshold is None else float(threshold)
    parts = []
    for s, windows in decoded_batches(decoder, points, batch):
        parts.append(wall_metrics(windows, t, smooth=smooth, min_length=min_length))
        if progress is not None:
            progress(min(s + len(windows), len(points)) / len(points))
    table = pd.concat(parts, ignore_index=True)
    shape = (len(grid), len(grid))
    return WallMaps(grid, table["switching_degree"].to_numpy().reshape(shape),
                    table["wall_count"].to_numpy().reshape(shape), table["curvature"].to_numpy().reshape(shape), t)
