"""Angle tools: wrapping, a user offset, histogram peaks and variants.

The rVAE's angle latent is unbounded (only its spread is regularised), so it
is wrapped to ``(-π, π]`` before display. Paper 003 registers the encoded
angle with the true polarisation by a manual offset (−100° there) and reads
ferroic variants as histogram peaks about π/2 apart. Peaks are found on a
smoothed histogram padded circularly, so a peak straddling ±π is found once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

TWO_PI = 2.0 * np.pi


def wrap_angle(angle, offset: float = 0.0) -> np.ndarray:
    """Return ``angle + offset`` wrapped to ``(-π, π]`` (radians)."""
    a = np.asarray(angle, dtype=np.float64) + float(offset)
    return np.pi - np.mod(np.pi - a, TWO_PI)


def angle_difference(a, b) -> np.ndarray:
    """Signed circular difference ``a - b`` wrapped to ``(-π, π]`` (radians)."""
    return wrap_angle(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))


def fold(angle, symmetry: int = 1) -> np.ndarray:
    """Angles modulo ``2π / symmetry``, in ``(-π/symmetry, π/symmetry]`` (radians): for windows whose
    motif repeats under that rotation (graphene sites: 3), angles that differ by a symmetry turn are
    the same orientation."""
    n = int(symmetry)
    if n < 1:
        raise ValueError(f"symmetry: a rotation order of at least 1, got {symmetry}")
    return wrap_angle(n * np.asarray(angle, dtype=np.float64)) / n


def angle_histogram(angle, bins: int = 90, *, offset: float = 0.0, smooth: float = 0.0,
                    symmetry: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of wrapped angles over one turn (over ``2π / symmetry`` with ``symmetry`` > 1).

    Parameters
    ----------
    angle : (N,) radians
    bins : int
        Number of bins over ``[-π, π)`` (90 bins = 4° each).
    offset : float
        Added to every angle before wrapping (radians).
    smooth : float
        Width (in bins) of a circular Gaussian smoothing; 0 = none.
    symmetry : int
        Fold the angles modulo ``2π / symmetry`` first (:func:`fold`); the bins then cover
        ``[-π/symmetry, π/symmetry)``.

    Returns
    -------
    centres : (bins,) radians
    density : (bins,) float
        Probability density (integrates to 1 over the turn).
    """
    bins = int(bins)
    if bins < 8:
        raise ValueError(f"bins: need at least 8 bins over the circle, got {bins}")
    n = int(symmetry)
    a = fold(wrap_angle(np.asarray(angle, dtype=np.float64).ravel(), offset), n) * n
    a = a[np.isfinite(a)]
    if not len(a):
        raise ValueError("angle: no finite angles")
    width = TWO_PI / bins
    idx = np.floor((a + np.pi) / width).astype(np.int64) % bins
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    if smooth > 0:
        counts = gaussian_filter1d(counts, smooth, mode="wrap")
    centres = (-np.pi + width * (np.arange(bins) + 0.5)) / n
    return centres, counts / (counts.sum() * width / n)


