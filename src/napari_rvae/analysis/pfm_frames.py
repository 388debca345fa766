"""PFM wall metrics of whole frames and of latent regions, frame by frame.

Paper 000 follows a switching experiment with four numbers: the **switching degree**
``D_s = 2 f − 1`` (``f`` the switched fraction), the **wall count**, the **wall
length** and the **wall curvature**. :func:`frame_wall_metrics` gives them for every
whole frame of a domain map (from :func:`napari_rvae.detect.analyse_walls`);
:func:`region_metrics` averages the per-window metrics of wall-centred windows
(:func:`~napari_rvae.analysis.pfm.wall_metrics`) per frame and per latent region
(a ``cluster`` column of the wall sites), so the regions can be compared along the
movie or against the bias.

Walls of a frame are the iso-contours at 0.5 of the domain map smoothed by one pixel (sub-pixel,
from ``skimage.measure.find_contours``; the raw pixel staircase would be ~8 % too long) of at
least ``min_length`` pixels. A frame's
curvature is the mean of local curvatures along its walls: a circle is fitted
(:func:`~napari_rvae.analysis.pfm.circle_fit`) to every ``segment``-pixel stretch of
wall, signed positive where the switched domain bulges outwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .pfm import signed_curvatures

METRICS = ("switching_degree", "wall_count", "wall_length", "curvature")


def _contours(domain: np.ndarray, reliable: np.ndarray | None, min_length: float) -> list[np.ndarray]:
    from scipy import ndimage
    from skimage.measure import find_contours

    # a pixel staircase is ~8 % longer than the wall it draws: contour the map smoothed by one pixel
    field = ndimage.gaussian_filter(domain.astype(np.float64), 1.0)
    if reliable is not None:
        field = np.where(reliable, field, np.nan)
    walls = []
    for contour in find_contours(field, 0.5):
        if len(contour) < 2:
            continue
        length = float(np.hypot(*np.diff(contour, axis=0).T).sum())
        if length >= min_length:
            walls.append(contour)
    return walls


def _stretches(contour: np.ndarray, segment: float) -> list[np.ndarray]:
    """The half-overlapping ``segment``-pixel stretches of ``contour`` with at least 4 points."""
    steps = np.hypot(*np.diff(contour, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    count = int(np.floor((arc[-1] + 1e-9 - segment) / (segment / 2))) + 1 if arc[-1] + 1e-9 >= segment else 0
    starts = np.arange(count) * (segment / 2)
    lo = np.searchsorted(arc, starts, side="left")
    hi = np.searchsorted(arc, starts + segment, side="right")
    return [contour[a:b] for a, b in zip(lo, hi) if b - a >= 4]


def _local_curvatures(field: np.ndarray, walls: list[np.ndarray], segment: float) -> np.ndarray:
    """Signed curvature of every ``segment``-pixel stretch of every wall (one batched fit per frame)."""
    parts = [p for c in walls for p in _stretches(c, segment)]
    kappa = signed_curvatures([field] * len(parts), parts, 0.5)
    return kappa[np.isfinite(kappa)]


def frame_wall_metrics(domains, reliable=None, *, pixel_size_nm: tuple[float, float] | float | None = None,
                       min_length: float = 6.0, segment: float = 12.0) -> pd.DataFrame:
    """Switching degree, wall count, wall length and curvature of every frame.

    Parameters
    ----------
    domains : (T, Y, X) or (Y, X) bool array
        True where switched (e.g. ``analyse_walls(phase).domains``).
    reliable : same shape, bool, optional
        Where the phase can be trusted (``analyse_walls(phase).reliable``); the
        switched fraction counts only these pixels and walls stop at their edge.
    pixel_size_nm : float or (y, x), optional
        Pixel size of a calibrated movie: adds ``wall_length_nm`` and ``curvature_per_nm``.
    min_length : float
        Shortest wall counted, pixels.
    segment : float
        Length (pixels) of the wall stretches whose circle fits give the local curvature.

    Returns
    -------
    DataFrame, one row per frame: ``frame, switched_fraction, switching_degree,
    wall_count, wall_length`` (pixels), ``curvature`` (1/pixel; NaN for a frame without
    a wall long enough), ``curvature_abs`` (mean |κ|), and the nm columns when calibrated.
    """
    d = np.asarray(domains)
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3 or d.size == 0:
        raise ValueError(f"domains: expected a (T, Y, X) or (Y, X) map, got shape {d.shape}")
    d = d.astype(bool)
    r = None if reliable is None else np.broadcast_to(np.asarray(reliable, dtype=bool), d.shape)
    if not (min_length > 0 and segment >= 3):
        raise ValueError(f"min_length must be > 0 and segment ≥ 3 pixels, got {min_length}, {segment}")
    rows = []
    for t in range(d.shape[0]):
        area = r[t] if r is not None else np.ones(d.shape[1:], bool)
        n = int(area.sum())
        fraction = float((d[t] & area).sum() / n) if n else float("nan")
        walls = _contours(d[t], None if r is None else r[t], min_length)
        field = d[t].astype(np.float64)
        local = _local_curvatures(field, walls, segment)
        rows.append({"frame": t, "switched_fraction": fraction, "switching_degree": 2 * fraction - 1,
                     "wall_count": len(walls),
                     "wall_length": float(sum(np.hypot(*np.diff(c, axis=0).T).sum() for c in walls)),
                     "curvature": float(np.mean(local)) if local.size else float("nan"),
                     "curvature_abs": float(np.mean(np.abs(local))) if local.size else float("nan")})
    table = pd.DataFrame(rows)
    if pixel_size_nm is not None:
        size = float(np.sqrt(np.prod(np.broadcast_to(np.asarray(pixel_size_nm, dtype=np.float64), (2,)))))
        if not size > 0:
            raise ValueError(f"pixel_size_nm: must be > 0, got {pixel_size_nm}")
        table["wall_length_nm"] = table["wall_length"] * size
        table["curvature_per_nm"] = table["curvature"] / size
    return table


def region_metrics(metrics: pd.DataFrame, frames, regions, columns=METRICS) -> pd.DataFrame:
    """Per-window metrics averaged per frame and per latent region.

    Parameters
    ----------
    metrics : DataFrame
        One row per window (e.g. :func:`~napari_rvae.analysis.pfm.wall_metrics`).
    frames, regions : (N,) arrays
        Each window's frame and latent region (cluster label; ``-1`` = unassigned).
    columns : names
        Metric columns to average (those present).

    Returns
    -------
    DataFrame ``region, frame, n`` and the mean of each metric, sorted by region then frame.
    """
    frames = np.asarray(frames).ravel()
    regions = np.asarray(regions).ravel()
    if not (len(metrics) == len(frames) == len(regions)):
        raise ValueError(f"metrics, frames and regions need the same length, got {len(metrics)}, "
                         f"{len(frames)}, {len(regions)}")
    keep = [c for c in columns if c in metrics]
    table = metrics[keep].reset_index(drop=True).copy()
    table["frame"], table["region"] = frames, regions
    grouped = table.groupby(["region", "frame"])
    out = grouped[keep].mean()
    out["n"] = grouped.size()
    return out.reset_index().sort_values(["region", "frame"], kind="stable").reset_index(drop=True)
