"""Round columns: measure and compensate a probe astigmatism (elliptical columns).

In a STEM image every atomic column is the probe's shape placed at the column.
When the probe is astigmatic (or the sample slightly tilted) every column is
the same ellipse, fixed in the lab frame whatever the structure around it.
An rVAE explains differences between windows by rotating them; an ellipse
that does not turn with the structure stops a rotation from mapping one
rotational variant onto the next (the angle peaks of the ferroic sample move
by up to 0.2 rad off their π/2 spacing).

Compensation, without touching the lattice geometry (an affine stretch would
break its 90° relations): each column is fitted with an elliptical Gaussian,
giving its covariance ``C`` (pixels²); the ellipse axes ``m`` (major) and
``n`` (minor) come from the mean covariance; the extra variance
``d = mᵀCm − nᵀCn`` that the minor axis lacks is fitted as a smooth
(quadratic) surface over the field of view; then each frame is blurred by a
1-D Gaussian of variance ``d(y, x)`` along ``n``. Gaussian variances add, so
the columns come out round with width ``σ_major`` and stay where they were.

Everything here is numpy / scipy / scikit-image; no Qt.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

BOX_FACTOR = 3.0  # fit-disc radius in units of the rough column width
MIN_FRAME = 16  # pixels per side below which column shapes are not measured
MIN_COLUMNS = 10  # fitted columns needed for a correction
MIN_SURFACE_COLUMNS = 60  # fewer: a constant extra variance instead of a quadratic surface
MIN_ELLIPTICITY = 0.01  # below this the columns count as round (no correction)
VARIANCE_STEP = 0.25  # pixels²: spacing of the blur levels interpolated across the field


def _frame_indices(n_frames: int, max_frames: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, max(1, int(max_frames)))).round().astype(int))


def _filled(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame as float64 with non-finite pixels set to the finite mean, and the mask of those pixels."""
    frame = np.asarray(frame, dtype=np.float64)
    bad = ~np.isfinite(frame)
    if bad.any():
        frame = np.where(bad, np.nanmean(frame) if (~bad).any() else 0.0, frame)
    return frame, bad


def column_scale(frame: np.ndarray) -> float:
    """Rough column width σ (pixels) from the image autocorrelation's central peak.

    The autocorrelation of a sum of Gaussian spots of width σ has a central
    peak of width √2·σ wherever the spots sit; its half height (lag 0, which
    holds the noise, excluded) gives σ. Lattice cross terms make it an
    underestimate of ~20 %: it only sizes the boxes the columns are fitted in.
    """
    f, _ = _filled(frame)
    cy, cx = f.shape[0] // 2, f.shape[1] // 2
    f = f[max(0, cy - 256):cy + 256, max(0, cx - 256):cx + 256]  # a 512² crop is plenty for a width
    f = f - f.mean()
    ny, nx = f.shape
    power = np.abs(np.fft.rfft2(f, s=(2 * ny, 2 * nx))) ** 2
    ac = np.fft.fftshift(np.fft.irfft2(power, s=(2 * ny, 2 * nx)))
    cy, cx = ny, nx
    reach = min(ny, nx) // 2
    yy, xx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    r = np.rint(np.hypot(yy, xx)).astype(int)
    profile = np.bincount(r.ravel(), ac[cy - reach:cy + reach + 1, cx - reach:cx + reach + 1].ravel())
    profile = profile / np.bincount(r.ravel())
    p1 = profile[1]
    if not p1 > 0:
        return 1.0
    below = np.flatnonzero(profile[1:reach] <= p1 / 2)
    if below.size == 0:
        return max(1.0, reach / 3)
    k = int(below[0]) + 1  # first radius at or below half height; interpolate from k - 1
    r_half = k - 1 + (profile[k - 1] - p1 / 2) / max(profile[k - 1] - profile[k], 1e-12) if k > 1 else 1.0
    return float(np.clip(np.sqrt(max(r_half**2 - 1, 0.25) / (4 * np.log(2))), 0.5, reach / 3))


