"""Domain walls: PFM phase → domain map (threshold, then a fit of the tip-blurred model) → walls → sites.

Also walls from a segmenter's wall class, and the per-frame switched fraction
(paper 000's "switching degree").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io.sites import empty_sites, make_sites
from ._checks import as_movie, as_probabilities, frame_is_usable
from .phase_quality import MIN_DOMAIN_NM2


def domain_map(phase, *, threshold: float | str = "otsu", smooth: float = 0.5, per_frame: bool = False,
               tip_sigma: float | None = 1.0, wall_cost: float = 2.0, min_size: int = 0) -> np.ndarray:
    """Binary domain map of a PFM phase movie.

    Parameters
    ----------
    phase : (T, Y, X) or (Y, X) array
        PFM phase (degrees, radians or arbitrary units) or any two-level signal.
    threshold : float or "otsu"
        Level separating the two domains; ``"otsu"`` = Otsu's threshold of the
        smoothed values (over the whole movie unless ``per_frame``).
    smooth : float
        Gaussian smoothing (pixels) before thresholding; 0 = none.
    per_frame : bool
        Otsu threshold per frame instead of one for the movie (a frame that is a
        single domain then splits its noise — keep False for switching movies).
    tip_sigma : float or None
        Tip blur (Gaussian σ, pixels). When given, the thresholded map is refined by
        fitting the tip-blurred two-level model ``a + b · G_σ * s`` to the raw phase
        (:func:`~napari_rvae.detect.domain_fit.fit_domain_map`): this recovers domains
        a few pixels across, which the blur keeps from crossing the threshold. ``None``
        = threshold only.
    wall_cost : float
        The fit's wall-length prior (nats per pixel edge of wall; 4× that for a
        one-pixel domain). Larger = fewer, smoother small domains.
    min_size : int
        Remove domains (of either sign) of at most this many pixels (e.g. 3 to drop
        one- to three-pixel specks); 0 keeps all.

    Returns
    -------
    domains : (T, Y, X) bool
        True where the phase is above the threshold. NaN pixels are False.
    """
    from skimage.filters import threshold_otsu

    data = as_movie(phase, "phase")
    if smooth < 0:
        raise ValueError(f"smooth: must be ≥ 0 pixels, got {smooth}")
    if tip_sigma is not None and not tip_sigma > 0:
        raise ValueError(f"tip_sigma: must be > 0 pixels or None, got {tip_sigma}")
    if min_size < 0:
        raise ValueError(f"min_size: must be ≥ 0 pixels, got {min_size}")
    finite = np.isfinite(data)
    if not finite.any():
        raise ValueError("phase: every pixel is NaN or infinite")
    fill = float(np.median(data[finite]))
    raw = np.where(finite, data, fill)
    work = ndimage.gaussian_filter(raw, (0, smooth, smooth)) if smooth > 0 else raw
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise ValueError(f"threshold: expected a number or 'otsu', got {threshold!r}")
        if per_frame:
            levels = [threshold_otsu(f[m]) if np.ptp(f[m]) > 0 else np.inf for f, m in zip(work, finite)]
        else:
            values = work[finite]
            if np.ptp(values) <= 0:
                warnings.warn("phase is constant: a single domain, no walls", stacklevel=2)
                return np.zeros(data.shape, dtype=bool)
            levels = [threshold_otsu(values)] * len(data)
    else:
        levels = [float(threshold)] * len(data)
    domains = np.stack([f > lv for f, lv in zip(work, levels)])
    if tip_sigma is not None and int(4 * tip_sigma + 0.5) >= min(data.shape[1:]):
        warnings.warn(f"frames of {data.shape[1]}×{data.shape[2]} px are too small to fit a tip blur of "
                      f"{tip_sigma} px; thresholding only", stacklevel=2)
    elif tip_sigma is not None:
        from .domain_fit import fit_domain_map

        domains, _ = fit_domain_map(raw, domains, tip_sigma=tip_sigma, wall_cost=wall_cost)
    if min_size > 0:
        domains = np.stack([_drop_small(f, min_size) for f in domains])
    return domains & finite


def _drop_small(domains: np.ndarray, max_size: int) -> np.ndarray:
    """Fill (Y, X) bool domains of ≤ ``max_size`` pixels (4-connected) with the surrounding sign."""
    out = domains.copy()
    for value in (True, False):
        lab, n = ndimage.label(out == value)
        if n:
            sizes = np.bincount(lab.ravel())
            small = sizes <= max_size
            small[0] = False
            out[small[lab]] = not value
    return out


def switched_fraction(domains, *, switched: bool = True) -> np.ndarray:
    """Fraction of each frame's area in the ``switched`` domain: ``(T,)`` in [0, 1]."""
    d = np.asarray(domains)
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3:
        raise ValueError(f"domains: expected a (T, Y, X) or (Y, X) map, got shape {d.shape}")
    return (d.astype(bool) == bool(switched)).mean(axis=(1, 2))


