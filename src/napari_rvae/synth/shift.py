"""Paper 004 (shift-VAE, "Finding simplicity") data: shift-lattice and sines-1d.

shift-lattice
    A square lattice (constant ``a`` pixels) with a two-atom basis: a corner
    atom and a dimmer centre atom displaced along x by ``η(r) · shift · a``.
    The order parameter ``η`` is ``tanh(d / width)`` of the signed distance
    ``d`` to a wavy boundary, so two phases (``η = ±1``) meet across a smooth
    transition. Windows cut at random positions differ by translation (a
    nuisance) and by ``η`` (the physics).
sines-1d
    ``n`` curves ``sin((x − μ) / σ) + noise`` on ``x ∈ [−10, 10]`` (``length``
    samples), ``μ ~ U[−3, 3]``, ``σ`` drawn from a small discrete set; the
    whole set is min–max rescaled to ``[0, 1]`` (Bernoulli likelihood).
"""

from __future__ import annotations

import numpy as np

from ._util import check_positive_int, check_range, params_json, rngs, units_array
from .render import add_noise, render_spots

LATTICE_DTYPE = np.dtype([("frame", "i4"), ("y", "f8"), ("x", "f8"), ("sublattice", "i1"), ("order", "f8")])


def shift_lattice(
    seed: int = 0,
    frames: int = 1,
    size: int = 256,
    *,
    a: float = 12.0,
    shift: float = 0.18,
    width: float = 20.0,
    sigma: float | None = None,
    centre_intensity: float = 0.6,
    noise: float = 0.05,
) -> dict:
    """Two-phase square lattice with a smooth order parameter.

    Parameters
    ----------
    seed : int
        Random seed.
    frames : int
        Frames (independent noise, same structure); default 1.
    size : int
        Image size in pixels.
    a : float
        Lattice constant in pixels.
    shift : float
        Largest centre-atom displacement as a fraction of ``a``.
    width : float
        Width (pixels) of the transition between the two phases.
    sigma : float, optional
        Atom width in pixels (default ``0.15 * a``).
    centre_intensity : float
        Centre atom brightness relative to the corner atom.
    noise : float
        Gaussian noise std (corner atom peak = 1).

    Returns
    -------
    dict
        ``data`` (T, Y, X) float32, ``order_parameter`` (Y, X) float32 in [−1, 1],
        ``phase`` (Y, X) uint8 (1 where η < 0, 2 where η ≥ 0), ``atoms`` table
        (frame, y, x, sublattice, order), ``scale``, ``units``, ``params``.
    """
    frames = check_positive_int("frames", frames)
    size = check_positive_int("size", size, 32)
    a = check_range("a", a, 4.0, size / 3)
    shift = check_range("shift", shift, 0.0, 0.4)
    width = check_range("width", width, 0.1, 10 * size)
    sig = 0.15 * a if sigma is None else check_range("sigma", sigma, 0.3, a)
    params = dict(seed=seed, frames=frames, size=size, a=a, shift=shift, width=width, sigma=sig,
                  centre_intensity=centre_intensity, noise=noise)
    rng, rng_noise = rngs(seed)
    phase0, freq = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 2.0)
    slope = rng.uniform(-0.3, 0.3)

    def order(y, x):
        boundary = size / 2 + slope * (y - size / 2) + 0.12 * size * np.sin(2 * np.pi * freq * y / size + phase0)
        return np.tanh((x - boundary) / width)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    eta_map = order(yy, xx)
    offset = rng.uniform(0, a, 2)
    ia = np.arange(-1, int(size / a) + 2)
    gy, gx = np.meshgrid(ia * a + offset[0], ia * a + offset[1], indexing="ij")
    corner = np.stack([gy.ravel(), gx.ravel()], axis=1)
    centre0 = corner + a / 2
    eta_c = order(centre0[:, 0], centre0[:, 1])
    centre = centre0 + np.stack([np.zeros(len(eta_c)), eta_c * shift * a], axis=1)
    clean = render_spots((size, size), corner, 1.0, sig)
    render_spots((size, size), centre, centre_intensity, sig, out=clean)
    data = np.stack([add_noise(clean, rng_noise, read_noise=noise) for _ in range(frames)]).astype(np.float32)

    pos = np.concatenate([corner, centre])
    sub = np.repeat(np.array([0, 1], dtype=np.int8), len(corner))
    eta = np.concatenate([order(corner[:, 0], corner[:, 1]), eta_c])
    inside = np.all((pos >= 0) & (pos <= size - 1), axis=1)
    pos, sub, eta = pos[inside], sub[inside], eta[inside]
    atoms = np.zeros(len(pos) * frames, dtype=LATTICE_DTYPE)
    for t in range(frames):
        sl = slice(t * len(pos), (t + 1) * len(pos))
        atoms["frame"][sl], atoms["y"][sl], atoms["x"][sl] = t, pos[:, 0], pos[:, 1]
        atoms["sublattice"][sl], atoms["order"][sl] = sub, eta
    return {
        "data": data,
        "order_parameter": eta_map.astype(np.float32),
        "phase": np.where(eta_map >= 0, 2, 1).astype(np.uint8),
        "atoms": atoms,
        "scale": np.array([1.0, 1.0, 1.0]),
        "units": units_array("", "pixel", "pixel"),
        "params": params_json(params),
    }


def sines_1d(
    seed: int = 0,
    n: int = 5000,
    length: int = 100,
    *,
    mu_range: tuple[float, float] = (-3.0, 3.0),
    sigmas: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0),
    noise: float = 0.05,
    x_range: tuple[float, float] = (-10.0, 10.0),
) -> dict:
    """1D sine segments with known phase ``μ`` and period parameter ``σ``.

    Parameters
    ----------
    seed : int
        Random seed.
    n, length : int
        Number of curves and samples per curve.
    mu_range : (lo, hi)
        ``μ`` is uniform on this interval.
    sigmas : tuple of float
        The discrete set ``σ`` is drawn from (uniformly).
    noise : float
        Gaussian noise std before rescaling.
    x_range : (lo, hi)
        The sampled x interval.

    Returns
    -------
    dict
        ``data`` (n, length) float32 in [0, 1], ``x`` (length,), ``mu`` (n,),
        ``sigma`` (n,), ``value_range`` (2,) = the (min, max) used for rescaling
        (``data = (curve − min) / (max − min)``), ``scale``, ``units``, ``params``.
    """
    n = check_positive_int("n", n)
    length = check_positive_int("length", length, 2)
    sigmas = np.asarray(sigmas, dtype=np.float64).ravel()
    if sigmas.size == 0 or np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be a non-empty list of positive numbers, got {sigmas.tolist()}")
    params = dict(seed=seed, n=n, length=length, mu_range=list(mu_range), sigmas=sigmas, noise=noise,
                  x_range=list(x_range))
    rng, rng_noise = rngs(seed)
    x = np.linspace(x_range[0], x_range[1], length)
    mu = rng.uniform(mu_range[0], mu_range[1], n)
    sigma = sigmas[rng.integers(0, len(sigmas), n)]
    curves = np.sin((x[None, :] - mu[:, None]) / sigma[:, None]) + rng_noise.normal(0, noise, (n, length))
    lo, hi = float(curves.min()), float(curves.max())
    data = (curves - lo) / (hi - lo)
    return {
        "data": data.astype(np.float32),
        "x": x,
        "mu": mu,
        "sigma": sigma,
        "value_range": np.array([lo, hi]),
        "scale": np.array([1.0, float(x[1] - x[0])]),
        "units": units_array("", ""),
        "params": params_json(params),
    }