def _fit_ellipses(boxes: np.ndarray, weights: np.ndarray, sigma: float, iterations: int = 12,
                  start: np.ndarray | None = None) -> np.ndarray:
    """Batched Levenberg–Marquardt fit of ``B + A exp(-½ dᵀ P d)`` to ``(N, b, b)`` boxes.

    Returns ``(N, 8)``: ``A, y0, x0, Pyy, Pyx, Pxx, B, rms`` (offsets from the box centre, pixels;
    ``P`` is the inverse covariance, 1/pixels²; ``rms`` the residual RMS).
    """
    n, b, _ = boxes.shape
    h = (b - 1) // 2
    offs = np.arange(-h, h + 1, dtype=np.float64)
    gy, gx = np.meshgrid(offs, offs, indexing="ij")
    gy, gx = gy.ravel(), gx.ravel()
    data = boxes.reshape(n, -1)
    w = weights.reshape(n, -1)
    lo = np.where(w > 0, data, np.inf).min(1)
    hi = np.where(w > 0, data, -np.inf).max(1)
    p = np.zeros((n, 7))
    p[:, 0], p[:, 6] = hi - lo, lo
    p[:, 3] = p[:, 5] = 1.0 / sigma**2
    if start is not None:
        p[:] = start[:, :7]
    damping = np.full(n, 1e-2)

    def evaluate(p):
        dy, dx = gy[None] - p[:, 1:2], gx[None] - p[:, 2:3]
        g = np.exp(-0.5 * np.clip(p[:, 3:4] * dy**2 + 2 * p[:, 4:5] * dy * dx + p[:, 5:6] * dx**2, 0, 700))
        model = p[:, 6:7] + p[:, 0:1] * g
        return model, g, dy, dx

    def cost(model):
        return (w * (data - model) ** 2).sum(1)

    model, g, dy, dx = evaluate(p)
    current = cost(model)
    for _ in range(iterations):
        ag = p[:, 0:1] * g
        jac = np.stack([
            g, ag * (p[:, 3:4] * dy + p[:, 4:5] * dx), ag * (p[:, 4:5] * dy + p[:, 5:6] * dx),
            -0.5 * ag * dy**2, -ag * dy * dx, -0.5 * ag * dx**2, np.ones_like(g),
        ], axis=2)
        jw = jac * w[:, :, None]
        lhs = np.einsum("npi,npj->nij", jw, jac)
        rhs = np.einsum("npi,np->ni", jw, data - model)
        diag = np.einsum("nii->ni", lhs)
        lhs = lhs + (damping[:, None] * (diag + 1e-12))[:, :, None] * np.eye(7)[None]
        try:
            step = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(m, r, rcond=None)[0] for m, r in zip(lhs, rhs)])
        trial = p + step
        positive = (trial[:, 3] > 0) & (trial[:, 5] > 0) & (trial[:, 3] * trial[:, 5] > trial[:, 4] ** 2)
        t_model, t_g, t_dy, t_dx = evaluate(trial)
        better = positive & (cost(t_model) < current)
        p[better] = trial[better]
        model[better], g[better], dy[better], dx[better] = t_model[better], t_g[better], t_dy[better], t_dx[better]
        current = np.where(better, cost(model), current)
        damping = np.where(better, damping / 3, damping * 4)
    rms = np.sqrt(current / np.maximum(w.sum(1), 1))
    return np.c_[p, rms]


