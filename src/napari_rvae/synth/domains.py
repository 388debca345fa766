"""domain-movie: BaTiO3-like BF-STEM movie of needle-shaped 90° domains switching under bias.

Needle (wedge-shaped) domains grow in from the field edges along two
orientations (+45° and −45°). Each needle's length follows the triangular
bias through a *play* hysteron with its own coercive width ``h_i``: its
internal state ``u`` stays where it is until the bias leaves ``[u − h_i, u + h_i]``,
then it is dragged along. Summed over needles with different ``h_i`` the
needle (domain) fraction traces a hysteresis loop against bias. Walls are thin
dark lines at domain boundaries; contaminants are static dark spots.

Labels (napari convention, 1 = first class): ``1`` domain (matrix or needle),
``2`` domain wall, ``3`` contaminant. The orientation map says which domain a
pixel belongs to: ``0`` matrix, ``1`` needle at +45°, ``2`` needle at −45°.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._util import check_positive_int, check_range, params_json, rngs, smooth_field, triangle_bias, units_array
from .render import add_noise, render_spots

_SQUARE = np.ones((3, 3), dtype=bool)


def boundary_mask(regions: np.ndarray) -> np.ndarray:
    """Pixels whose 3×3 neighbourhood holds more than one region value ((Y, X) int → bool)."""
    hi = ndimage.maximum_filter(regions, footprint=_SQUARE, mode="nearest")
    lo = ndimage.minimum_filter(regions, footprint=_SQUARE, mode="nearest")
    return hi != lo


def play_hysteron(bias: np.ndarray, half_width: float, start: float = -1.0) -> np.ndarray:
    """Play (backlash) operator: state follows ``bias`` only once it leaves ``[state − w, state + w]``.

    Parameters
    ----------
    bias : (T,) float
        Input sequence.
    half_width : float
        Coercive half-width ``w`` (same units as bias).
    start : float
        Initial state.

    Returns
    -------
    (T,) float
    """
    out = np.empty(len(bias))
    u = start
    for t, v in enumerate(bias):
        u = min(max(u, v - half_width), v + half_width)
        out[t] = u
    return out


def domain_movie(
    seed: int = 0,
    frames: int = 30,
    size: int = 512,
    *,
    n_needles: int = 14,
    n_contaminants: int = 10,
    wall_contrast: float = 0.45,
    dose: float = 300.0,
    read_noise: float = 0.02,
    pixel_size: float = 1.0,
) -> dict:
    """Generate the needle-domain BF-STEM movie and its ground truth.

    Parameters
    ----------
    seed : int
        Random seed.
    frames, size : int
        Movie shape ``(frames, size, size)``.
    n_needles : int
        Needle domains (half at +45°, half at −45°).
    n_contaminants : int
        Static dark contaminant spots.
    wall_contrast : float
        Relative darkening at a wall (0..1).
    dose, read_noise : float
        Counts per unit intensity (bright field ≈ 1) and Gaussian read noise.
    pixel_size : float
        Nanometres per pixel.

    Returns
    -------
    dict
        ``data`` (T, Y, X) float32, ``bias`` (T,) in [−1, 1], ``labels`` (T, Y, X)
        uint8 (1 domain, 2 wall, 3 contaminant), ``orientation`` (T, Y, X) uint8
        (0 matrix, 1 needle +45°, 2 needle −45°), ``domain_fraction`` (T,)
        (fraction of pixels in needles), ``needle_length`` (T, n_needles) pixels,
        ``contaminants`` (Y, X) bool, ``scale``, ``units``, ``params``.
    """
    frames = check_positive_int("frames", frames, 2)
    size = check_positive_int("size", size, 32)
    n_needles = check_positive_int("n_needles", n_needles, 1)
    n_contaminants = check_positive_int("n_contaminants", n_contaminants, 0)
    wall_contrast = check_range("wall_contrast", wall_contrast, 0.0, 1.0)
    dose = check_range("dose", dose, 1e-3, 1e9)
    params = dict(seed=seed, frames=frames, size=size, n_needles=n_needles, n_contaminants=n_contaminants,
                  wall_contrast=wall_contrast, dose=dose, read_noise=read_noise, pixel_size=pixel_size)
    rng, rng_noise = rngs(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    # Needles: a base on the left (+45°, pointing down-right... ) or right edge, an axis, a width.
    family = np.arange(n_needles) % 2  # 0 -> +45°, 1 -> -45°
    base_y = rng.uniform(-0.1, 1.1, n_needles) * size
    base_x = np.where(rng.random(n_needles) < 0.5, -0.05 * size, 1.05 * size)
    angle = np.where(family == 0, np.pi / 4, -np.pi / 4) + rng.normal(0, 0.03, n_needles)
    direction_x = np.where(base_x < 0, 1.0, -1.0)
    axis = np.stack([np.sin(angle) * direction_x, np.cos(angle) * direction_x], axis=1)  # (dy, dx)
    half_width = rng.uniform(0.03, 0.06, n_needles) * size
    length_min = rng.uniform(0.1, 0.25, n_needles) * size
    length_max = length_min + rng.uniform(0.45, 0.8, n_needles) * size
    coercive = rng.uniform(0.15, 0.6, n_needles)
    pin_step = rng.uniform(0.02, 0.05, n_needles) * size  # walls jump between pinning sites

    bias = triangle_bias(frames, 1.0)
    lengths = np.empty((frames, n_needles))
    for i in range(n_needles):
        u = play_hysteron(bias, coercive[i])
        frac = np.clip((u - (-1 + coercive[i])) / (2 - 2 * coercive[i]), 0, 1)
        raw = length_min[i] + (length_max[i] - length_min[i]) * frac
        lengths[:, i] = np.floor(raw / pin_step[i]) * pin_step[i]

    along = np.empty((n_needles, size, size), dtype=np.float32)
    across = np.empty((n_needles, size, size), dtype=np.float32)
    for i in range(n_needles):
        dy, dx = yy - base_y[i], xx - base_x[i]
        along[i] = dy * axis[i, 0] + dx * axis[i, 1]
        across[i] = np.abs(-dy * axis[i, 1] + dx * axis[i, 0])

    cont_pos = rng.uniform(0.05, 0.95, (n_contaminants, 2)) * size
    cont_sigma = rng.uniform(3.0, 8.0, n_contaminants)
    cont_img = render_spots((size, size), cont_pos, 1.0, cont_sigma) if n_contaminants else np.zeros((size, size))
    cont_img = np.clip(cont_img, 0, 1)
    contaminants = cont_img > 0.5
    thickness = 1.0 + 0.06 * smooth_field(rng, (size, size), size / 8.0)
    ramp = 1.0 + 0.08 * (xx / size - 0.5)
    level = np.array([0.80, 0.62, 0.70])  # matrix, +45° needles, −45° needles

    data = np.empty((frames, size, size), dtype=np.float32)
    labels = np.empty((frames, size, size), dtype=np.uint8)
    orientation = np.empty((frames, size, size), dtype=np.uint8)
    for t in range(frames):
        best = np.full((size, size), np.inf, dtype=np.float32)
        orient = np.zeros((size, size), dtype=np.uint8)
        for i in range(n_needles):
            L = lengths[t, i]
            a = along[i]
            inside = (a >= 0) & (a <= L) & (across[i] <= half_width[i] * (1.0 - np.clip(a / L, 0, 1)))
            closer = inside & (a < best)  # where needles cross, the one nearer its base wins
            best[closer] = a[closer]
            orient[closer] = family[i] + 1
        walls = boundary_mask(orient)
        image = level[orient] * thickness * ramp
        image *= 1.0 - wall_contrast * np.clip(ndimage.gaussian_filter(walls.astype(np.float64), 1.0) * 2.5, 0, 1)
        image *= 1.0 - 0.7 * cont_img
        data[t] = add_noise(image, rng_noise, dose=dose, read_noise=read_noise)
        lab = np.ones((size, size), dtype=np.uint8)
        lab[walls] = 2
        lab[contaminants] = 3
        labels[t] = lab
        orientation[t] = orient
    return {
        "data": data,
        "bias": bias,
        "labels": labels,
        "orientation": orientation,
        "domain_fraction": (orientation > 0).mean(axis=(1, 2)),
        "needle_length": lengths,
        "contaminants": contaminants,
        "scale": np.array([1.0, pixel_size, pixel_size]),
        "units": units_array("", "nm", "nm"),
        "params": params_json(params),
    }