def wall_mask(domains, *, method: str = "boundary", sigma: float = 1.0, low: float | None = None,
              high: float | None = None) -> np.ndarray:
    """One-pixel-thin walls of a domain map: ``(T, Y, X)`` bool.

    ``method="boundary"`` (default): the pixels of the True domain that have a
    4-neighbour in the False domain — the map's exact boundary, so every domain,
    however small, gets its wall. ``method="canny"``: ``skimage.feature.canny`` of the
    0/1 map with ``sigma`` (pixels) and hysteresis thresholds ``low`` / ``high``
    (gradients at a wall are ≈ 0.5); its smoothing drops walls around domains of a few
    pixels and at corners.
    """
    d = np.asarray(domains)
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3:
        raise ValueError(f"domains: expected a (T, Y, X) or (Y, X) map, got shape {d.shape}")
    if method == "boundary":
        up = d.astype(bool)
        p = np.pad(up, ((0, 0), (1, 1), (1, 1)), mode="edge")
        other = ~(p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:])
        return up & other
    if method != "canny":
        raise ValueError(f"method: expected 'boundary' or 'canny', got {method!r}")
    from skimage.feature import canny

    low = 0.1 if low is None else low
    high = 0.2 if high is None else high
    return np.stack([canny(f, sigma=sigma, low_threshold=low, high_threshold=high) for f in d.astype(np.float64)])


def walls_from_probabilities(probabilities, wall_channel: int, *, threshold: float = 0.5) -> np.ndarray:
    """Wall mask from a segmenter's wall class, thinned to one pixel: ``(T, Y, X)`` bool."""
    from skimage.morphology import skeletonize

    probs = as_probabilities(probabilities)
    if not 1 <= wall_channel < probs.shape[1]:
        raise ValueError(f"wall_channel: expected 1..{probs.shape[1] - 1} (0 is background), got {wall_channel}")
    return np.stack([skeletonize(np.nan_to_num(p[wall_channel]) > threshold) for p in probs])


