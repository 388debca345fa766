"""PFM phase before walls: wrapping, scan-line levelling, stripes / streaks / noise, a per-frame report.

Real PFM phase is not a clean two-level image:

* **Wrapping.** Instruments store the phase on a circle (Asylum: −90° … 270°); a domain near
  the seam is split in two. :func:`rewrap` moves the seam to the emptiest angle of the
  movie's circular histogram, so both domains are continuous ranges.
* **Scan-line offsets.** Each scan line has its own phase offset. :func:`level_lines` removes
  it: ``"median-diff"`` (default) sets each line's offset from the median of its (wrapped)
  differences to the previous line, which leaves domains alone because most pixels of two
  neighbouring lines lie in the same domain; ``"median"`` subtracts each line's median
  (as SPM programs' *align rows*; it flattens a domain that fills a line); ``"poly"`` fits a
  polynomial of ``order`` per line to the difference from the nearest domain level.
* **Noise.** Where the piezoresponse is weak (a-domains, lost contact, a noisy film) the phase
  is random. :func:`noise_mask` marks regions where the local mean phase direction is not
  significant (Rayleigh test); a noisy but real domain keeps its direction, and speckle
  (pixels flipped between the two levels) is left to the minimum domain size.
* **Stripes and streaks.** :func:`stripe_mask` marks, on the domain map, features a few lines
  thin and long along a scan axis (streaks: the tip skipped), and bands of whole lines or
  columns whose domain content jumps in one line and back (a tip change, a feedback glitch:
  the "domain" that is really an artefact). Both image axes are checked.

:func:`assess_phase` runs all of it and returns the levelled phase, the reliable-area mask and a
per-frame report; :func:`napari_rvae.detect.find_walls` uses it so that walls and switched
fractions come from the reliable area only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from ._checks import as_movie
from .scan_artefacts import stripe_mask

#: Rayleigh significance ``R·√n`` of the local mean phase below which a pixel is noise
NOISE_SIGNIFICANCE = 2.5
#: a frame whose median local phase coherence (mean resultant length over ~50 pixels) is below
#: this has no usable domain contrast: its phase noise exceeds about 67° (uniform noise gives 0.13)
MIN_COHERENCE = 0.5
#: smallest domain kept by default (about 32 × 32 nm): a PFM tip of 10–30 nm radius cannot resolve smaller ones
MIN_DOMAIN_NM2 = 1000.0


@dataclass
class PhaseQuality:
    """What :func:`assess_phase` found. Arrays are ``(T, Y, X)``."""

    phase: np.ndarray
    reliable: np.ndarray
    noise: np.ndarray
    stripes: np.ndarray
    period: float | None
    report: pd.DataFrame


# ------------------------------------------------------------------ wrapping
def phase_period(phase: np.ndarray, unit: str | None = None) -> float | None:
    """360 (degrees), 2π (radians) or ``None`` (not a wrapped phase).

    From ``unit`` when given ("deg", "rad"); else from the span of the values: a span of
    300°–360° is degrees, 5.2–2π radians.
    """
    text = (unit or "").strip().lower()
    if text in ("deg", "degree", "degrees", "°"):
        return 360.0
    if text in ("rad", "radian", "radians"):
        return float(2 * np.pi)
    finite = phase[np.isfinite(phase)]
    if finite.size == 0:
        return None
    span = float(finite.max() - finite.min())
    if 300.0 <= span <= 360.0 + 1e-3:
        return 360.0
    if 5.2 <= span <= 2 * np.pi + 1e-6:
        return float(2 * np.pi)
    return None


def rewrap(phase: np.ndarray, period: float) -> tuple[np.ndarray, float]:
    """Phase re-wrapped into ``[seam, seam + period)`` with the seam at the emptiest angle.

    Returns ``(phase, seam)``. The circular histogram (72 bins, smoothed over 3) of the
    finite values picks the seam, so no domain straddles it.
    """
    finite = np.isfinite(phase)
    bins = 72
    angles = np.mod(phase[finite], period)
    hist, edges = np.histogram(angles, bins=bins, range=(0.0, period))
    smooth = ndimage.uniform_filter1d(hist.astype(float), 3, mode="wrap")
    seam = float(edges[int(np.argmin(smooth))] + period / bins / 2)
    out = np.where(finite, np.mod(phase - seam, period) + seam, np.nan)
    return out.astype(np.float32), seam


def _wrapped(delta: np.ndarray, period: float | None) -> np.ndarray:
    if period is None:
        return delta
    return np.mod(delta + period / 2, period) - period / 2


# ------------------------------------------------------------------ levelling
def level_lines(phase, *, method: str = "median-diff", order: int = 1, period: float | None = None,
                significance: float = 3.0) -> np.ndarray:
    """Remove scan-line offsets (lines are rows, the fast scan axis along x).

    Parameters
    ----------
    phase : (T, Y, X) or (Y, X) array
    method : "median-diff", "median" or "poly"
        See the module docstring.
    order : int
        Polynomial order per line for ``"poly"``.
    period : float, optional
        Wrap period (360 for degrees): differences and offsets are taken on the circle and
        the result is re-wrapped into the input's range.
    significance : float
        ``"median-diff"`` only: a line-to-line step is applied only when it exceeds this many
        standard errors of its median (smaller steps are noise, and summing them over
        hundreds of lines would make the offsets wander).

    Returns
    -------
    (T, Y, X) float32
    """
    data = as_movie(phase, "phase").astype(np.float64)
    if method not in ("median-diff", "median", "poly"):
        raise ValueError(f"method: expected 'median-diff', 'median' or 'poly', got {method!r}")
    if order < 0:
        raise ValueError(f"order: must be ≥ 0, got {order}")
    low = float(np.nanmin(data)) if np.isfinite(data).any() else 0.0
    out = np.empty_like(data)
    for t, frame in enumerate(data):
        if method == "median-diff":
            step = _wrapped(frame[1:] - frame[:-1], period)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                medians = np.nanmedian(step, axis=1)
                spread = 1.4826 * np.nanmedian(np.abs(step - medians[:, None]), axis=1)
            count = np.isfinite(step).sum(axis=1)
            error = 1.2533 * spread / np.sqrt(np.maximum(count, 1))
            # a step no larger than its own uncertainty is noise: summing those would wander
            medians = np.where(np.abs(medians) > significance * error, medians, 0.0)
            offsets = np.concatenate([[0.0], np.cumsum(np.nan_to_num(medians))])
            levelled = frame - offsets[:, None]
        elif method == "median":
            levelled = frame - np.nanmedian(frame, axis=1, keepdims=True) + np.nanmedian(frame)
        else:
            levelled = frame - _line_polynomials(frame, order, period)
        out[t] = levelled
    if period is not None:
        out = np.mod(out - low, period) + low
    return out.astype(np.float32)


def _line_polynomials(frame: np.ndarray, order: int, period: float | None) -> np.ndarray:
    """Per-line polynomial of the difference from the nearest of the frame's two domain levels."""
    from skimage.filters import threshold_otsu

    finite = np.isfinite(frame)
    values = frame[finite]
    level = threshold_otsu(values) if np.ptp(values) > 0 else float(np.median(values))
    upper, lower = np.median(values[values > level]) if (values > level).any() else level, \
        np.median(values[values <= level]) if (values <= level).any() else level
    nearest = np.where(frame > level, upper, lower)
    residual = _wrapped(frame - nearest, period)
    x = np.linspace(-1.0, 1.0, frame.shape[1])
    fit = np.zeros_like(frame)
    for k, line in enumerate(residual):
        ok = np.isfinite(line)
        if ok.sum() <= order + 1:
            continue
        for _ in range(3):  # robust: refit without the worst outliers
            coef = np.polyfit(x[ok], line[ok], order)
            err = line - np.polyval(coef, x)
            mad = np.nanmedian(np.abs(err[ok])) * 1.4826 + 1e-12
            ok = ok & (np.abs(err) <= 3 * mad)
            if ok.sum() <= order + 1:
                break
        fit[k] = np.polyval(coef, x)
    return fit


