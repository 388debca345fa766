"""Atoms: from segmenter probability maps or straight from the raw image.

Every function here loops over frames itself and returns the sites table
(``frame, y, x, kind="atom", class, intensity``; positions in pixels, sub-pixel).
Class is the segmenter channel (channel ``c`` → class ``c - 1``, channel 0 being
background) or, for raw images, a two-cluster split of the integrated intensity
(class 0 = dimmer, e.g. C; class 1 = brighter, e.g. Si).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io.sites import empty_sites, make_sites
from ._checks import as_movie, as_probabilities, frame_is_usable, nearest_neighbour_distance

METHODS = ("peaks", "threshold", "model")


# ----------------------------------------------------------------- helpers
def _keep_inside(yx: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """Boolean mask of positions at least ``margin`` pixels from every border."""
    if margin <= 0 or len(yx) == 0:
        return np.ones(len(yx), dtype=bool)
    Y, X = shape
    return (yx[:, 0] >= margin) & (yx[:, 0] <= Y - 1 - margin) & (yx[:, 1] >= margin) & (yx[:, 1] <= X - 1 - margin)


def _filled(frame: np.ndarray) -> np.ndarray:
    """Frame with non-finite pixels replaced by the median of the finite ones."""
    finite = np.isfinite(frame)
    if finite.all():
        return frame
    out = frame.copy()
    out[~finite] = np.median(frame[finite])
    return out


def site_intensity(image: np.ndarray, yx: np.ndarray, radius: float) -> np.ndarray:
    """Integrated intensity in a disc around each site.

    Parameters
    ----------
    image : (Y, X) array
        Raw frame.
    yx : (N, 2) array
        Site positions (pixels); the disc is centred on the nearest pixel.
    radius : float
        Disc radius in pixels (≥ 0.5).

    Returns
    -------
    intensity : (N,) float64
        Sum of the finite pixels inside the disc, rescaled by the fraction of the
        disc inside the frame so edge sites are comparable.
    """
    image = np.asarray(image, dtype=np.float64)
    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    if radius < 0.5:
        raise ValueError(f"radius: must be at least 0.5 pixel, got {radius}")
    if len(yx) == 0:
        return np.zeros(0)
    r = int(np.ceil(radius))
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    disc = oy**2 + ox**2 <= radius**2
    oy, ox = oy[disc], ox[disc]
    cy = np.rint(yx[:, 0]).astype(np.int64)[:, None] + oy[None]
    cx = np.rint(yx[:, 1]).astype(np.int64)[:, None] + ox[None]
    Y, X = image.shape
    inside = (cy >= 0) & (cy < Y) & (cx >= 0) & (cx < X)
    values = image[np.clip(cy, 0, Y - 1), np.clip(cx, 0, X - 1)]
    valid = inside & np.isfinite(values)
    total = np.where(valid, values, 0.0).sum(1)
    count = valid.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total * (disc.sum() / np.maximum(count, 1)), np.nan)


#: the intensity classes of more sites are fitted on an even sample of this many (memory and time stay
#: bounded on long movies; a rare class of 0.1 % still has 200 sites in it)
FIT_SITES = 200_000


def classify_by_intensity(intensity, *, method: str = "gmm", min_separation: float = 3.0, seed: int = 0) -> np.ndarray:
    """Split sites into dim (class 0) and bright (class 1) by integrated intensity.

    Parameters
    ----------
    intensity : (N,) array
        Integrated intensities (any units); NaN sites get class 0.
    method : {"gmm", "otsu"}
        Two-component Gaussian mixture (robust when the bright class is rare) or
        Otsu's threshold.
    min_separation : float
        The split is kept only if the two groups' means differ by at least this
        many pooled standard deviations; otherwise every site is class 0 (one
        population, e.g. a frame without dopants).
    seed : int
        Random state of the mixture fit.

    Returns
    -------
    classes : (N,) int64 array of 0 / 1.
    """
    values = np.asarray(intensity, dtype=np.float64).ravel()
    classes = np.zeros(values.size, dtype=np.int64)
    finite = np.isfinite(values)
    v = values if finite.all() else values[finite]
    if v.size < 3 or np.ptp(v) <= 0:
        return classes
    if method == "gmm":
        from sklearn.mixture import GaussianMixture

        # a long movie's millions of sites: the fit sees an even sample, the prediction runs in blocks
        step = -(-v.size // FIT_SITES)
        gmm = GaussianMixture(2, random_state=seed, n_init=1).fit(v[::step, None])
        bright = int(np.argmax(gmm.means_.ravel()))
        labels = np.concatenate([gmm.predict(v[a: a + FIT_SITES, None]) == bright
                                 for a in range(0, v.size, FIT_SITES)])
    elif method == "otsu":
        from skimage.filters import threshold_otsu

        labels = v > threshold_otsu(v)
    else:
        raise ValueError(f"method: expected 'gmm' or 'otsu', got {method!r}")
    groups = []
    for members in (~labels, labels):
        group = v[members]
        groups.append((group.size, group.mean() if group.size else np.nan, group.var() if group.size else np.nan))
        del group
    (n_lo, mean_lo, var_lo), (n_hi, mean_hi, var_hi) = groups
    if n_lo == 0 or n_hi == 0:
        return classes
    pooled = np.sqrt(0.5 * (var_lo + var_hi)) if (n_lo > 1 and n_hi > 1) else np.ptp(v)
    if mean_hi - mean_lo < min_separation * max(pooled, 1e-12):
        return classes
    classes[finite] = labels
    return classes


# ------------------------------------------------------- from probabilities
def component_centroids(foreground: np.ndarray, threshold: float = 0.5, min_area: int = 2) -> np.ndarray:
    """Centroids ``(M, 2)`` (y, x pixels, weighted by ``foreground``) of the connected regions
    where ``foreground > threshold`` with at least ``min_area`` pixels."""
    labels, n = ndimage.label(foreground > threshold)
    if n == 0:
        return np.zeros((0, 2))
    index = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    centres = np.asarray(ndimage.center_of_mass(foreground, labels, index), dtype=np.float64).reshape(-1, 2)
    keep = area >= min_area
    return centres[keep]


def atoms_from_probabilities(
    probabilities,
    *,
    threshold: float = 0.5,
    method: str = "threshold",
    min_area: int = 2,
    min_distance: float = 2,
    edge_margin: float = 0.0,
    image=None,
    intensity_radius: float | None = None,
    smooth: float = 0.0,
) -> pd.DataFrame:
    """Atoms from segmenter probability maps.

    Parameters
    ----------
    probabilities : (T, C, Y, X) or (C, Y, X) array
        Softmax output; channel 0 = background, channels 1.. = atom classes.
    threshold : float
        Foreground probability ``1 - p[0]`` above which a pixel belongs to an atom.
    method : {"threshold", "peaks"}
        ``"threshold"``: connected components of the foreground, centroid weighted
        by probability. ``"peaks"``: local maxima of the foreground at least
        ``min_distance`` apart (:func:`round_peaks`) — separates touching atoms.
    min_area : int
        Smallest component (pixels) kept by ``"threshold"``.
    min_distance : float
        Minimum peak separation (pixels) for ``"peaks"``.
    edge_margin : float
        Drop atoms closer than this (pixels) to the frame border.
    image : (T, Y, X) array, optional
        Raw movie for the ``intensity`` column (NaN without it).
    intensity_radius : float, optional
        Disc radius (pixels) for the intensity; default 0.3 × the median
        nearest-neighbour distance of the frame's atoms (at least 1.5).
    smooth : float
        Gaussian smoothing (pixels) of the foreground before ``"peaks"`` (evens out
        the noise of a low-dose map's plateau; 0 = none).

    Returns
    -------
    sites : DataFrame
        ``frame, y, x, kind="atom", class, intensity``; class = argmax channel − 1.
    """
    probs = as_probabilities(probabilities)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold: must lie between 0 and 1, got {threshold}")
    if method not in ("threshold", "peaks"):
        raise ValueError(f"method: expected 'threshold' or 'peaks', got {method!r}")
    smooth_sigma = float(smooth)
    raw = None if image is None else as_movie(image, "image")
    if raw is not None and raw.shape != (probs.shape[0],) + probs.shape[2:]:
        raise ValueError(f"image: shape {raw.shape} does not match the probability maps {probs.shape}")
    tables = []
    for t in range(probs.shape[0]):
        p = np.nan_to_num(probs[t], nan=0.0)
        foreground = 1.0 - p[0]
        if method == "threshold":
            yx = component_centroids(foreground, threshold, int(min_area))
        else:
            surface = ndimage.gaussian_filter(foreground, smooth_sigma) if smooth_sigma > 0 else foreground
            yx = round_peaks(surface, max(1.0, float(min_distance)), threshold).astype(np.float64)
        yx = yx[_keep_inside(yx, foreground.shape, edge_margin)]
        if len(yx) == 0:
            continue
        iy = np.clip(np.rint(yx[:, 0]).astype(int), 0, p.shape[1] - 1)
        ix = np.clip(np.rint(yx[:, 1]).astype(int), 0, p.shape[2] - 1)
        # class from the channel that dominates a 3×3 neighbourhood of the centre (edges repeated)
        cls = np.zeros(len(yx), np.int64)
        if p.shape[0] > 2:
            summed = sum(p[1:, np.clip(iy + dy, 0, p.shape[1] - 1), np.clip(ix + dx, 0, p.shape[2] - 1)]
                         for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            cls = np.argmax(summed, axis=0)
        intensity = np.full(len(yx), np.nan)
        if raw is not None:
            intensity = site_intensity(raw[t], yx, _radius(yx, intensity_radius))
        tables.append(make_sites(t, yx[:, 0], yx[:, 1], "atom", cls, intensity))
    return _finish(tables)


def _radius(yx: np.ndarray, radius: float | None) -> float:
    if radius is not None:
        return float(radius)
    nn = nearest_neighbour_distance(yx)
    return max(1.5, 0.3 * nn) if np.isfinite(nn) else 1.5


def _finish(tables: list[pd.DataFrame]) -> pd.DataFrame:
    if not tables:
        warnings.warn("no atoms found; returning an empty sites table", stacklevel=3)
        return empty_sites()
    return pd.concat(tables, ignore_index=True)


# ------------------------------------------------------------ from raw image
def round_peaks(image: np.ndarray, min_distance: float, threshold_abs: float | None = None) -> np.ndarray:
    """Local maxima ``(M, 2)`` (integer pixels) of ``image``, at least ``min_distance`` apart (Euclidean).

    A peak must be the maximum of a round neighbourhood of radius 0.7 × ``min_distance``
    (not a square of ± ``min_distance``: its corners reach the tail of a bright
    neighbour, e.g. Si next to C, and hide the weaker atom) and above ``threshold_abs``
    (default: the image's minimum). Of peaks closer than ``min_distance`` the highest is
    kept (ties: the first in row-major order). The same peaks as skimage's
    ``peak_local_max`` with this footprint, about 5× faster: a pixel that is the maximum
    of the square around the disc is one of the disc too, so the round neighbourhood is
    checked only for the few 3×3 maxima that are not.
    """
    image = np.asarray(image)
    radius = max(1, int(round(0.7 * min_distance)))
    threshold = float(np.nanmin(image)) if threshold_abs is None else float(threshold_abs)
    if image.size == 0 or not np.nanmax(image) > np.nanmin(image):
        return np.zeros((0, 2), np.int64)  # a constant image has no peaks
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = yy**2 + xx**2 <= radius**2
    if radius < 2:  # the disc is smaller than a 3×3 square: filter with it directly
        peak = image == ndimage.maximum_filter(image, footprint=disc, mode="nearest")
    else:
        peak = image == ndimage.maximum_filter(image, size=3, mode="nearest")
        peak &= image > threshold
        unsure = peak & (image != ndimage.maximum_filter(image, size=2 * radius + 1, mode="nearest"))
        uy, ux = np.nonzero(unsure)
        if len(uy):
            padded = np.pad(image, radius, mode="edge")
            oy, ox = yy[disc], xx[disc]
            for start in range(0, len(uy), 4096):
                cy, cx = uy[start : start + 4096], ux[start : start + 4096]
                around = padded[cy[:, None] + radius + oy[None], cx[:, None] + radius + ox[None]]
                peak[cy, cx] = image[cy, cx] >= around.max(1)
    peak &= image > threshold
    coords = np.argwhere(peak)
    coords = coords[np.argsort(-image[peak], kind="stable")]
    spacing = max(1, int(round(min_distance)))
    if spacing <= 1 or len(coords) < 2:
        return coords
    from scipy.spatial import cKDTree

    pairs = cKDTree(coords).query_pairs(spacing, output_type="ndarray")
    if len(pairs) == 0:
        return coords
    close = np.hypot(*(coords[pairs[:, 0]] - coords[pairs[:, 1]]).T) < spacing
    pairs = np.sort(pairs[close], axis=1)  # (higher, lower): rows of coords are in descending order
    order = np.argsort(pairs[:, 0], kind="stable")
    pairs = pairs[order]
    starts = np.searchsorted(pairs[:, 0], np.arange(len(coords) + 1))
    rejected = np.zeros(len(coords), bool)
    for i in np.unique(pairs[:, 0]):
        if not rejected[i]:
            rejected[pairs[starts[i] : starts[i + 1], 1]] = True
    return coords[~rejected]


def _peaks_one_frame(frame, sigma, min_distance, threshold, threshold_abs, background_sigma):
    from skimage.feature import peak_local_max

    smooth = ndimage.gaussian_filter(_filled(frame), sigma) if sigma > 0 else _filled(frame)
    if background_sigma:
        smooth = smooth - ndimage.gaussian_filter(smooth, background_sigma)
    base = float(np.percentile(smooth, 2))
    if min_distance is None:
        # first pass: strong peaks only, to learn the atom spacing
        cand = peak_local_max(smooth, min_distance=max(1, int(round(sigma))), exclude_border=False)
        if len(cand) < 2:
            return np.zeros((0, 2))
        h = smooth[cand[:, 0], cand[:, 1]] - base
        strong = cand[h > 0.5 * np.median(h)]
        nn = nearest_neighbour_distance(strong)
        min_distance = max(1, int(0.5 * nn)) if np.isfinite(nn) else 1
    peaks = round_peaks(smooth, min_distance)
    if len(peaks) == 0:
        return np.zeros((0, 2))
    h = smooth[peaks[:, 0], peaks[:, 1]] - base
    cut = threshold_abs - base if threshold_abs is not None else threshold * np.median(h)
    return peaks[h > cut].astype(np.float64)


def atoms_from_image(
    movie,
    *,
    sigma: float = 1.0,
    min_distance: float | None = None,
    threshold: float = 0.5,
    threshold_abs: float | None = None,
    background_sigma: float | None = None,
    edge_margin: float = 0.0,
) -> pd.DataFrame:
    """Atoms straight from a raw image by peak finding (no model).

    Parameters
    ----------
    movie : (T, Y, X) or (Y, X) array
        Raw frames, bright atoms on a dark background (HAADF-like; invert BF first).
    sigma : float
        Gaussian smoothing (pixels) before peak finding; about the atom's σ.
    min_distance : float, optional
        Minimum peak separation in pixels. Default: half the median
        nearest-neighbour distance of the strong peaks, found per frame
        (:func:`~napari_rvae.detect.detect_atoms` passes 0.55 × the lattice spacing).
    threshold : float
        A peak is kept if its height above the background (2nd percentile of the
        smoothed frame) exceeds ``threshold`` × the median peak height. Removes
        noise maxima in holes and vacuum as long as atoms are most of the maxima.
    threshold_abs : float, optional
        Absolute smoothed intensity a peak must exceed instead (overrides ``threshold``).
    background_sigma : float, optional
        Subtract a Gaussian-smoothed background of this width (pixels) first.
    edge_margin : float
        Drop atoms closer than this (pixels) to the border.

    Returns
    -------
    sites : DataFrame with ``frame, y, x, kind, class=0, intensity=NaN`` (integer
        pixel positions; refine and classify with :func:`detect_atoms`).
    """
    data = as_movie(movie)
    if sigma < 0:
        raise ValueError(f"sigma: must be ≥ 0 pixels, got {sigma}")
    if min_distance is not None and min_distance < 1:
        raise ValueError(f"min_distance: must be at least 1 pixel, got {min_distance}")
    tables = []
    for t, frame in enumerate(data):
        why = frame_is_usable(frame)
        if why:
            warnings.warn(f"frame {t}: {why}; no atoms detected there", stacklevel=2)
            continue
        yx = _peaks_one_frame(frame, sigma, min_distance, threshold, threshold_abs, background_sigma)
        yx = yx[_keep_inside(yx, frame.shape, edge_margin)]
        if len(yx):
            tables.append(make_sites(t, yx[:, 0], yx[:, 1], "atom", 0))
    return _finish(tables)


def _threshold_image(data: np.ndarray, threshold: float, sigma: float, edge_margin: float) -> pd.DataFrame:
    """Treat the min–max normalised (smoothed) frame as a probability map."""
    tables = []
    for t, frame in enumerate(data):
        why = frame_is_usable(frame)
        if why:
            warnings.warn(f"frame {t}: {why}; no atoms detected there", stacklevel=3)
            continue
        f = _filled(frame)
        if sigma > 0:
            f = ndimage.gaussian_filter(f, sigma)
        lo, hi = np.percentile(f, [1, 99.9])
        f = np.clip((f - lo) / max(hi - lo, 1e-12), 0, 1)
        yx = component_centroids(f, threshold, 2)
        yx = yx[_keep_inside(yx, f.shape, edge_margin)]
        if len(yx):
            tables.append(make_sites(t, yx[:, 0], yx[:, 1], "atom", 0))
    return _finish(tables)