def wall_sites(
    mask,
    *,
    n_per_frame: int | None = None,
    min_spacing: float = 0.0,
    edge_margin: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Wall pixels as sites (``kind="wall"``): all of them, or a spaced random subset.

    Parameters
    ----------
    mask : (T, Y, X) or (Y, X) bool
        Wall pixels.
    n_per_frame : int, optional
        Keep at most this many per frame (random, reproducible with ``seed``).
    min_spacing : float
        Minimum distance (pixels) between kept sites of one frame.
    edge_margin : float
        Drop pixels closer than this (pixels) to the border (e.g. half a window).
    """
    from scipy.spatial import cKDTree

    m = np.asarray(mask, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"mask: expected a (T, Y, X) or (Y, X) mask, got shape {m.shape}")
    if n_per_frame is not None and n_per_frame < 1:
        raise ValueError(f"n_per_frame: must be ≥ 1 or None, got {n_per_frame}")
    rng = np.random.default_rng(seed)
    tables = []
    Y, X = m.shape[1:]
    for t, frame in enumerate(m):
        yx = np.argwhere(frame).astype(np.float64)
        if edge_margin > 0 and len(yx):
            e = edge_margin
            yx = yx[(yx[:, 0] >= e) & (yx[:, 0] <= Y - 1 - e) & (yx[:, 1] >= e) & (yx[:, 1] <= X - 1 - e)]
        if len(yx) == 0:
            continue
        if min_spacing > 0 or n_per_frame is not None:
            yx = yx[rng.permutation(len(yx))]
        if min_spacing > 0:
            # greedy: accept a pixel if no accepted one lies within min_spacing
            tree = cKDTree(yx)
            blocked = np.zeros(len(yx), dtype=bool)
            keep = []
            for i in range(len(yx)):
                if blocked[i]:
                    continue
                keep.append(i)
                blocked[tree.query_ball_point(yx[i], min_spacing - 1e-9)] = True
                if n_per_frame is not None and len(keep) >= n_per_frame:
                    break
            yx = yx[keep]
        if n_per_frame is not None:
            yx = yx[:n_per_frame]
        tables.append(make_sites(t, yx[:, 0], yx[:, 1], "wall", 0))
    if not tables:
        return empty_sites()
    return pd.concat(tables, ignore_index=True)


@dataclass
class WallAnalysis:
    """Domains, walls and the per-frame report of :func:`analyse_walls` (arrays ``(T, Y, X)``)."""

    domains: np.ndarray
    walls: np.ndarray
    reliable: np.ndarray
    report: pd.DataFrame
    quality: object | None = None


def analyse_walls(
    phase,
    *,
    threshold: float | str = "otsu",
    smooth: float = 0.5,
    tip_sigma: float | None = 1.0,
    min_size: int = 0,
    method: str = "boundary",
    sigma: float = 1.0,
    quality: bool | str = "auto",
    unit: str | None = None,
    pixel_size_nm: tuple[float, float] | None = None,
    min_domain_nm2: float = MIN_DOMAIN_NM2,
    level: str | None = "median-diff",
) -> WallAnalysis:
    """Domain map, walls and a per-frame report, on the reliable area of the phase only.

    With ``quality`` (``"auto"``: whenever the phase is a wrapped angle — degrees or
    radians, from ``unit`` or its range), the phase is first re-wrapped, levelled per scan
    line and checked for noise, stripes and streaks
    (:func:`~napari_rvae.detect.phase_quality.assess_phase`); the domain split is then the
    midpoint between the two domain phases, domains smaller than ``min_domain_nm2`` (with
    ``pixel_size_nm``; else ``min_size``, at least 4 px) are absorbed by their surroundings,
    the *switched* domain is the minority of the first frame, and walls, switched fraction and
    wall fraction count the reliable area only. A frame without domain contrast gets no walls.

    Returns
    -------
    :class:`WallAnalysis`; ``report`` has per frame ``switched_fraction``, ``wall_fraction``,
    ``reliable_fraction``, ``masked_fraction``, ``noise_fraction``, ``stripe_fraction``,
    ``contrast`` and ``note``.
    """
    from .phase_quality import assess_phase, circular_smooth, domain_levels, min_domain_area_px, phase_period

    data = as_movie(phase, "phase")
    use_quality = quality is True or (quality == "auto" and phase_period(data, unit) is not None)
    if not use_quality:
        domains = domain_map(data, threshold=threshold, smooth=smooth, tip_sigma=tip_sigma, min_size=min_size)
        walls = wall_mask(domains, method=method, sigma=sigma)
        reliable = np.isfinite(data)
        report = _report(domains, walls, reliable, None)
        return WallAnalysis(domains, walls, reliable, report)
    min_px = max(min_size, min_domain_area_px(pixel_size_nm, min_domain_nm2))
    q = assess_phase(data, unit=unit, pixel_size_nm=pixel_size_nm, level=level, min_domain_nm2=min_domain_nm2)
    if threshold == "otsu" and q.period is not None:
        low, high = domain_levels(np.where(q.reliable, q.phase, np.nan), q.period)
        threshold = (low + high) / 2 if high > low else "otsu"
    clean = np.where(q.reliable, q.phase, np.nan)
    if q.period is not None and smooth > 0:  # average noisy phase as directions, not as numbers
        clean, smooth = circular_smooth(clean, q.period, sigma=2 * smooth), 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        domains = domain_map(clean, threshold=threshold, smooth=smooth, tip_sigma=tip_sigma, min_size=min_px)
    if q.period is not None and domains[0][q.reliable[0]].mean() > 0.5:
        domains = ~domains  # the switched domain is the first frame's minority
    interior = ndimage.binary_erosion(q.reliable, structure=np.ones((1, 3, 3), bool), border_value=1)
    walls = wall_mask(domains, method=method, sigma=sigma) & interior
    for t, ok in enumerate(q.report["contrast"]):
        if not ok:
            walls[t] = False
    report = _report(domains, walls, q.reliable, q.report)
    return WallAnalysis(domains & q.reliable, walls, q.reliable, report, q)


def _report(domains: np.ndarray, walls: np.ndarray, reliable: np.ndarray, quality: pd.DataFrame | None) -> pd.DataFrame:
    area = np.maximum(reliable.sum(axis=(1, 2)), 1)
    table = pd.DataFrame({
        "frame": np.arange(len(domains)),
        "switched_fraction": (domains & reliable).sum(axis=(1, 2)) / area,
        "wall_fraction": walls.mean(axis=(1, 2)),
        "reliable_fraction": reliable.mean(axis=(1, 2)),
    })
    table["masked_fraction"] = 1.0 - table["reliable_fraction"]
    if quality is not None:
        for column in ("coherence", "noise_fraction", "stripe_fraction", "contrast", "note"):
            table[column] = quality[column].to_numpy()
        table.loc[~table["contrast"], "switched_fraction"] = np.nan
    else:
        table["noise_fraction"], table["stripe_fraction"], table["contrast"], table["note"] = 0.0, 0.0, True, ""
    return table


def find_walls(
    phase,
    *,
    threshold: float | str = "otsu",
    smooth: float = 0.5,
    tip_sigma: float | None = 1.0,
    min_size: int = 0,
    method: str = "boundary",
    sigma: float = 1.0,
    n_per_frame: int | None = None,
    min_spacing: float = 0.0,
    edge_margin: float = 0.0,
    seed: int = 0,
    quality: bool | str = "auto",
    unit: str | None = None,
    pixel_size_nm: tuple[float, float] | None = None,
    min_domain_nm2: float = MIN_DOMAIN_NM2,
    level: str | None = "median-diff",
) -> pd.DataFrame:
    """PFM phase movie → wall sites in one call (:func:`analyse_walls`, then :func:`wall_sites`).

    ``threshold``, ``smooth``, ``tip_sigma`` and ``min_size`` go to :func:`domain_map`,
    ``method`` and ``sigma`` (Canny only) to :func:`wall_mask`; ``quality``, ``unit``,
    ``pixel_size_nm``, ``min_domain_nm2`` and ``level`` to the phase clean-up (see
    :func:`analyse_walls`). The sites table gets ``switched_fraction`` and
    ``reliable_fraction`` columns (the frame's values) so the switching degree travels with
    the sites; ``sites.attrs["frames"]`` holds the per-frame report. Frames that are NaN,
    constant or without domain contrast give no walls (with a warning).
    """
    data = as_movie(phase, "phase")
    for t, frame in enumerate(data):
        why = frame_is_usable(frame)
        if why:
            warnings.warn(f"frame {t}: {why}; no walls there", stacklevel=2)
    result = analyse_walls(data, threshold=threshold, smooth=smooth, tip_sigma=tip_sigma, min_size=min_size,
                           method=method, sigma=sigma, quality=quality, unit=unit, pixel_size_nm=pixel_size_nm,
                           min_domain_nm2=min_domain_nm2, level=level)
    for row in result.report.itertuples():
        if row.note:
            warnings.warn(f"frame {row.frame}: {row.note}", stacklevel=2)
    sites = wall_sites(result.walls, n_per_frame=n_per_frame, min_spacing=min_spacing, edge_margin=edge_margin,
                       seed=seed)
    if len(sites) == 0:
        warnings.warn("no domain walls found; returning an empty sites table", stacklevel=2)
    frames = sites["frame"].to_numpy()
    for column in ("switched_fraction", "reliable_fraction"):
        values = result.report[column].to_numpy()
        sites[column] = values[frames] if len(sites) else np.zeros(0)
    sites.attrs["frames"] = result.report.to_dict("list")
    return sites