# ------------------------------------------------------------------ noise
def domain_levels(phase: np.ndarray, period: float | None = None) -> tuple[float, float]:
    """The two domain phases ``(low, high)``.

    Wrapped phase (``period``): the highest peak of the circular histogram (5° bins, smoothed
    over 10°) and the highest other peak at least a quarter period away; without one (a
    single-domain frame, or noise) the second level is half a period away. Otherwise the most
    frequent value on each side of the Otsu threshold.
    """
    values = phase[np.isfinite(phase)]
    if values.size == 0 or np.ptp(values) <= 0:
        level = float(values[0]) if values.size else 0.0
        return level, level
    if period is not None:
        from scipy.signal import find_peaks

        low_edge = float(values.min())
        bins = 72
        hist, edges = np.histogram(np.mod(values - low_edge, period), bins=bins, range=(0, period))
        smooth = ndimage.gaussian_filter1d(hist.astype(float), 2, mode="wrap")
        centres = (edges[:-1] + edges[1:]) / 2
        first = int(np.argmax(smooth))
        peaks, _ = find_peaks(np.concatenate([smooth, smooth, smooth]))
        peaks = np.unique(peaks % bins)
        apart = np.abs(_wrapped(centres[peaks] - centres[first], period)) >= period / 4
        if apart.any():
            second = float(centres[peaks[apart][np.argmax(smooth[peaks[apart]])]])
        else:
            second = float(centres[first] + period / 2)
        a, b = (np.mod(np.array([centres[first], second]), period) + low_edge)
        return (float(min(a, b)), float(max(a, b)))
    from skimage.filters import threshold_otsu

    cut = threshold_otsu(values)
    hist, edges = np.histogram(values, bins=180)
    hist = ndimage.gaussian_filter1d(hist.astype(float), 2)
    centres = (edges[:-1] + edges[1:]) / 2
    below, above = centres <= cut, centres > cut
    low = centres[below][np.argmax(hist[below])] if below.any() else float(np.median(values))
    high = centres[above][np.argmax(hist[above])] if above.any() else float(np.median(values))
    return float(low), float(high)


