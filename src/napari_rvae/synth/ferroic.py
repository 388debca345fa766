"""ferroic: BiFeO3-like HAADF image of a ferroelectric film on a non-polar substrate.

A square perovskite projection: bright A-site columns (Bi) on a lattice of
constant ``a`` pixels and dimmer B-site columns (Fe) at the cell centres. In
the film each B-site is off-centred by ``displacement × a`` along the local
polarisation, which takes one of four in-plane variants ``k`` with direction
``π/4 + k·π/2`` (related by 90° rotations). Variants form stripe domains in two
regions (variants 0/1 left, 2/3 right); across a wall the polarisation turns
smoothly (unit vectors smoothed over ``wall_width`` pixels). The substrate
(bottom) is non-polar, with dimmer A and B columns. Non-idealities: an
intensity/tilt gradient, elliptical columns, Poisson + read noise, scan jitter.

Ground truth: B-site table (positions, ideal centres, polarisation vector,
angle, variant; substrate = variant 4), A-site positions and the domain map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._util import check_positive_int, check_range, params_json, rngs, smooth_field, units_array
from .render import add_noise, render_spots, scan_jitter

SUBSTRATE = 4
BSITE_DTYPE = np.dtype(
    [
        ("frame", "i4"), ("y", "f8"), ("x", "f8"), ("y0", "f8"), ("x0", "f8"), ("py", "f8"), ("px", "f8"),
        ("angle", "f8"), ("variant", "i1"),
    ]
)
ASITE_DTYPE = np.dtype([("frame", "i4"), ("y", "f8"), ("x", "f8"), ("substrate", "i1")])


def variant_angles() -> np.ndarray:
    """Polarisation direction (radians, counter-clockwise from +x with y pointing up) of variants 0..3."""
    return np.pi / 4 + np.arange(4) * np.pi / 2


def _domain_map(rng, size: int, a: float, substrate_fraction: float, period_cells: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    interface = size * (1 - substrate_fraction) + 0.02 * size * np.sin(2 * np.pi * xx / size + rng.uniform(0, 6.3))
    split = size * (0.5 + rng.uniform(-0.1, 0.1)) + 0.06 * size * np.sin(2 * np.pi * yy / size * 1.5)
    period = period_cells * a
    left = np.floor(((yy + xx) / np.sqrt(2) + rng.uniform(0, period)) / period).astype(np.int64) % 2
    right = np.floor(((yy - xx) / np.sqrt(2) + rng.uniform(0, period)) / period).astype(np.int64) % 2
    domains = np.where(xx < split, left, 2 + right).astype(np.int8)
    domains[yy >= interface] = SUBSTRATE
    return domains


def ferroic(
    seed: int = 0,
    frames: int = 1,
    size: int = 512,
    *,
    a: float = 20.0,
    displacement: float = 0.12,
    column_sigma: float | None = None,
    b_intensity: float = 0.45,
    substrate_fraction: float = 0.2,
    domain_period: float = 6.0,
    wall_width: float | None = None,
    ellipticity: float = 0.15,
    gradient: float = 0.2,
    dose: float = 60.0,
    read_noise: float = 0.02,
    jitter: float = 0.2,
) -> dict:
    """Generate the ferroic HAADF image and its ground truth.

    Parameters
    ----------
    seed : int
        Random seed.
    frames : int
        Number of frames (independent noise, same structure); default 1.
    size : int
        Image size in pixels (≥ 64).
    a : float
        Perovskite lattice constant in pixels (pixel size = 0.396 nm / ``a``).
    displacement : float
        B-site off-centring as a fraction of ``a`` (0.1–0.15 is visible to an rVAE).
    column_sigma : float, optional
        Column width in pixels (default ``0.13 * a``).
    b_intensity : float
        B-site column brightness relative to the A-site columns.
    substrate_fraction : float
        Fraction of the image height taken by the non-polar substrate (bottom).
    domain_period : float
        Stripe domain period in unit cells.
    wall_width : float, optional
        Smoothing length (pixels) over which the polarisation turns at a wall (default ``0.8 * a``).
    ellipticity, gradient : float
        Column elongation (sample tilt) and relative intensity ramp across the image.
    dose, read_noise, jitter : float
        Counts per unit intensity, Gaussian read noise, scan-line jitter (pixels).

    Returns
    -------
    dict
        ``data`` (T, Y, X) float32, ``bsites`` / ``asites`` structured tables,
        ``domain_map`` (Y, X) int8 (variants 0–3, substrate 4), ``scale``, ``units``, ``params``.
    """
    frames = check_positive_int("frames", frames)
    size = check_positive_int("size", size, 64)
    a = check_range("a", a, 6.0, size / 4)
    displacement = check_range("displacement", displacement, 0.0, 0.3)
    sigma = 0.13 * a if column_sigma is None else check_range("column_sigma", column_sigma, 0.3, a)
    wall = 0.8 * a if wall_width is None else check_range("wall_width", wall_width, 0.5, size)
    substrate_fraction = check_range("substrate_fraction", substrate_fraction, 0.0, 0.9)
    dose = check_range("dose", dose, 1e-3, 1e9)
    params = dict(seed=seed, frames=frames, size=size, a=a, displacement=displacement, column_sigma=sigma,
                  b_intensity=b_intensity, substrate_fraction=substrate_fraction, domain_period=domain_period,
                  wall_width=wall, ellipticity=ellipticity, gradient=gradient, dose=dose,
                  read_noise=read_noise, jitter=jitter)
    rng, rng_noise = rngs(seed)
    domains = _domain_map(rng, size, a, substrate_fraction, domain_period)

    # Smooth polarisation field: unit vectors of each variant, blurred across walls.
    ang = variant_angles()
    polar = domains < SUBSTRATE
    ux = np.where(polar, np.cos(ang[np.minimum(domains, 3)]), 0.0)
    uy = np.where(polar, np.sin(ang[np.minimum(domains, 3)]), 0.0)
    ux_s = ndimage.gaussian_filter(ux, wall / 2, mode="nearest")
    uy_s = ndimage.gaussian_filter(uy, wall / 2, mode="nearest")
    polar_s = ndimage.gaussian_filter(polar.astype(np.float64), wall / 2, mode="nearest")

    offset = rng.uniform(0, a, 2)
    ia = np.arange(-1, int(size / a) + 2)
    gy, gx = np.meshgrid(ia * a + offset[0], ia * a + offset[1], indexing="ij")
    a_pos = np.stack([gy.ravel(), gx.ravel()], axis=1)
    b0 = a_pos + a / 2
    keep_b = np.all((b0 >= 0) & (b0 <= size - 1), axis=1)
    b0 = b0[keep_b]
    rc = np.clip(np.rint(b0).astype(np.int64), 0, size - 1)
    variant = domains[rc[:, 0], rc[:, 1]]
    vx, vy = ux_s[rc[:, 0], rc[:, 1]], uy_s[rc[:, 0], rc[:, 1]]
    norm = np.hypot(vx, vy)
    theta = np.arctan2(vy, vx)
    magnitude = displacement * a * np.clip(polar_s[rc[:, 0], rc[:, 1]], 0, 1)
    magnitude[norm < 1e-6] = 0.0
    magnitude[variant == SUBSTRATE] = 0.0
    px = magnitude * np.cos(theta)
    py = -magnitude * np.sin(theta)  # image rows point down
    b_pos = b0 + np.stack([py, px], axis=1)
    a_rc = np.clip(np.rint(a_pos).astype(np.int64), 0, size - 1)
    a_sub = domains[a_rc[:, 0], a_rc[:, 1]] == SUBSTRATE
    b_sub = variant == SUBSTRATE

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    tilt = ellipticity * (1 + 0.5 * np.sin(np.pi * xx / size))
    amp_a = np.where(a_sub, 0.55, 1.0)
    amp_b = np.where(b_sub, 0.6, 1.0) * b_intensity

    def field_at(f, p):
        q = np.clip(np.rint(p).astype(np.int64), 0, size - 1)
        return f[q[:, 0], q[:, 1]]

    clean = render_spots((size, size), a_pos, amp_a, sigma, ellipticity=field_at(tilt, a_pos), orientation=0.6)
    render_spots((size, size), b_pos, amp_b, sigma, ellipticity=field_at(tilt, b_pos), orientation=0.6, out=clean)
    gradient_map = 1.0 + gradient * ((xx + 0.5 * yy) / size - 0.75) + 0.05 * smooth_field(rng, (size, size), size / 6)
    clean = clean * gradient_map + 0.05
    data = np.empty((frames, size, size), dtype=np.float32)
    for t in range(frames):
        data[t] = scan_jitter(add_noise(clean, rng_noise, dose=dose, read_noise=read_noise), rng_noise, jitter)

    inside_a = np.all((a_pos >= 0) & (a_pos <= size - 1), axis=1)
    bt = np.zeros(len(b_pos) * frames, dtype=BSITE_DTYPE)
    at = np.zeros(int(inside_a.sum()) * frames, dtype=ASITE_DTYPE)
    for t in range(frames):
        sl = slice(t * len(b_pos), (t + 1) * len(b_pos))
        bt["frame"][sl], bt["y"][sl], bt["x"][sl] = t, b_pos[:, 0], b_pos[:, 1]
        bt["y0"][sl], bt["x0"][sl], bt["py"][sl], bt["px"][sl] = b0[:, 0], b0[:, 1], py, px
        bt["angle"][sl], bt["variant"][sl] = np.where(magnitude > 0, theta, 0.0), variant
        sa = slice(t * int(inside_a.sum()), (t + 1) * int(inside_a.sum()))
        at["frame"][sa], at["y"][sa], at["x"][sa] = t, a_pos[inside_a, 0], a_pos[inside_a, 1]
        at["substrate"][sa] = a_sub[inside_a]
    pixel_nm = 0.396 / a
    return {
        "data": data,
        "bsites": bt,
        "asites": at,
        "domain_map": domains,
        "scale": np.array([1.0, pixel_nm, pixel_nm]),
        "units": units_array("", "nm", "nm"),
        "params": params_json(params),
    }
