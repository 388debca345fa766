"""pfm-switching: a PFM phase / amplitude movie of ferroelectric switching under a bias sweep.

Model: every pixel carries a polarisation sign ``s = ±1`` (``−1`` = as grown,
``+1`` = switched). A random coercive field ``h(r)`` (smooth pinning landscape
plus fine-grained pinning) decides where walls may move: during a frame with
bias ``V`` a switched domain grows by up to ``wall_speed`` pixels into pixels
with ``V > h(r)``, and shrinks back into pixels with ``V < −h(r)``. New domains
nucleate at random sites whose nucleation bias is exceeded. Because a pixel
only changes when ``|V|`` exceeds its local ``h``, the switched fraction lags
the bias: a hysteresis loop.

Phase is ``90° × s`` blurred by the tip (so it passes through 0 at walls) plus
noise; amplitude is an in-plane texture times a dip at walls plus noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._util import check_positive_int, check_range, params_json, rngs, smooth_field, triangle_bias, units_array

_CROSS = ndimage.generate_binary_structure(2, 1)
_SQUARE = np.ones((3, 3), dtype=bool)


def wall_mask(domains: np.ndarray) -> np.ndarray:
    """Wall pixels: pixels whose 3×3 neighbourhood holds both signs.

    Parameters
    ----------
    domains : (Y, X) or (T, Y, X) int
        Polarisation sign ``±1`` per pixel.

    Returns
    -------
    walls : bool array, same shape
    """
    domains = np.asarray(domains)
    if domains.ndim == 3:
        return np.stack([wall_mask(d) for d in domains])
    up = domains > 0
    return ndimage.binary_dilation(up, _SQUARE) & ndimage.binary_dilation(~up, _SQUARE)


def _grow(region: np.ndarray, allowed: np.ndarray, steps: int) -> np.ndarray:
    """Grow ``region`` by ``steps`` pixels inside ``allowed`` (alternating 4- and 8-connected steps: roundish fronts)."""
    for k in range(steps):
        region = ndimage.binary_dilation(region, _CROSS if k % 2 else _SQUARE, mask=allowed)
    return region


def pfm_switching(
    seed: int = 0,
    frames: int = 40,
    size: int = 256,
    *,
    bias_max: float = 10.0,
    coercive: float = 5.0,
    pinning: float = 0.35,
    n_nuclei: int = 30,
    wall_speed: int = 4,
    phase_noise: float = 12.0,
    amplitude_noise: float = 0.05,
    tip_sigma: float = 1.0,
    pixel_size: float = 0.02,
) -> dict:
    """Generate the PFM switching movie and its ground truth.

    Parameters
    ----------
    seed : int
        Random seed.
    frames, size : int
        Movie shape ``(frames, size, size)``.
    bias_max : float
        Peak tip bias (volts) of the triangular sweep ``0 → +V → −V → 0``.
    coercive : float
        Mean coercive bias (volts).
    pinning : float
        Relative strength of the random pinning field (std of ``h / coercive``).
    n_nuclei : int
        Nucleation sites for each switching direction.
    wall_speed : int
        Largest wall displacement per frame (pixels).
    phase_noise, amplitude_noise : float
        Noise std of phase (degrees) and amplitude (arbitrary units).
    tip_sigma : float
        Tip blur (pixels) that makes the phase pass through 0 at walls.
    pixel_size : float
        Micrometres per pixel.

    Returns
    -------
    dict
        ``data`` phase (T, Y, X) float32 in degrees, ``amplitude`` (T, Y, X)
        float32, ``bias`` (T,), ``domains`` (T, Y, X) int8 ±1, ``walls`` (T, Y, X)
        bool, ``switched_fraction`` (T,), ``labels`` (T, Y, X) uint8 (1 as grown,
        2 switched, 3 wall), ``coercive_map`` (Y, X), ``scale``, ``units``, ``params``.
    """
    frames = check_positive_int("frames", frames, 2)
    size = check_positive_int("size", size, 16)
    bias_max = check_range("bias_max", bias_max, 1e-6, 1e6)
    coercive = check_range("coercive", coercive, 0.0, 1e6)
    pinning = check_range("pinning", pinning, 0.0, 2.0)
    n_nuclei = check_positive_int("n_nuclei", n_nuclei, 1)
    wall_speed = check_positive_int("wall_speed", wall_speed, 1)
    params = dict(seed=seed, frames=frames, size=size, bias_max=bias_max, coercive=coercive, pinning=pinning,
                  n_nuclei=n_nuclei, wall_speed=wall_speed, phase_noise=phase_noise,
                  amplitude_noise=amplitude_noise, tip_sigma=tip_sigma, pixel_size=pixel_size)
    rng, rng_noise = rngs(seed)
    shape = (size, size)
    corr = max(size / 32.0, 2.0)
    h = coercive * (1.0 + pinning * (0.8 * smooth_field(rng, shape, corr) + 0.6 * smooth_field(rng, shape, 1.0)))
    h = np.clip(h, 0.15 * coercive, None)
    nuc_up = rng.integers(0, size, (n_nuclei, 2))
    nuc_down = rng.integers(0, size, (n_nuclei, 2))
    v_up = rng.uniform(0.6, 1.1, n_nuclei) * coercive
    v_down = rng.uniform(0.6, 1.1, n_nuclei) * coercive
    texture = 1.0 + 0.12 * smooth_field(rng, shape, corr * 1.5)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = 0.08 * np.cos(2 * np.pi * (yy + xx) / (size / 6.0) + 0.8 * smooth_field(rng, shape, corr))
    texture = texture + stripes

    bias = triangle_bias(frames, bias_max)
    state = -np.ones(shape, dtype=np.int8)
    domains = np.empty((frames, size, size), dtype=np.int8)
    for t in range(frames):
        v = bias[t]
        if v > 0:
            hit = nuc_up[v > v_up]
            state[hit[:, 0], hit[:, 1]] = 1
            up = state > 0
            up = _grow(up, up | (v > h), wall_speed)
            state = np.where(up, 1, -1).astype(np.int8)
        elif v < 0:
            hit = nuc_down[-v > v_down]
            state[hit[:, 0], hit[:, 1]] = -1
            down = state < 0
            down = _grow(down, down | (-v > h), wall_speed)
            state = np.where(down, -1, 1).astype(np.int8)
        domains[t] = state

    walls = wall_mask(domains)
    blurred = np.stack([ndimage.gaussian_filter(d.astype(np.float64), tip_sigma) for d in domains])
    phase = 90.0 * blurred + rng_noise.normal(0.0, phase_noise, blurred.shape)
    amplitude = texture[None] * (0.25 + 0.75 * np.abs(blurred)) + rng_noise.normal(0.0, amplitude_noise, blurred.shape)
    labels = np.where(domains > 0, 2, 1).astype(np.uint8)
    labels[walls] = 3
    return {
        "data": phase.astype(np.float32),
        "amplitude": amplitude.astype(np.float32),
        "bias": bias,
        "domains": domains,
        "walls": walls,
        "switched_fraction": (domains > 0).mean(axis=(1, 2)),
        "labels": labels,
        "coercive_map": h.astype(np.float32),
        "scale": np.array([1.0, pixel_size, pixel_size]),
        "units": units_array("", "um", "um"),
        "params": params_json(params),
    }
