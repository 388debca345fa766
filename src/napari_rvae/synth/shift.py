"""Paper 004 (shift-VAE, "Finding simplicity") data: shift-lattice, island-lattice and sines-1d.

shift-lattice
    A square lattice (constant ``a`` pixels) with a two-atom basis: a corner
    atom and a dimmer centre atom displaced along x by ``η(r) · shift · a``.
    The order parameter ``η`` is ``tanh(d / width)`` of the signed distance
    ``d`` to a wavy boundary, so two phases (``η = ±1``) meet across a smooth
    transition. Windows cut at random positions differ by translation (a
    nuisance) and by ``η`` (the physics).
island-lattice (:func:`island_lattice`, a generator only)
    A rotated triangular lattice whose second basis atom moves with the order parameter of a
    round island: a second two-phase lattice to check the shift-VAE on.
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

    eta = np.concatenate([order(corner[:, 0], corner[:, 1]), eta_c])
    return _two_phase(data, eta_map, np.concatenate([corner, centre]), eta, frames, params)


def _two_phase(data, eta_map, pos, eta, frames: int, params: dict) -> dict:
    """The result dict of a two-phase lattice: atoms ``pos`` (2n, 2), first half sublattice 0."""
    size_y, size_x = eta_map.shape
    sub = np.repeat(np.array([0, 1], dtype=np.int8), len(pos) // 2)
    inside = (pos[:, 0] >= 0) & (pos[:, 0] <= size_y - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= size_x - 1)
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


def island_lattice(
    seed: int = 0,
    frames: int = 1,
    size: int = 192,
    *,
    a: float = 10.0,
    angle: float = 0.35,
    shift: float = 0.15,
    radius: float = 0.3,
    width: float = 10.0,
    sigma: float | None = None,
    second_intensity: float = 0.7,
    noise: float = 0.05,
) -> dict:
    """A rotated triangular lattice with a two-atom basis whose second atom moves with an island's
    order parameter: a two-phase lattice unlike shift-lattice (other symmetry, period, orientation
    and boundary shape).

    Each cell holds a bright atom at its corner and a dimmer one at a third of the long diagonal
    (the honeycomb position), displaced by ``η(r) · shift · a`` at right angles to the first
    lattice vector. ``η = tanh((R − |r − c|) / width)`` is +1 inside a round island (radius
    ``R = radius · size``, centre ``c`` near the image centre) and −1 outside: the two phases are
    mirror-related dimers, and the boundary a smooth ring.

    Parameters
    ----------
    seed, frames, size : int
        Random seed, frames (independent noise, same structure), image size in pixels.
    a : float
        Lattice constant in pixels.
    angle : float
        Direction of the first lattice vector (radians from the x axis).
    shift : float
        Largest displacement of the second atom as a fraction of ``a``.
    radius : float
        Island radius as a fraction of ``size``.
    width : float
        Width (pixels) of the boundary between the two phases.
    sigma : float, optional
        Atom width in pixels (default ``0.15 * a``).
    second_intensity : float
        Second atom brightness relative to the first.
    noise : float
        Gaussian noise std (first atom peak = 1).

    Returns
    -------
    dict
        As :func:`shift_lattice`: ``data``, ``order_parameter`` (Y, X) in [−1, 1], ``phase``,
        ``atoms``, ``scale``, ``units``, ``params``.
    """
    frames = check_positive_int("frames", frames)
    size = check_positive_int("size", size, 32)
    a = check_range("a", a, 4.0, size / 3)
    shift = check_range("shift", shift, 0.0, 0.3)
    radius = check_range("radius", radius, 0.05, 0.5)
    width = check_range("width", width, 0.1, 10 * size)
    sig = 0.15 * a if sigma is None else check_range("sigma", sigma, 0.3, a)
    params = dict(seed=seed, frames=frames, size=size, a=a, angle=angle, shift=shift, radius=radius, width=width,
                  sigma=sig, second_intensity=second_intensity, noise=noise)
    rng, rng_noise = rngs(seed)
    centre = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
    r_island = radius * size * rng.uniform(0.9, 1.1)

    def order(y, x):
        return np.tanh((r_island - np.hypot(y - centre[0], x - centre[1])) / width)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    eta_map = order(yy, xx)
    # lattice vectors as (y, x): a1 along ``angle``, a2 at 60° from it
    a1 = a * np.array([np.sin(angle), np.cos(angle)])
    a2 = a * np.array([np.sin(angle + np.pi / 3), np.cos(angle + np.pi / 3)])
    normal = np.array([np.cos(angle), -np.sin(angle)])  # a1 turned by 90°, unit length
    n = int(np.ceil(1.6 * size / a)) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    first = size / 2 + rng.uniform(0, 1, 2) * a + i.ravel()[:, None] * a1 + j.ravel()[:, None] * a2
    keep = np.all((first > -a) & (first < size + a), axis=1)
    first = first[keep]
    second0 = first + (a1 + a2) / 3
    eta_s = order(second0[:, 0], second0[:, 1])
    second = second0 + (eta_s * shift * a)[:, None] * normal
    clean = render_spots((size, size), first, 1.0, sig)
    render_spots((size, size), second, second_intensity, sig, out=clean)
    data = np.stack([add_noise(clean, rng_noise, read_noise=noise) for _ in range(frames)]).astype(np.float32)
    eta = np.concatenate([order(first[:, 0], first[:, 1]), eta_s])
    return _two_phase(data, eta_map, np.concatenate([first, second]), eta, frames, params)


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
    return _curve_set(curves, x, mu, sigma, params)


def _curve_set(curves, x, mu, sigma, params: dict) -> dict:
    """A set of 1D curves min–max rescaled to [0, 1], with their parameters (the 1D samples' keys)."""
    lo, hi = float(curves.min()), float(curves.max())
    return {
        "data": ((curves - lo) / (hi - lo)).astype(np.float32),
        "x": x,
        "mu": mu,
        "sigma": sigma,
        "value_range": np.array([lo, hi]),
        "scale": np.array([1.0, float(x[1] - x[0])]),
        "units": units_array("", ""),
        "params": params_json(params),
    }


def gaussian_peaks_1d(n: int = 2000, seed: int = 0, *, length: int = 100, mu_range=(-3.0, 3.0),
                      sigma_range=(0.5, 5.0), noise: float = 0.02, x_range=(-12.0, 12.0)) -> dict:
    """Paper 004's 1D set: Gaussian peaks of centre ``μ ~ U(mu_range)`` and width ``σ ~ U(sigma_range)``
    on ``x ∈ x_range`` with Gaussian noise, the whole set min–max rescaled to ``[0, 1]``.

    Returns the keys of :func:`sines_1d` (``data``, ``x``, ``mu``, ``sigma``, ``value_range``, …).
    """
    n = check_positive_int("n", n)
    length = check_positive_int("length", length, 2)
    if not (0 < sigma_range[0] <= sigma_range[1]):
        raise ValueError(f"sigma_range must be two positive numbers, low first, got {list(sigma_range)}")
    params = dict(seed=seed, n=n, length=length, mu_range=list(mu_range), sigma_range=list(sigma_range), noise=noise,
                  x_range=list(x_range))
    rng, rng_noise = rngs(seed)
    x = np.linspace(x_range[0], x_range[1], length)
    mu = rng.uniform(mu_range[0], mu_range[1], n)
    sigma = rng.uniform(sigma_range[0], sigma_range[1], n)
    curves = np.exp(-((x[None, :] - mu[:, None]) ** 2) / (2 * sigma[:, None] ** 2))
    curves = curves + rng_noise.normal(0, noise, (n, length))
    return _curve_set(curves, x, mu, sigma, params)
