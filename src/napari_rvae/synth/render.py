"""Rendering primitives shared by every synthetic generator (numpy only).

Atoms (or columns) are 2D Gaussian spots at sub-pixel positions ``(y, x)`` in
pixels. Rendering adds each spot only inside a small box around it, so a
512² frame with a few thousand atoms renders in milliseconds.
"""

from __future__ import annotations

import numpy as np


def render_spots(
    shape: tuple[int, int],
    positions: np.ndarray,
    amplitudes: np.ndarray | float = 1.0,
    sigma: np.ndarray | float = 1.5,
    *,
    ellipticity: np.ndarray | float = 0.0,
    orientation: np.ndarray | float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of Gaussian spots.

    Parameters
    ----------
    shape : (Y, X)
        Image shape in pixels.
    positions : (N, 2) array
        Spot centres ``(y, x)`` in pixels (sub-pixel allowed).
    amplitudes, sigma : float or (N,) array
        Peak height and width (pixels) of each spot.
    ellipticity : float or (N,) array
        ``0`` for round spots; ``e`` stretches one axis by ``1 + e`` and
        squeezes the other by ``1 / (1 + e)``.
    orientation : float or (N,) array
        Angle (radians) of the stretched axis, counter-clockwise from +x.
    out : (Y, X) float64 array, optional
        Accumulate into this image instead of a new one.

    Returns
    -------
    image : (Y, X) float64
    """
    Y, X = int(shape[0]), int(shape[1])
    image = np.zeros((Y, X), dtype=np.float64) if out is None else out
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    n = len(positions)
    if n == 0:
        return image
    amp = np.broadcast_to(np.asarray(amplitudes, dtype=np.float64), (n,))
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n,))
    ell = np.broadcast_to(np.asarray(ellipticity, dtype=np.float64), (n,))
    ori = np.broadcast_to(np.asarray(orientation, dtype=np.float64), (n,))
    half = int(np.ceil(4.0 * float(sig.max()) * (1.0 + float(np.abs(ell).max()))))
    offs = np.arange(-half, half + 1)
    # Integer box corner per spot; pixel offsets relative to the true centre.
    cy = np.rint(positions[:, 0]).astype(np.int64)
    cx = np.rint(positions[:, 1]).astype(np.int64)
    dy = (cy[:, None] + offs[None, :]) - positions[:, 0:1]  # (n, b)
    dx = (cx[:, None] + offs[None, :]) - positions[:, 1:2]
    round_spots = np.all(ell == 0)
    if round_spots:
        # Separable: exp(-(dy²+dx²)/2σ²) = gy ⊗ gx
        inv = 1.0 / (2.0 * sig**2)
        gy = np.exp(-(dy**2) * inv[:, None]) * amp[:, None]
        gx = np.exp(-(dx**2) * inv[:, None])
        boxes = gy[:, :, None] * gx[:, None, :]
    else:
        s_major = sig * (1.0 + ell)
        s_minor = sig / (1.0 + ell)
        c, s = np.cos(ori), np.sin(ori)
        DY = dy[:, :, None]
        DX = dx[:, None, :]
        u = DX * c[:, None, None] + (-DY) * s[:, None, None]  # along the stretched axis (y points down)
        v = -DX * s[:, None, None] + (-DY) * c[:, None, None]
        boxes = amp[:, None, None] * np.exp(
            -(u**2) / (2 * s_major[:, None, None] ** 2) - v**2 / (2 * s_minor[:, None, None] ** 2)
        )
    rows = cy[:, None] + offs[None, :]
    cols = cx[:, None] + offs[None, :]
    inside_r = (rows >= 0) & (rows < Y)
    inside_c = (cols >= 0) & (cols < X)
    keep = inside_r[:, :, None] & inside_c[:, None, :]
    rr = np.broadcast_to(rows[:, :, None], boxes.shape)[keep]
    cc = np.broadcast_to(cols[:, None, :], boxes.shape)[keep]
    flat = rr * X + cc
    image += np.bincount(flat, weights=boxes[keep], minlength=Y * X).reshape(Y, X)
    return image


def add_noise(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    dose: float | None = None,
    read_noise: float = 0.0,
) -> np.ndarray:
    """Detector noise: Poisson counts at ``dose`` counts per unit intensity, then Gaussian read noise.

    ``dose=None`` skips shot noise. Returns a new float64 image in the input's
    intensity units.
    """
    out = np.asarray(image, dtype=np.float64)
    if dose is not None:
        if dose <= 0:
            raise ValueError(f"dose must be positive, got {dose}")
        out = rng.poisson(np.clip(out, 0, None) * dose).astype(np.float64) / dose
    if read_noise > 0:
        out = out + rng.normal(0.0, read_noise, out.shape)
    return out


def scan_jitter(image: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Shift each scan line (row) by a random sub-pixel offset (pixels, std ``amplitude``).

    Mimics STEM scan-line noise; linear interpolation along x.
    """
    if amplitude <= 0:
        return np.asarray(image, dtype=np.float64)
    Y, X = image.shape
    shifts = rng.normal(0.0, amplitude, Y)
    cols = np.arange(X, dtype=np.float64)
    out = np.empty((Y, X), dtype=np.float64)
    for r in range(Y):
        out[r] = np.interp(cols - shifts[r], cols, image[r])
    return out


def normalise01(image: np.ndarray) -> np.ndarray:
    """Min–max scale to [0, 1] (a constant image becomes zeros)."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image)
    return (image - lo) / (hi - lo)


def blobs(shape: tuple[int, int], rng: np.random.Generator, n: int, radius_range: tuple[float, float],
          harmonics: tuple = ((3, 0.25), (5, 0.15))) -> np.ndarray:
    """Union of ``n`` wobbly discs (boolean ``(Y, X)`` mask): random centres and radii in
    ``radius_range`` pixels, each radius modulated by ``1 + Σ a·sin(k θ + φ)`` over ``harmonics``
    ``((k, a), …)`` with random phases; for holes, contamination and grains."""
    Y, X = shape
    yy, xx = np.mgrid[0:Y, 0:X]
    mask = np.zeros(shape, bool)
    for _ in range(n):
        cy, cx, r = rng.uniform(0, Y), rng.uniform(0, X), rng.uniform(*radius_range)
        th = np.arctan2(yy - cy, xx - cx)
        wobble = 1.0
        for k, a in harmonics:
            wobble = wobble + a * np.sin(k * th + rng.uniform(0, 6.3))
        mask |= np.hypot(yy - cy, xx - cx) < r * wobble
    return mask