def level_distance(phase: np.ndarray, levels: tuple[float, float], period: float | None = None) -> np.ndarray:
    """Distance of each pixel's phase to the nearer of the two domain levels (wrapped)."""
    a, b = levels
    return np.minimum(np.abs(_wrapped(phase - a, period)), np.abs(_wrapped(phase - b, period)))


def noise_mask(phase, period: float, *, significance: float = NOISE_SIGNIFICANCE, min_area: int = 9,
               sigma: float = 3.0) -> np.ndarray:
    """Pixels whose phase is noise: ``(T, Y, X)`` bool.

    The phase is averaged as a unit vector ``exp(2πiθ / period)`` over a Gaussian window of
    ``sigma`` pixels (about ``n = 4πσ²`` pixels); where the length ``R`` of the mean is not
    significant, ``R·√n < significance`` (Rayleigh test: pure noise exceeds 2.5 for 0.2 % of
    windows), the phase carries no direction and the pixel is noise. A noisy but real
    domain keeps a significant mean; speckle (pixels flipped to the other level) too, and is
    left to the minimum domain size. Walls, where the two directions cancel, form thin
    bands that an opening (disc of radius ``sigma``) removes; specks smaller than
    ``min_area`` pixels are dropped and holes of that size filled.
    """
    data = as_movie(phase, "phase")
    out = np.zeros(data.shape, dtype=bool)
    n_eff = 4 * np.pi * sigma * sigma
    disc = _disc(int(round(sigma)))
    for t, frame in enumerate(data):
        finite = np.isfinite(frame)
        angle = np.where(finite, frame, 0.0) * (2 * np.pi / period)
        weight = ndimage.gaussian_filter(finite.astype(float), sigma) + 1e-12
        c = ndimage.gaussian_filter(np.cos(angle) * finite, sigma) / weight
        s = ndimage.gaussian_filter(np.sin(angle) * finite, sigma) / weight
        noisy = np.hypot(c, s) * np.sqrt(n_eff) < significance
        noisy = ndimage.binary_opening(noisy, structure=disc)
        noisy = _drop_components(noisy, min_area)
        noisy = ~_drop_components(~noisy, min_area)
        out[t] = noisy | ~finite
    return out


def circular_smooth(phase, period: float, sigma: float = 1.0) -> np.ndarray:
    """Gaussian smoothing of a wrapped phase as unit vectors (NaN stays NaN), in the input's range."""
    data = as_movie(phase, "phase")
    finite = np.isfinite(data)
    low = float(np.nanmin(data)) if finite.any() else 0.0
    angle = np.where(finite, data, 0.0) * (2 * np.pi / period)
    sig = (0, sigma, sigma)
    c = ndimage.gaussian_filter(np.cos(angle) * finite, sig)
    s = ndimage.gaussian_filter(np.sin(angle) * finite, sig)
    out = np.mod(np.arctan2(s, c) * period / (2 * np.pi) - low, period) + low
    return np.where(finite, out, np.nan).astype(np.float32)


def frame_coherence(frame: np.ndarray, period: float, sigma: float = 2.0) -> float:
    """Median over the frame of the local mean resultant length of the phase (Gaussian ``sigma``)."""
    finite = np.isfinite(frame)
    angle = np.where(finite, frame, 0.0) * (2 * np.pi / period)
    weight = ndimage.gaussian_filter(finite.astype(float), sigma) + 1e-12
    c = ndimage.gaussian_filter(np.cos(angle) * finite, sigma) / weight
    s = ndimage.gaussian_filter(np.sin(angle) * finite, sigma) / weight
    return float(np.median(np.hypot(c, s)[finite])) if finite.any() else 0.0


def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius: radius + 1, -radius: radius + 1]
    return yy * yy + xx * xx <= radius * radius + 0.5


def _drop_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    if min_area <= 1 or not mask.any():
        return mask
    lab, n = ndimage.label(mask)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_area
    keep[0] = False
    return keep[lab]


