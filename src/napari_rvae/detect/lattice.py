"""The lattice scale of a frame, read from the data: atom spacing, lattice kind, contrast.

Every scale-dependent default of detection (peak smoothing, minimum distance,
refinement box, segmenter rescale, window size, ring bond length) follows from
the **nearest-neighbour spacing** of the atoms, which this module estimates from
the image itself, before any atom is found.

Method: the autocorrelation of the background-flattened, apodised frame (the
Patterson function) has a peak at every interatomic vector. Shot and read noise
are white, so they only add to the origin; several grains, drift and amorphous
regions blur the peaks but do not move the first ring of the radially averaged
autocorrelation, which lies at the nearest-neighbour distance whatever the
lattice and its orientation. The ring is located to a fraction of a pixel; its
prominence over the fluctuations of the profile says whether there is a lattice
at all. The lattice kind comes from the angular order of the first ring (six
peaks: hexagonal family, four: square family) and from how strong it is against
the next ring (a honeycomb's first ring holds half the pairs of a triangular
lattice's). The contrast polarity (bright atoms as in HAADF, or dark atoms as in
ABF) comes from the skewness of the frame band-passed at the atom scale: atoms
are sharp extrema, the space between them broad.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from ._checks import as_movie, frame_is_usable, lazy_movie

KINDS = ("honeycomb", "hexagonal", "square", "unknown")
# Atoms per nn-spacing² for each lattice kind (honeycomb 4/(3√3), triangular 2/√3, square 1).
DENSITY = {"honeycomb": 4 / (3 * np.sqrt(3)), "hexagonal": 2 / np.sqrt(3), "square": 1.0}
CANONICAL_SPACING = 10.0  # pixels: the spacing the shipped atom finder sees (frames are rescaled to it)
MIN_SPACING = 3.0  # pixels; closer atoms are not resolved by any detector here
CENTRED = 0.05  # peak height between the ring's directions, relative to the ring's, that shows atoms there
PERIODIC_RANK = 75  # a repeated peak must reach this percentile of its radius's values
MIN_PROMINENCE = 0.05  # strongest off-origin autocorrelation peak, as a fraction of the origin's correlated signal


@dataclass
class Lattice:
    """What the data say about one frame's (or one movie's) lattice.

    Attributes
    ----------
    spacing : float
        Nearest-neighbour atom spacing in pixels (NaN when no lattice was found).
    kind : str
        ``"honeycomb"``, ``"hexagonal"`` (triangular), ``"square"`` or ``"unknown"``.
    contrast : str
        ``"bright"`` (atoms brighter than their surroundings, HAADF/ADF) or
        ``"dark"`` (atoms darker, ABF/BF).
    prominence : float
        Strength of the first autocorrelation ring, 0–1 (≥ ~0.12 means a lattice).
    found : bool
        Whether a lattice was found. A frame whose rings do not pass the periodicity checks keeps
        its measured spacing as a candidate (``found`` False, ``candidate`` True).
    frames : list of float
        Per-frame spacings (pixels) for a movie estimate, one per analysed frame.
    analysed : list of int
        The frames (0-based) those spacings belong to, in the order they were analysed.
    note : str
        Why no lattice was found, or what was uncertain.
    regular : bool
        The autocorrelation's ring was a regular star (three directions 60° apart, or two 90°
        apart); otherwise (several grains, distortion, a rectangular projection) detection
        confirms the lattice from the atoms it finds.
    """

    spacing: float = float("nan")
    kind: str = "unknown"
    contrast: str = "bright"
    prominence: float = 0.0
    found: bool = False
    frames: list = field(default_factory=list)
    note: str = ""
    regular: bool = False
    analysed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["spacing"] = None if not np.isfinite(self.spacing) else round(float(self.spacing), 3)
        out["prominence"] = round(float(self.prominence), 3)
        out["frames"] = [None if not np.isfinite(s) else round(float(s), 3) for s in self.frames]
        out["analysed"] = [int(t) for t in self.analysed]
        return out

    @classmethod
    def from_dict(cls, values) -> "Lattice | None":
        """The lattice :meth:`to_dict` wrote (None for a missing or unreadable record)."""
        if not isinstance(values, dict):
            return None
        try:
            fields = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}
            if fields.get("spacing") is None:
                fields["spacing"] = float("nan")
            fields["spacing"] = float(fields["spacing"])
            fields["prominence"] = float(fields.get("prominence", 0.0))
            fields["frames"] = [float("nan") if f is None else float(f) for f in fields.get("frames", [])]
            return cls(**fields)
        except (TypeError, ValueError):
            return None

    @property
    def site_symmetry(self) -> int:
        """Rotational symmetry of an atom site's neighbourhood: 3 on a honeycomb (an atom's angle means
        something modulo 120°, and the two sublattices are 60° apart), else 1."""
        return 3 if self.kind == "honeycomb" else 1

    @property
    def candidate(self) -> bool:
        """A spacing was measured but the lattice did not pass the periodicity checks: a candidate
        that the detected atoms may still confirm (their neighbours at that spacing)."""
        return not self.found and bool(np.isfinite(self.spacing))

    def summary(self) -> str:
        if not self.found:
            return f"no lattice found ({self.note})" if self.note else "no lattice found"
        kind = "" if self.kind == "unknown" else f"{self.kind} "
        return (f"{kind}lattice, atom spacing {self.spacing:.2f} px, {self.contrast} atoms "
                f"(ring prominence {self.prominence:.2f})")

    def expected_density(self) -> tuple[float, float]:
        """Atoms per pixel² a full lattice of this spacing holds: (low, high) over the possible kinds."""
        if not self.found:
            return (float("nan"), float("nan"))
        if self.kind in DENSITY:
            d = DENSITY[self.kind] / self.spacing**2
            return (d, d)
        values = np.array(list(DENSITY.values())) / self.spacing**2
        return (float(values.min()), float(values.max()))


# ------------------------------------------------------------------ one frame
def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-like smoothing of width ``sigma`` pixels in constant time per pixel (three box
    filters), for the wide kernels of background removal."""
    width = max(1, int(round(np.sqrt(4.0 * sigma**2 + 1.0))))
    out = image
    for _ in range(3):
        out = ndimage.uniform_filter(out, width, mode="reflect")
    return out