def find_angle_peaks(
    angle,
    *,
    bins: int = 90,
    smooth: float = 1.5,
    offset: float = 0.0,
    prominence: float = 0.15,
    noise_sigmas: float = 5.0,
    max_peaks: int | None = None,
    symmetry: int = 1,
) -> pd.DataFrame:
    """Peaks of the angle histogram and the spacing to the next peak.

    Parameters
    ----------
    angle : (N,) radians
    bins, smooth, offset : see :func:`angle_histogram`
    prominence : float
        Minimum peak prominence as a fraction of the highest peak.
    noise_sigmas : float
        Minimum prominence also in units of the counting noise of the
        smoothed histogram at its highest bin (Poisson), so that a flat
        distribution (e.g. a non-polar phase) gives no peaks.
    max_peaks : int, optional
        Keep only the most prominent peaks.
    symmetry : int
        Find the peaks of the angles folded modulo ``2π / symmetry`` (:func:`fold`): positions
        lie in ``(-π/symmetry, π/symmetry]`` and the spacings add up to ``2π / symmetry``.

    Returns
    -------
    DataFrame
        One row per peak sorted by position: ``angle`` (radians, refined by
        a parabola through the three top bins), ``height`` (density),
        ``prominence`` and ``spacing`` (radians to the next peak
        counter-clockwise, the last one wrapping round to the first; the
        spacings of all peaks add up to 2π).
    """
    if not 0 <= prominence < 1:
        raise ValueError(f"prominence: a fraction of the highest peak in [0, 1), got {prominence}")
    n = int(symmetry)
    if n > 1:  # peaks of the folded angles: those of n·angle over the whole turn, scaled back
        peaks = find_angle_peaks(fold(wrap_angle(np.asarray(angle, dtype=np.float64), offset), n) * n, bins=bins,
                                 smooth=smooth, prominence=prominence, noise_sigmas=noise_sigmas, max_peaks=max_peaks)
        peaks["angle"] /= n
        peaks["spacing"] /= n
        peaks["height"] *= n
        return peaks
    centres, density = angle_histogram(angle, bins, offset=offset, smooth=smooth)
    bins = len(centres)
    n = int(np.isfinite(np.asarray(angle, dtype=np.float64)).sum())
    width = TWO_PI / bins
    # Poisson noise of the top bin, reduced by the Gaussian smoothing (variance factor 1 / (2 √π σ))
    peak_counts = density.max() * n * width
    reduction = 1.0 / np.sqrt(2 * np.sqrt(np.pi) * smooth) if smooth > 0.5 else 1.0
    noise = np.sqrt(peak_counts) * reduction / (n * width)
    pad = bins // 2
    padded = np.concatenate([density[-pad:], density, density[:pad]])
    idx, props = find_peaks(padded, prominence=max(prominence * density.max(), noise_sigmas * noise))
    inside = (idx >= pad) & (idx < pad + bins)
    idx, prom = idx[inside] - pad, props["prominences"][inside]
    if max_peaks is not None and len(idx) > max_peaks:
        best = np.sort(np.argsort(-prom, kind="stable")[: int(max_peaks)])
        idx, prom = idx[best], prom[best]
    left, right = density[(idx - 1) % bins], density[(idx + 1) % bins]
    curve = left - 2 * density[idx] + right
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1), 0.0)
    positions = wrap_angle(centres[idx] + np.clip(shift, -0.5, 0.5) * width)
    order = np.argsort(positions)
    positions, heights, prom = positions[order], density[idx][order], prom[order]
    return pd.DataFrame({
        "angle": positions,
        "height": heights,
        "prominence": prom,
        "spacing": peak_spacings(positions),
    })


def peak_spacings(positions) -> np.ndarray:
    """Counter-clockwise spacing (radians) from each sorted peak to the next one, wrapping round."""
    p = np.sort(wrap_angle(np.asarray(positions, dtype=np.float64).ravel()))
    if len(p) == 0:
        return p
    if len(p) == 1:
        return np.array([TWO_PI])
    return np.mod(np.roll(p, -1) - p, TWO_PI)


def assign_variants(
    angle, peaks=None, *, offset: float = 0.0, max_distance: float | None = None, **peak_options
) -> np.ndarray:
    """Variant of every site: index of the nearest angle peak (circular distance).

    Parameters
    ----------
    angle : (N,) radians
    peaks : (K,) radians, optional
        Variant directions (after ``offset``); default: :func:`find_angle_peaks`.
    offset : float
        Added to the angles (and used by the peak finder) before comparison.
    max_distance : float, optional
        Sites farther than this (radians) from every peak get ``-1``.

    Returns
    -------
    (N,) int64
        Index into the sorted peaks, or -1 (also for NaN angles).
    """
    a = np.asarray(angle, dtype=np.float64).ravel()
    if peaks is None:
        peaks = find_angle_peaks(a, offset=offset, **peak_options)["angle"].to_numpy()
    peaks = np.sort(wrap_angle(np.asarray(peaks, dtype=np.float64).ravel()))
    if not len(peaks):
        raise ValueError("peaks: no angle peaks to assign variants to")
    wrapped = wrap_angle(a, offset)
    distance = np.abs(angle_difference(wrapped[:, None], peaks[None, :]))
    variant = np.argmin(distance, axis=1).astype(np.int64)
    bad = ~np.isfinite(a)
    if max_distance is not None:
        bad |= distance.min(axis=1) > max_distance
    variant[bad] = -1
    return variant