# ------------------------------------------------------------------ together
def assess_phase(phase, *, unit: str | None = None, pixel_size_nm: tuple[float, float] | None = None,
                 level: str | None = "median-diff", order: int = 1, noise_significance: float = NOISE_SIGNIFICANCE,
                 min_domain_nm2: float = MIN_DOMAIN_NM2, min_domain_px: int = 4, smooth: float = 0.5) -> PhaseQuality:
    """Levelled phase, reliable-area mask and per-frame quality report of a PFM phase movie.

    Parameters
    ----------
    phase : (T, Y, X) or (Y, X) array
    unit : str, optional
        The phase's unit ("deg", "rad"); guessed from the values when absent.
    pixel_size_nm : (float, float), optional
        Pixel size; sets the smallest domain area in pixels from ``min_domain_nm2``.
    level : "median-diff", "median", "poly" or None
        Scan-line levelling (:func:`level_lines`); None = none.
    noise_significance : float
        Noise threshold (:func:`noise_mask`; wrapped phases only: a phase of unknown units
        is not judged for noise).
    min_domain_nm2, min_domain_px : float, int
        Smallest domain (and noise region) kept: ``min_domain_nm2`` converted to pixels, at
        least ``min_domain_px``; ``min_domain_px`` alone without a calibration.
    smooth : float
        Gaussian smoothing (pixels) of the map the stripe detector looks at.

    Returns
    -------
    :class:`PhaseQuality`; its ``report`` has one row per frame: ``frame``,
    ``coherence`` (:func:`frame_coherence`), ``reliable_fraction``, ``noise_fraction``,
    ``stripe_fraction``, ``contrast`` (False when the phase is noise over most of the frame, or
    less than a quarter of it is reliable) and ``note``.
    """
    from skimage.filters import threshold_otsu

    data = as_movie(phase, "phase").astype(np.float32)
    if not np.isfinite(data).any():
        raise ValueError("phase: every pixel is NaN or infinite")
    min_px = min_domain_area_px(pixel_size_nm, min_domain_nm2, min_domain_px)
    period = phase_period(data, unit)
    if period is not None:
        data, _ = rewrap(data, period)
    if level is not None:
        data = level_lines(data, method=level, order=order, period=period)
        if period is not None:
            data, _ = rewrap(data, period)
    finite = np.isfinite(data)
    noise = noise_mask(data, period, significance=noise_significance, min_area=min_px) if period is not None else ~finite
    work = np.where(finite, data, np.nanmedian(data))
    if smooth > 0:
        work = ndimage.gaussian_filter(work, (0, smooth, smooth))
    values = work[~noise]
    level_value = threshold_otsu(values) if values.size and np.ptp(values) > 0 else np.inf
    stripes = stripe_mask(work > level_value, ~noise) & ~noise
    reliable = finite & ~noise & ~stripes
    rows = []
    for t in range(len(data)):
        rel = float(reliable[t].mean())
        coherent = frame_coherence(data[t], period) if period is not None else 1.0
        note = ""
        contrast = rel >= 0.25 and coherent >= MIN_COHERENCE
        if coherent < MIN_COHERENCE:
            note = (f"no domain contrast: the phase is noise over most of the frame (median local coherence "
                    f"{coherent:.2f} < {MIN_COHERENCE}); no walls or switched fraction for it")
        elif not contrast:
            note = (f"no domain contrast: only {rel:.0%} of the frame has a coherent phase "
                    f"({noise[t].mean():.0%} noise, {stripes[t].mean():.0%} stripes)")
        elif rel < 0.75:
            note = f"{1 - rel:.0%} of the frame masked ({noise[t].mean():.0%} noise, {stripes[t].mean():.0%} stripes)"
        rows.append({"frame": t, "coherence": coherent, "reliable_fraction": rel, "noise_fraction": float(noise[t].mean()),
                     "stripe_fraction": float(stripes[t].mean()), "contrast": contrast, "note": note})
    return PhaseQuality(data, reliable, noise, stripes, period, pd.DataFrame(rows))


def min_domain_area_px(pixel_size_nm: tuple[float, float] | None, min_domain_nm2: float = MIN_DOMAIN_NM2,
                       min_domain_px: int = 4) -> int:
    """Smallest domain in pixels: ``min_domain_nm2`` over the pixel area, at least ``min_domain_px``."""
    if min_domain_nm2 < 0 or min_domain_px < 0:
        raise ValueError("min_domain_nm2 and min_domain_px must be ≥ 0")
    if pixel_size_nm is None:
        return int(min_domain_px)
    area = float(pixel_size_nm[0]) * float(pixel_size_nm[1])
    if not area > 0:
        raise ValueError(f"pixel_size_nm: expected positive sizes, got {pixel_size_nm}")
    return max(int(min_domain_px), int(np.ceil(min_domain_nm2 / area)))