def _flatten(frame: np.ndarray, max_period: float) -> np.ndarray:
    """Frame with its slow background removed and its local contrast evened out, NaN filled.

    The background is a smoothing of about half the longest period looked for
    (at least 8 px); dividing by the local standard deviation on the same scale
    makes holes, vacuum and thick regions as strong as the lattice, so their
    edges do not add a broad bump to the autocorrelation: inside them only
    noise is left, which correlates at lag 0 alone.
    """
    f = np.asarray(frame, dtype=np.float32)  # float32: twice as fast, far more precise than any image
    finite = np.isfinite(f)
    if not finite.all():
        f = np.where(finite, f, np.median(f[finite]))
    f = f - np.float32(np.mean(f))
    s = max(8.0, 0.5 * max_period)
    detail = f - _smooth(f, s)
    local = _smooth(detail**2, s)
    floor = 1e-6 * float(local.mean()) if local.mean() > 0 else 1e-30
    return detail / np.sqrt(local + floor)


def autocorrelation(frame: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised autocorrelation ``(2 L + 1, 2 L + 1)`` of a flattened frame, lags ``-L … L`` pixels.

    The frame is apodised with a Hann window and zero-padded (no wrap-around);
    each lag is divided by the window's own overlap at that lag, and the result
    by its value at lag 0.
    """
    from scipy import fft

    Y, X = frame.shape
    L = int(max_lag)
    wy, wx = np.hanning(Y), np.hanning(X)
    f = (frame - frame.mean()) * wy[:, None] * wx[None, :]
    shape = (fft.next_fast_len(Y + L, real=True), fft.next_fast_len(X + L, real=True))
    spectrum = fft.rfft2(f, shape)
    acf = fft.irfft2(spectrum.real**2 + spectrum.imag**2, shape)
    acf = acf[np.ix_(np.r_[-L : L + 1] % shape[0], np.r_[-L : L + 1] % shape[1])]
    # the Hann window's overlap with itself at each lag (separable)
    oy = np.correlate(wy, wy, "full")[Y - 1 - L : Y + L]
    ox = np.correlate(wx, wx, "full")[X - 1 - L : X + L]
    overlap = oy[:, None] * ox[None, :]
    acf = acf / np.maximum(overlap, 1e-12 * overlap.max())
    return acf / acf[L, L] if acf[L, L] > 0 else acf


def _noise_level(shape: tuple) -> float:
    """Spread of a structureless frame's (lightly smoothed) autocorrelation at non-zero lags:
    about 1 / √(effective pixels under the Hann window), times the smoothing's reduction."""
    wy, wx = np.hanning(shape[0]), np.hanning(shape[1])
    effective = (np.sum(wy**2) * np.sum(wx**2)) ** 2 / (np.sum(wy**4) * np.sum(wx**4))
    return 0.55 / np.sqrt(effective)


def radial_percentiles(acf: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-th percentile (linear interpolation) of the autocorrelation on each circle of
    integer radius 0 … L√2."""
    L = acf.shape[0] // 2
    yy, xx = np.mgrid[-L : L + 1, -L : L + 1]
    ring_index = np.rint(np.hypot(yy, xx)).astype(np.int64).ravel()
    values = acf.ravel()
    order = np.lexsort((values, ring_index))  # by circle, then by value within it
    ordered = values[order]
    counts = np.bincount(ring_index)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    position = q / 100.0 * (counts - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, counts - 1)
    frac = position - low
    return ordered[starts + low] * (1 - frac) + ordered[starts + high] * frac


def ring_map(acf: np.ndarray) -> np.ndarray:
    """The autocorrelation minus its radially symmetric part (the 10th percentile of each circle),
    lightly smoothed: ring peaks stand out above the origin's tail and the flattening's undershoot."""
    L = acf.shape[0] // 2
    yy, xx = np.mgrid[-L : L + 1, -L : L + 1]
    base = radial_percentiles(acf, 10)
    return ndimage.gaussian_filter(acf - base[np.rint(np.hypot(yy, xx)).astype(np.int64)], 0.7)


def _peaks(acf: np.ndarray, ring: np.ndarray, r_min: float, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the autocorrelation between radii ``r_min`` and ``r_max``: offsets ``(M, 2)`` (dy, dx
    pixels, sub-pixel) and heights ``(M,)`` in the ring map, one of each ± pair.

    Peaks are found in the ring map (where weak rings stand out) but placed at the
    autocorrelation's own maximum nearby: subtracting a radius-dependent baseline
    would pull them inwards by up to a tenth of their radius.
    """
    from skimage.feature import peak_local_max

    L = ring.shape[0] // 2
    peaks = peak_local_max(ring, min_distance=2, exclude_border=True)
    if len(peaks) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    off = peaks - L
    r = np.hypot(off[:, 0], off[:, 1])
    keep = (r >= r_min) & (r <= r_max) & ((off[:, 0] > 0) | ((off[:, 0] == 0) & (off[:, 1] > 0)))
    peaks, r = peaks[keep], r[keep]
    heights = ring[tuple(peaks.T)]
    placed = peaks.astype(np.float64)
    n = acf.shape[0]
    for i, (py, px) in enumerate(peaks):
        w = int(max(2, round(0.2 * r[i])))
        y0, y1, x0, x1 = max(1, py - w), min(n - 1, py + w + 1), max(1, px - w), min(n - 1, px + w + 1)
        patch = acf[y0:y1, x0:x1]
        iy, ix = np.unravel_index(int(np.argmax(patch)), patch.shape)
        if 0 < iy < patch.shape[0] - 1 and 0 < ix < patch.shape[1] - 1:  # a maximum inside, not a slope
            placed[i] = (y0 + iy, x0 + ix)
    centre = np.rint(placed).astype(np.int64)
    for axis in (0, 1):  # sub-pixel: parabola along each axis through the peak and its two neighbours
        step = np.eye(2, dtype=np.int64)[axis]
        a, b, c = acf[tuple((centre - step).T)], acf[tuple(centre.T)], acf[tuple((centre + step).T)]
        denom = a - 2 * b + c
        with np.errstate(invalid="ignore", divide="ignore"):
            placed[:, axis] += np.where(denom < 0, np.clip(0.5 * (a - c) / denom, -0.5, 0.5), 0.0)
    return placed - L, heights


def _centred(offsets: np.ndarray, heights: np.ndarray, radius: float, angles: np.ndarray, turn: float,
             level: float) -> bool:
    """Whether the autocorrelation has peaks at ``radius`` / (2 cos ``turn``), turned ± ``turn`` from
    each of ``angles``: every atom seen on the ring then has a neighbour in between (a honeycomb
    for ``turn`` = 30°, a centred square lattice such as a perovskite's A + B columns for 45°).
    A triangular or plain square lattice has hollows there, so no peak at all."""
    inner = radius / (2.0 * np.cos(turn))
    wanted = np.sort(np.concatenate([angles + turn, angles - turn]) % np.pi)
    # the same direction reached from two ring directions counts once
    wanted = wanted[np.r_[True, np.diff(wanted) > 0.15]]
    if len(wanted) > 1 and wanted[0] + np.pi - wanted[-1] <= 0.15:
        wanted = wanted[:-1]
    r = np.hypot(offsets[:, 0], offsets[:, 1])
    direction = np.arctan2(offsets[:, 0], offsets[:, 1]) % np.pi
    # weak peaks on the slope of stronger ones are placed up to a fifth too close to the origin
    candidates = (r >= 0.75 * inner) & (r <= 1.15 * inner) & (heights >= CENTRED * level)
    found = 0
    for angle in wanted:
        gap = np.abs((direction - angle + np.pi / 2) % np.pi - np.pi / 2)
        found += bool(np.any(candidates & (gap <= np.radians(10))))
    return found >= max(2, len(wanted) - 1)


def _dominant_ring(offsets: np.ndarray, heights: np.ndarray, near: float | None = None) -> tuple[float, np.ndarray, float]:
    """Radius (pixels), peak offsets ``(n, 2)`` and mean height of the innermost strong ring of peaks.

    A crystal's autocorrelation repeats its peaks out to large lags (long-range
    order), so the ring is the innermost one whose peaks reach 60 % of the
    strongest peak anywhere, not the strongest itself. With ``near``, only
    peaks within 10 % of that radius are considered (refining a known ring).
    """
    r = np.hypot(offsets[:, 0], offsets[:, 1])
    if near is not None and np.any(np.abs(r - near) <= 0.1 * near):
        keep = np.abs(r - near) <= 0.1 * near
        offsets, heights, r = offsets[keep], heights[keep], r[keep]
    strong = np.flatnonzero(heights >= 0.6 * heights.max())
    k = strong[np.argmin(r[strong])]
    ring = (np.abs(r - r[k]) <= 0.08 * r[k]) & (heights >= 0.5 * heights[k])
    radius = float(np.sum(r[ring] * heights[ring]) / np.sum(heights[ring]))
    return radius, offsets[ring], float(np.mean(heights[ring]))


def _periodic(ring_map_: np.ndarray, ring: np.ndarray, level: float) -> bool:
    """Whether the ring's peaks repeat at twice and three times their offset, as a lattice's
    translations do; the bumps of correlated noise or amorphous material do not.

    The ring map is read in a small sector around each multiple (±8 % in radius, ±8°
    in direction): a second grain's peaks can pull the ring's own a few degrees off
    the lattice's. At least two directions (the one, for a single direction) must
    repeat at a third of the ring's height or more, and among the highest values at that radius
    (``PERIODIC_RANK``), at both multiples.
    """
    L = ring_map_.shape[0] // 2
    yy, xx = np.mgrid[-L : L + 1, -L : L + 1]
    radius = np.hypot(yy, xx)
    direction = np.arctan2(yy, xx)

    def height(v, k):
        r, th = k * np.hypot(*v), np.arctan2(v[0], v[1])
        if r * 1.08 > L:
            return 0.0  # beyond the computed lags: fewer than three periods in the frame
        gap = np.abs((direction - th + np.pi) % (2 * np.pi) - np.pi)
        annulus = np.abs(radius - r) <= 0.08 * r
        sector = annulus & (gap <= np.radians(8))
        if not sector.any():
            return 0.0
        top = float(ring_map_[sector].max())
        # a lattice's peak is among the highest values at that radius; a chance bump often is not
        return top if top >= np.percentile(ring_map_[annulus], PERIODIC_RANK) else 0.0

    scores = sorted((min(height(v, 2), height(v, 3)) / level for v in ring), reverse=True)
    if len(scores) == 1:  # one direction only (a rectangular projection, or a chance peak): stricter
        return scores[0] >= 0.6
    return scores[1] >= 0.3


def _regular(angles: np.ndarray, n: int, tol: float = 0.12) -> bool:
    """Whether the angles (over π) are ``n`` directions π/n apart, within ``tol`` radians."""
    if len(angles) != n:
        return False
    a = np.sort(angles)
    gaps = np.diff(np.r_[a, a[0] + np.pi])
    return bool(np.all(np.abs(gaps - np.pi / n) <= tol))


def _neighbours_at(image: np.ndarray, radius: float, distance: float, at_least: int) -> bool:
    """Whether most of the image's atoms have ``at_least`` neighbours at ``distance`` (± 20 %).

    Atoms here are the strong maxima of the image smoothed by 0.08 × ``radius``, at
    least 0.4 × ``radius`` apart; blurred, noisy atoms merge into ridges, so only
    some are found, hence "at least", not "all".
    """
    from scipy.spatial import cKDTree
    from skimage.feature import peak_local_max

    smooth = ndimage.gaussian_filter(image, max(0.5, 0.08 * radius))
    peaks = peak_local_max(smooth, min_distance=max(1, int(0.4 * radius)), exclude_border=True)
    if len(peaks) >= 8:
        height = smooth[tuple(peaks.T)] - np.percentile(smooth, 10)
        peaks = peaks[height > 0.5 * np.median(height)]
    if len(peaks) < 8:
        return False
    tree = cKDTree(peaks)
    count = tree.query_ball_point(peaks, 1.2 * distance, return_length=True) - \
        tree.query_ball_point(peaks, 0.8 * distance, return_length=True)
    return bool(np.mean(count >= at_least) >= 0.5)


def _spacing_and_kind(offsets: np.ndarray, heights: np.ndarray, image: np.ndarray, near: float) -> tuple[float, str]:
    """Nearest-neighbour spacing and lattice kind from the ring map's peaks.

    The strongest ring of peaks (radius R) is the most reliable measurement; the
    nearest neighbours lie on it (triangular, square lattices) or inside it: at
    R/√3, between each pair of directions, for a honeycomb; at R/√2 for a centred
    square lattice. Those are tested in the autocorrelation first; where its inner
    peaks merge with the origin's and the ring's (blurred atoms, a probe σ of a
    third of the spacing), in real space: the atoms of a honeycomb have three
    neighbours at R/√3, those of a centred square lattice four at R/√2, those of
    a triangular or plain square lattice none. For any other lattice the innermost
    autocorrelation peak at least a quarter as strong as the strongest gives the
    spacing. ``image`` is the flattened frame with atoms bright; ``near`` the ring's radius.
    """
    radius, ring, level = _dominant_ring(offsets, heights, near=near)
    angles = np.arctan2(ring[:, 0], ring[:, 1]) % np.pi
    strongest = float(heights.max())
    hexagonal, square = _regular(angles, 3), _regular(angles, 2)
    if hexagonal:
        honeycomb = _centred(offsets, heights, radius, angles, np.pi / 6, level) or \
            _neighbours_at(image, radius, radius / np.sqrt(3), 1)
        return (radius / np.sqrt(3), "honeycomb") if honeycomb else (radius, "hexagonal")
    if square:
        centred = _centred(offsets, heights, radius, angles, np.pi / 4, level) or \
            _neighbours_at(image, radius, radius / np.sqrt(2), 2)
        return (radius / np.sqrt(2), "square") if centred else (radius, "square")
    # an irregular ring (several grains, distortion): the real-space tests still tell a honeycomb or a
    # centred lattice, whose atoms have neighbours inside the ring
    if len(angles) >= 3 and _neighbours_at(image, radius, radius / np.sqrt(3), 1):
        return radius / np.sqrt(3), "honeycomb"
    if len(angles) >= 2 and _neighbours_at(image, radius, radius / np.sqrt(2), 2):
        return radius / np.sqrt(2), "square"
    r = np.hypot(offsets[:, 0], offsets[:, 1])
    inner = (heights >= 0.25 * strongest) & (r < 0.92 * radius)
    return (float(r[inner].min()) if inner.any() else radius), "unknown"


def _contrast(frame: np.ndarray, spacing: float) -> str:
    """``"bright"`` or ``"dark"`` atoms: sign of the skewness of the band-passed frame."""
    s = max(0.5, 0.15 * spacing)
    band = ndimage.gaussian_filter(frame, s) - _smooth(frame, 1.2 * spacing)
    v = band - band.mean()
    sd = v.std()
    if sd <= 0:
        return "bright"
    z = v / sd
    skew = float(np.mean(z * z * z))
    return "dark" if skew < -0.1 else "bright"


def frame_lattice(frame: np.ndarray, *, max_spacing: float | None = None) -> Lattice:
    """Estimate the lattice of one frame (see the module docstring for the method).

    Parameters
    ----------
    frame : (Y, X) array
        Raw image; NaN pixels are filled with the median.
    max_spacing : float, optional
        Largest spacing looked for, pixels (default: a quarter of the smaller
        side, at most 80 px), so that the first ring is seen several times over.

    Returns
    -------
    Lattice
    """
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim != 2:
        raise ValueError(f"frame: expected a (Y, X) image, got shape {frame.shape}")
    why = frame_is_usable(frame)
    if why:
        return Lattice(note=why)
    if min(frame.shape) < 16:
        return Lattice(note=f"the frame ({frame.shape[0]}×{frame.shape[1]} px) is too small to hold a lattice")
    largest = min(80.0, min(frame.shape) / 4.0) if max_spacing is None else float(max_spacing)
    # the usual spacings first (up to 40 px: contamination and thickness vary on larger scales and
    # would dominate a wider search), then the rest
    results = [_lattice_up_to(frame, limit) for limit in sorted({min(40.0, largest), largest})[:1]]
    if not results[0].found and largest > 40.0:
        results.append(_lattice_up_to(frame, largest))
    found = [r for r in results if r.found] or [r for r in results if r.candidate]
    return found[0] if found else results[0]


def _lattice_up_to(frame: np.ndarray, limit: float) -> Lattice:
    """:func:`frame_lattice` for spacings up to ``limit`` pixels."""
    # first pass: the innermost strong ring, for any spacing up to the limit
    first = _rings(frame, limit, 1.15 * limit * np.sqrt(3))
    if isinstance(first, str):
        return Lattice(note=first)
    radius = _dominant_ring(first[0], first[1])[0]
    # second pass: lags out to four rings, the ring refined
    period = min(2.5 * radius, limit)
    second = _rings(frame, period, 4.4 * radius, flat=first[3] if period == limit else None)
    offsets, heights, prominence, flat, ring_map_ = first if isinstance(second, str) else second
    flat_period = limit if isinstance(second, str) else period
    radius, ring, level = _dominant_ring(offsets, heights, near=radius)
    periodic = _periodic(ring_map_, ring, level) and _same_in_quadrants(
        frame, radius, ring, limit, flat if min(2.5 * radius, limit) == flat_period else None)
    contrast = _contrast(flat, radius)
    spacing, kind = _spacing_and_kind(offsets, heights, flat, radius)
    angles = np.arctan2(ring[:, 0], ring[:, 1]) % np.pi
    regular = _regular(angles, 3) or _regular(angles, 2)
    if kind == "honeycomb":
        # blurred bright atoms of a honeycomb form a network around sharp dark hollows, skewed like
        # dark atoms: which extrema have three neighbours each settles it (the one case where
        # geometry overrules the skewness; dark atoms on a close-packed lattice look the same)
        if _neighbours_at(flat, radius, spacing, 1):
            contrast = "bright"
        elif _neighbours_at(-flat, radius, spacing, 1):
            contrast = "dark"
    elif contrast == "dark":
        spacing, kind = _spacing_and_kind(offsets, heights, -flat, radius)
    if spacing > 1.15 * limit:
        return Lattice(prominence=prominence, note=f"no atom spacing below {limit:.0f} px (the frame is too small "
                       "for more periods, or the contrast is not atomic)")
    if not periodic:  # a candidate only: detection can still confirm it (see detect_atoms)
        return Lattice(spacing=spacing, kind=kind, contrast=contrast, prominence=prominence, frames=[spacing],
                       note="no periodic atom contrast (the autocorrelation's peaks do not repeat across the frame)")
    return Lattice(spacing=spacing, kind=kind, contrast=contrast, prominence=prominence, found=True,
                   frames=[spacing], regular=regular)


def _same_in_quadrants(frame: np.ndarray, radius: float, ring: np.ndarray, limit: float,
                       flat: np.ndarray | None = None) -> bool:
    """Whether the frame's quadrants show the same strongest ring (radius within 8 %, or its
    honeycomb / centred inner ring; and, for a ring of one direction, that direction within 10°): a lattice is the same everywhere, the
    chance peaks of correlated noise are not. Quadrants without a ring (a hole, vacuum) abstain;
    at most one may disagree and at least two must agree. Frames with fewer than three lattice
    periods per quadrant pass. ``flat``: the whole frame already flattened for the quadrants' period
    (cut into quadrants instead of flattening each)."""
    half = (frame.shape[0] // 2, frame.shape[1] // 2)
    if min(half) < 3 * radius:
        return True
    direction = np.arctan2(ring[0, 0], ring[0, 1]) % np.pi
    agree = voted = 0
    for qy in (0, half[0]):
        for qx in (0, half[1]):
            quadrant = (slice(qy, qy + half[0]), slice(qx, qx + half[1]))
            found = _rings(frame[quadrant], min(2.5 * radius, limit), 1.3 * radius,
                           flat=None if flat is None else flat[quadrant])
            if isinstance(found, str):
                continue
            voted += 1
            r_q, ring_q, _ = _dominant_ring(found[0], found[1])
            # a quadrant may see the nearest neighbours of a honeycomb / centred lattice as its ring
            same = any(abs(r_q - radius * k) <= 0.08 * radius * k for k in (1.0, 1 / np.sqrt(3), 1 / np.sqrt(2)))
            if same and len(ring) == 1:
                gaps = np.abs((np.arctan2(ring_q[:, 0], ring_q[:, 1]) - direction + np.pi / 2) % np.pi - np.pi / 2)
                same = bool(np.any(gaps <= np.radians(10)))
            agree += same
    return agree >= 2 and agree >= voted - 1


def _rings(frame: np.ndarray, period: float, search: float, flat: np.ndarray | None = None):
    """Autocorrelation peaks of ``frame`` flattened for periods up to ``period`` pixels, out to
    ``search`` pixels: ``(offsets, heights, prominence, flattened frame, ring map)``, or why there are none.
    ``flat``: the frame already flattened for ``period``."""
    flat = _flatten(frame, period) if flat is None else flat
    if not np.any(flat):
        return "the frame has no contrast at atomic scale"
    L = min(int(np.ceil(search)) + 3, min(frame.shape) - 1)
    acf = autocorrelation(flat, L)
    noise = _noise_level(flat.shape)
    r = np.hypot(*np.mgrid[-L : L + 1, -L : L + 1])
    top = float(acf[(r > 0) & (r <= 1.5)].max())  # correlated signal just off the origin (white noise is at lag 0)
    if top < 5.0 * noise:
        return "the frame looks like noise (no correlated structure)"
    # skip the origin's own peak: start where the autocorrelation has fallen to half of ``top`` around the circle
    below = np.flatnonzero(radial_percentiles(acf, 50)[1:] < top / 2.0)
    r_min = max(MIN_SPACING, float(below[0] + 1) if len(below) else 1.0)
    ring = ring_map(acf)
    offsets, heights = _peaks(acf, ring, r_min, search)
    strongest = float(heights.max()) if len(heights) else 0.0
    if strongest < max(MIN_PROMINENCE * top, 5.0 * noise):
        return "no periodic atom contrast (the autocorrelation has no ring of peaks)"
    return offsets, heights, min(1.0, strongest / top), flat, ring


def estimate_lattice(movie, *, max_spacing: float | None = None, max_frames: int = 8, agree: int = 2) -> Lattice:
    """The lattice of a movie: the median over up to ``max_frames`` evenly spaced frames.

    The middle, first and last of them come first; the search stops as soon as
    ``agree`` frames show the same lattice (kind and contrast, spacing within
    5 %), since the spacing changes little over a movie. Frames without a
    lattice (blank, out of focus) or disagreeing ones make it look further.
    A tie between kinds (or contrasts) goes to the frame analysed first, so the
    estimate is the same in every process.

    Parameters
    ----------
    movie : (T, Y, X) or (Y, X) array
    max_spacing : float, optional
        Largest spacing looked for, pixels (see :func:`frame_lattice`).
    max_frames : int
        Most frames analysed (evenly spaced).
    agree : int
        Frames that must agree before the search stops early (``max_frames``: never).

    Returns
    -------
    Lattice
        ``found`` is False when no analysed frame shows a lattice; ``frames``
        lists the spacings of the analysed frames (NaN where none was found).
    """
    data = lazy_movie(movie)
    picks = np.unique(np.linspace(0, data.shape[0] - 1, min(max_frames, data.shape[0])).round().astype(int))
    order = list(dict.fromkeys([picks[len(picks) // 2], picks[0], picks[-1], *picks]))
    results, analysed = [], []
    for t in order:
        analysed.append(int(t))
        results.append(frame_lattice(as_movie(data[t])[0], max_spacing=max_spacing))
        found = [r for r in results if r.found]
        if len(found) >= max(1, agree) and _consistent(found):
            break
    good = [res for res in results if res.found]
    spacings = [res.spacing if res.found else float("nan") for res in results]
    if not good:
        candidates = [res for res in results if res.candidate]
        if not candidates:
            return Lattice(frames=spacings, analysed=analysed, note=results[0].note,
                           prominence=max(r.prominence for r in results))
        kinds = [res.kind for res in candidates]
        contrasts = [res.contrast for res in candidates]
        return Lattice(spacing=float(np.median([r.spacing for r in candidates])),
                       kind=max(dict.fromkeys(kinds), key=kinds.count),  # ties: the first frame analysed
                       contrast=max(dict.fromkeys(contrasts), key=contrasts.count), frames=spacings, analysed=analysed,
                       note=candidates[0].note,
                       prominence=max(r.prominence for r in results))
    spacing = float(np.median([res.spacing for res in good]))
    kinds = [res.kind for res in good]
    kind = max(dict.fromkeys(kinds), key=kinds.count)
    contrasts = [res.contrast for res in good]
    contrast = max(dict.fromkeys(contrasts), key=contrasts.count)
    spread = np.ptp([res.spacing for res in good]) / spacing if len(good) > 1 else 0.0
    note = f"spacing varies by {100 * spread:.0f} % between frames" if spread > 0.1 else ""
    return Lattice(spacing=spacing, kind=kind, contrast=contrast, prominence=float(np.median([r.prominence for r in good])),
                   found=True, frames=spacings, analysed=analysed, note=note, regular=any(r.regular for r in good))


def _consistent(results: list[Lattice]) -> bool:
    """Whether frame lattices agree: one kind, one contrast, spacings within 5 % of their median."""
    spacings = np.array([r.spacing for r in results])
    return (len({r.kind for r in results}) == 1 and len({r.contrast for r in results}) == 1
            and bool(np.all(np.abs(spacings / np.median(spacings) - 1.0) <= 0.05)))


def as_detected(detected, estimate: Lattice | None) -> Lattice | None:
    """The lattice detection settled on: the estimate, updated where the atoms found revealed a finer
    lattice (a honeycomb's atoms between those the autocorrelation saw: spacing 30 → 17 px on a real
    TMD image). Every default that follows the spacing (window size, bond length, the angle's
    symmetry) must come from this one. ``detected``: the sites (their ``attrs["detection"]``) or that
    detection record itself; ``estimate`` when there is no record."""
    record = detected if isinstance(detected, dict) else (getattr(detected, "attrs", None) or {}).get("detection")
    return Lattice.from_dict((record or {}).get("lattice")) or estimate


def scale_defaults(spacing: float) -> dict:
    """Every scale-dependent default of the pipeline, from the nearest-neighbour spacing (pixels).

    ``sigma``: peak-finding smoothing (about an atom's σ); ``min_distance``: smallest
    peak separation; ``intensity_radius``: disc of the integrated intensity;
    ``rescale``: the segmenter's input rescale to its training scale; ``window``:
    window side for the VAE (even, two spacings: an atom and its nearest neighbours, as
    the 24 px windows paper 001 cut around graphene atoms 12 px apart; 16–64 px);
    ``bond_length``: for rings; ``chemistry_window``: window side for the latent chemistry
    map (paper 000: the rings through the centre atom reach two spacings from it, so five
    spacings, as its 70 px windows; even, 24–128 px).
    """
    d = float(spacing)
    if not (np.isfinite(d) and d > 0):
        raise ValueError(f"spacing: must be a positive number of pixels, got {spacing}")
    window = int(np.clip(2 * round(d), 16, 64))
    chemistry = int(np.clip(2 * round(2.5 * d), 24, 128))
    return {"spacing": round(d, 3), "sigma": round(max(0.7, 0.2 * d), 3), "min_distance": round(max(2.0, 0.55 * d), 3),
            "intensity_radius": round(max(1.5, 0.3 * d), 3), "rescale": round(CANONICAL_SPACING / d, 4),
            "window": window, "bond_length": round(d, 3), "chemistry_window": chemistry}