def _plausible(fit: np.ndarray, weights: np.ndarray, disc: np.ndarray, h: int) -> np.ndarray:
    """Fits worth keeping: a real peak (amplitude > 3 × residual RMS) near the box centre, widths
    between 0.3 px and the box radius, and at most 20 % of the disc's pixels missing."""
    det = fit[:, 3] * fit[:, 5] - fit[:, 4] ** 2
    ok = (det > 0) & (fit[:, 3] > 0) & (fit[:, 0] > 3 * fit[:, 7]) & (np.hypot(fit[:, 1], fit[:, 2]) < h / 2)
    ok &= weights.reshape(len(weights), -1).sum(1) >= 0.8 * disc.sum()
    prec = np.stack([np.stack([fit[:, 3], fit[:, 4]], 1), np.stack([fit[:, 4], fit[:, 5]], 1)], 1)
    eig = np.linalg.eigvalsh(np.linalg.inv(np.where(ok[:, None, None], prec, np.eye(2)[None])))
    return ok & (eig[:, 0] > 0.09) & (eig[:, 1] < h**2)


def _spots(fit: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """``(N, b, b)`` fitted Gaussians (no background) on pixel offsets ``offs`` from each box centre."""
    dy = offs[None, :, None] - fit[:, 1, None, None]
    dx = offs[None, None, :] - fit[:, 2, None, None]
    q = fit[:, 3, None, None] * dy**2 + 2 * fit[:, 4, None, None] * dy * dx + fit[:, 5, None, None] * dx**2
    return fit[:, 0, None, None] * np.exp(-0.5 * np.clip(q, 0, 700))


def _neighbour_tails(shape, peaks: np.ndarray, fit: np.ndarray, ok: np.ndarray, h: int) -> np.ndarray:
    """Image of every plausible fitted column (its Gaussian without background, out to ``2 h`` pixels)."""
    image = np.zeros(shape)
    offs = np.arange(-2 * h, 2 * h + 1)
    chosen = np.flatnonzero(ok)
    step = max(1, 2**20 // offs.size**2)  # bounded temporaries
    for start in range(0, len(chosen), step):
        sel = chosen[start:start + step]
        spots = _spots(fit[sel], offs.astype(np.float64))
        rr = np.broadcast_to(peaks[sel, 0, None, None] + offs[None, :, None], spots.shape)
        cc = np.broadcast_to(peaks[sel, 1, None, None] + offs[None, None, :], spots.shape)
        inside = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        image += np.bincount((rr * shape[1] + cc)[inside], spots[inside], minlength=image.size).reshape(shape)
    return image


def measure_columns(movie, *, column_sigma: float | None = None, max_frames: int = 4,
                    max_columns: int = 3000, seed: int = 0) -> dict:
    """Fit an elliptical Gaussian to the bright columns of a few frames.

    Parameters
    ----------
    movie : array (T, Y, X) or (Y, X)
        Raw images (bright columns on a darker background, e.g. HAADF).
    column_sigma : float, optional
        Approximate column width σ in pixels (default: from the autocorrelation,
        :func:`column_scale`); it sets the fit disc (radius ``max(3, 3 σ)``).
    max_frames : int
        Frames (evenly spaced) the columns are measured on.
    max_columns : int
        At most this many columns per frame (a seeded random subset).

    Returns
    -------
    dict
        ``y, x`` (pixels), ``cov`` ``(N, 2, 2)`` covariance in (row, column) pixels²,
        ``amplitude``, ``frame_shape`` ``(Y, X)``, ``column_sigma`` (the scale used).
    """
    from skimage.feature import peak_local_max

    data = movie if (hasattr(movie, "shape") and hasattr(movie, "__getitem__")) else np.asarray(movie)
    if len(data.shape) == 2:
        data = np.asarray(data)[None]
    if len(data.shape) != 3:
        raise ValueError(f"movie: expected shape (T, Y, X) or (Y, X), got {tuple(data.shape)}")
    ny, nx = int(data.shape[1]), int(data.shape[2])
    if min(ny, nx) < MIN_FRAME:
        raise ValueError(f"round columns: frames of {ny}×{nx} pixels are too small to measure column shapes "
                         f"(need at least {MIN_FRAME}×{MIN_FRAME})")
    if column_sigma is not None and not float(column_sigma) > 0:
        raise ValueError(f"column_sigma must be a positive width in pixels, got {column_sigma}")
    rng = np.random.default_rng(seed)
    ys, xs, covs, amps, scales = [], [], [], [], []
    for t in _frame_indices(int(data.shape[0]), max_frames):
        raw = np.asarray(data[int(t)], dtype=np.float64)
        if not np.isfinite(raw).any():
            continue
        sigma = float(column_sigma) if column_sigma is not None else column_scale(raw)
        scales.append(sigma)
        h = max(3, int(np.ceil(BOX_FACTOR * sigma)))
        if min(ny, nx) < 2 * h + 3:
            continue
        frame, bad = _filled(raw)
        smooth = ndimage.gaussian_filter(frame, sigma / 2) - ndimage.gaussian_filter(frame, 4 * sigma)
        peaks = peak_local_max(smooth, min_distance=max(2, int(round(1.5 * sigma))), exclude_border=h + 1,
                               threshold_abs=0.0)
        if len(peaks) > max_columns:
            peaks = peaks[rng.choice(len(peaks), int(max_columns), replace=False)]
        if len(peaks) == 0:
            continue
        offs = np.arange(-h, h + 1)
        rows, cols = peaks[:, 0, None] + offs, peaks[:, 1, None] + offs
        boxes = frame[rows[:, :, None], cols[:, None, :]]
        disc = (offs[:, None] ** 2 + offs[None, :] ** 2) <= h * h  # keeps neighbouring columns out
        weights = np.where(bad[rows[:, :, None], cols[:, None, :]], 0.0, 1.0) * disc
        chunks = [slice(i, i + max(1, 2**18 // disc.size)) for i in range(0, len(peaks), max(1, 2**18 // disc.size))]
        fit = np.concatenate([_fit_ellipses(boxes[c], weights[c], sigma) for c in chunks])
        ok = _plausible(fit, weights, disc, h)
        # second pass: the tails of neighbouring columns (fitted in the first) are taken out of each box
        others = _neighbour_tails(frame.shape, peaks, fit, ok, h)[rows[:, :, None], cols[:, None, :]]
        others -= np.where(ok[:, None, None], _spots(fit, np.arange(-h, h + 1.0)), 0.0)
        fit = np.concatenate([_fit_ellipses(boxes[c] - others[c], weights[c], sigma, start=fit[c]) for c in chunks])
        ok = _plausible(fit, weights, disc, h)
        prec = np.stack([np.stack([fit[:, 3], fit[:, 4]], 1), np.stack([fit[:, 4], fit[:, 5]], 1)], 1)
        cov = np.linalg.inv(np.where(ok[:, None, None], prec, np.eye(2)[None]))
        ys.append(peaks[ok, 0] + fit[ok, 1])
        xs.append(peaks[ok, 1] + fit[ok, 2])
        covs.append(cov[ok])
        amps.append(fit[ok, 0])
    cat = (lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape))
    return {"y": cat(ys, (0,)), "x": cat(xs, (0,)), "cov": cat(covs, (0, 2, 2)), "amplitude": cat(amps, (0,)),
            "frame_shape": (ny, nx), "column_sigma": float(np.median(scales)) if scales else float("nan")}


def _surface_terms(y, x, shape) -> np.ndarray:
    u = np.asarray(y, dtype=np.float64) / shape[0] - 0.5
    v = np.asarray(x, dtype=np.float64) / shape[1] - 0.5
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def estimate_astigmatism(movie, *, column_sigma: float | None = None, max_frames: int = 4, seed: int = 0) -> dict:
    """Measure the columns' ellipticity and the correction that makes them round.

    Parameters
    ----------
    movie : array (T, Y, X) or (Y, X)
        Raw images.
    column_sigma : float, optional
        Approximate column width σ (pixels); see :func:`measure_columns`.
    max_frames : int
        Frames the columns are measured on (evenly spaced).

    Returns
    -------
    dict
        The correction (JSON-ready, stored in a window recipe):
        ``applied`` (bool), ``orientation`` (radians, counter-clockwise from +x
        with y up: the columns' long axis), ``sigma_major``, ``sigma_minor``
        (pixels, median over columns), ``ellipticity`` (``e`` with
        ``σ_major/σ_minor = (1 + e)²``), ``coefficients`` of the quadratic
        surface ``d(y, x)`` (pixels², extra variance along the short axis;
        terms ``1, u, v, u², uv, v²`` with ``u = y/Y − ½``, ``v = x/X − ½``),
        ``variance_range`` (the fitted ``d`` is clipped to it), ``frame_shape``,
        ``columns`` (how many were fitted) and ``message``.
    """
    found = measure_columns(movie, column_sigma=column_sigma, max_frames=max_frames, seed=seed)
    n = len(found["y"])
    result = {"applied": False, "orientation": 0.0, "sigma_major": None, "sigma_minor": None,
              "ellipticity": 0.0, "coefficients": [0.0] * 6, "variance_range": [0.0, 0.0],
              "frame_shape": [int(v) for v in found["frame_shape"]], "columns": int(n)}
    if n < MIN_COLUMNS:
        result["message"] = (f"round columns: only {n} columns could be fitted (need {MIN_COLUMNS}); "
                             "windows are cut without the correction")
        return result
    cov, amp = found["cov"], found["amplitude"]
    mean = np.average(cov, axis=0, weights=amp)
    eig, vec = np.linalg.eigh(mean)
    major, minor = vec[:, 1], vec[:, 0]  # (row, column) unit vectors
    var_major = np.einsum("i,nij,j->n", major, cov, major)
    var_minor = np.einsum("i,nij,j->n", minor, cov, minor)
    s_major, s_minor = float(np.sqrt(np.median(var_major))), float(np.sqrt(np.median(var_minor)))
    ellipticity = float(np.sqrt(s_major / s_minor) - 1)
    result.update(orientation=float(np.arctan2(-major[0], major[1]) % np.pi), sigma_major=s_major,
                  sigma_minor=s_minor, ellipticity=ellipticity)
    if ellipticity < MIN_ELLIPTICITY:
        result["message"] = f"round columns: columns are already round (ellipticity {ellipticity:.3f}); no correction"
        return result
    extra = var_major - var_minor
    terms = _surface_terms(found["y"], found["x"], found["frame_shape"])
    if n < MIN_SURFACE_COLUMNS:  # too few for a surface: one extra variance for the whole field
        terms = terms * (np.arange(6) == 0)
    keep = np.ones(n, bool)
    for _ in range(3):  # weighted least squares, dropping outliers beyond 3 robust deviations
        sw = np.sqrt(amp[keep])
        coef = np.linalg.lstsq(terms[keep] * sw[:, None], extra[keep] * sw, rcond=None)[0]
        resid = extra - terms @ coef
        spread = 1.4826 * np.median(np.abs(resid[keep])) + 1e-12
        if (np.abs(resid) < 3 * spread).sum() < MIN_COLUMNS:
            break
        keep = np.abs(resid) < 3 * spread
    fitted = terms[keep] @ coef
    low, high = max(0.0, float(np.percentile(fitted, 1))), max(0.0, float(np.percentile(fitted, 99)))
    result.update(applied=high > 0, coefficients=[float(c) for c in coef], variance_range=[low, high],
                  message=(f"round columns: ellipticity {ellipticity:.3f} at {np.degrees(result['orientation']):.0f}° "
                           f"from {n} columns; extra blur variance {low:.2f}–{high:.2f} px² across the field"))
    return result


def extra_variance(correction: dict, shape) -> np.ndarray:
    """The correction's extra variance ``d(y, x)`` (pixels²) on a ``(Y, X)`` pixel grid (clipped to its range)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    lo, hi = correction["variance_range"]
    return np.clip(_surface_terms(yy, xx, correction["frame_shape"]) @ np.asarray(correction["coefficients"]), lo, hi)


def blur_along(frame: np.ndarray, sigma: float, direction: float) -> np.ndarray:
    """1-D Gaussian blur of ``sigma`` pixels along ``direction`` (radians, counter-clockwise from +x, y up).

    Computed in Fourier space on a reflect-padded frame; returns float64.
    """
    f = np.asarray(frame, dtype=np.float64)
    if sigma <= 0:
        return f.copy()
    pad = int(np.ceil(4 * sigma)) + 1
    g = np.pad(f, pad, mode="reflect")
    ky = np.fft.fftfreq(g.shape[0])[:, None]
    kx = np.fft.rfftfreq(g.shape[1])[None, :]
    along = -ky * np.sin(direction) + kx * np.cos(direction)  # the direction is (−sin, cos) in (row, column)
    out = np.fft.irfft2(np.fft.rfft2(g) * np.exp(-2 * (np.pi * sigma * along) ** 2), s=g.shape)
    return out[pad:pad + f.shape[0], pad:pad + f.shape[1]]


def round_frame(frame: np.ndarray, correction: dict) -> np.ndarray:
    """Apply a correction from :func:`estimate_astigmatism` to one ``(Y, X)`` frame (float32 out).

    The blur variance varies across the frame: the frame is blurred at a few
    variances (``VARIANCE_STEP`` apart) and each pixel interpolates linearly
    between the two nearest, which gives it exactly its own extra variance.
    Non-finite pixels stay non-finite (and do not spread).
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"frame: expected a (Y, X) image, got shape {frame.shape}")
    if not correction.get("applied", False):
        return frame.astype(np.float32, copy=True)
    filled, bad = _filled(frame)
    direction = float(correction["orientation"]) + np.pi / 2  # blur along the short axis
    lo, hi = (float(v) for v in correction["variance_range"])
    levels = np.linspace(lo, hi, max(2, int(np.ceil((hi - lo) / VARIANCE_STEP)) + 1))
    if hi - lo <= 1e-9:
        out = blur_along(filled, np.sqrt(lo), direction)
    else:
        pos = (extra_variance(correction, frame.shape) - lo) / (hi - lo) * (len(levels) - 1)
        out = np.zeros(frame.shape)
        for k, v in enumerate(levels):  # linear interpolation between neighbouring levels (hat weights)
            weight = np.clip(1 - np.abs(pos - k), 0, None)
            if weight.any():
                out += weight * blur_along(filled, np.sqrt(v), direction)
    out[bad] = np.nan
    return out.astype(np.float32)


class RoundedMovie:
    """A movie whose frames are corrected by :func:`round_frame` when read (``movie[t]``), one at a time."""

    def __init__(self, movie, correction: dict):
        self._movie = movie
        self.correction = correction
        self.shape = tuple(movie.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t):
        if not isinstance(t, (int, np.integer)):
            raise TypeError("RoundedMovie is read one frame at a time: movie[t]")
        return round_frame(np.asarray(self._movie[int(t)]), self.correction)


def round_columns(movie, correction: dict | None = None, **options):
    """Movie with round columns: ``(rounded_movie, correction)``.

    ``correction`` (from :func:`estimate_astigmatism` or a stored window
    recipe) is measured on ``movie`` when not given (``options`` go to the
    estimator); a correction that could not be measured, or found the columns
    already round, is reported with a warning and leaves the movie unchanged.
    The returned movie is read lazily, frame by frame.
    """
    data = movie if (hasattr(movie, "shape") and hasattr(movie, "__getitem__")) else np.asarray(movie)
    if len(data.shape) == 2:
        data = np.asarray(data)[None]
    if correction is None:
        correction = estimate_astigmatism(data, **options)
        if not correction["applied"]:
            warnings.warn(correction["message"], stacklevel=2)
    for key in ("applied", "orientation", "coefficients", "variance_range", "frame_shape"):
        if key not in correction:
            raise ValueError(f"round columns: the correction lacks {key!r}; use estimate_astigmatism()")
    return RoundedMovie(data, correction), correction
