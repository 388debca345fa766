"""What a real microscope adds to an ideal image, and low-dose graphene frames built with it.

The other generators render atoms as clean Gaussian spots with mild noise. Real
HAADF frames (and the detectors' tests) need more: a probe with long tails,
amorphous carbon covering parts of the lattice, slow scan distortions and
line-to-line jumps, a background and a few counts per atom. :func:`degrade`
applies these to any noiseless frame and returns the mask of covered area so
the ground truth can drop the atoms nobody could see; :func:`low_dose_graphene`
builds a single frame of graphene from the graphene-movie sheet (grain
boundary, Stone–Wales defects, holes, Si) and degrades it.

All lengths are in pixels; ``spacing`` is the nearest-neighbour atom distance.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .render import blobs, render_spots


def amorphous(shape, rng, spacing: float, width: float) -> np.ndarray:
    """Amorphous carbon: a dense random packing of atom-like spots (no order beyond the nearest
    neighbour), over a smooth thickness variation; unit brightness ≈ one lattice atom."""
    Y, X = shape
    n = int(Y * X / (0.55 * spacing**2))
    pts = np.column_stack([rng.uniform(0, Y, n), rng.uniform(0, X, n)])
    spots = render_spots(shape, pts, rng.uniform(0.3, 1.0, n), width * rng.uniform(0.9, 1.5, n))
    thickness = ndimage.gaussian_filter(rng.normal(size=shape), 3 * spacing)
    thickness = (thickness - thickness.min()) / max(np.ptp(thickness), 1e-12)
    return spots * (0.6 + 0.8 * thickness)


def degrade(clean: np.ndarray, rng: np.random.Generator, *, spacing: float, width: float,
            counts: float = 10.0, tail: float = 0.25, contamination: float = 0.15, jitter: float = 0.3,
            distortion: float = 0.01, background: float = 0.1,
            read_noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A real-instrument version of a noiseless frame.

    Parameters
    ----------
    clean : (Y, X) array
        Noiseless frame, one atom ≈ peak height 1.
    rng : numpy Generator
    spacing, width : float
        Nearest-neighbour spacing and atom (probe) σ, pixels.
    counts : float
        Detector counts at the peak of one atom (low dose: a few).
    tail : float
        Weight of the probe's long tail (a Gaussian 3–4 × wider).
    contamination : float
        Fraction of the frame covered by amorphous carbon (0 = none).
    jitter : float
        Scan-line jumps along x, σ in pixels.
    distortion : float
        Amplitude of slow scan distortions, as a fraction of the frame (shear and a wobble along y).
    background : float
        Uniform background plus a gradient, in atom-peak units.
    read_noise : float
        Gaussian detector noise, in counts.

    Returns
    -------
    image : (Y, X) float32 counts
    covered : (Y, X) bool, where amorphous carbon hides the lattice
    shifts : (Y,) float, how far each scan line was moved along x (pixels); see :func:`shifted`
    """
    Y, X = clean.shape
    image = np.asarray(clean, dtype=np.float64)
    covered = np.zeros((Y, X), bool)
    if contamination > 0:
        target = contamination * Y * X
        while covered.sum() < target:
            covered |= blobs((Y, X), rng, 1, (2 * spacing, max(3 * spacing, 0.25 * min(Y, X))),
                             harmonics=((2, 0.2), (5, 0.12)))
        soft = ndimage.gaussian_filter(covered.astype(np.float64), 0.7 * spacing)
        image = image * (1 - soft) + amorphous((Y, X), rng, spacing, width) * soft * rng.uniform(0.8, 1.6)
        covered = soft > 0.5
    if tail > 0:
        image = image + tail * ndimage.gaussian_filter(image, width * rng.uniform(3.0, 4.0))
    yy, xx = np.mgrid[0:Y, 0:X] / max(Y, X)
    th = rng.uniform(0, 2 * np.pi)
    image = image + background * (1 + 0.5 * (np.cos(th) * xx + np.sin(th) * yy))
    # slow scan distortion (shear + wobble along the slow axis) and line jumps along the fast axis
    rows = np.arange(Y)
    shift = distortion * X * (rng.uniform(-1, 1) * rows / Y + 0.5 * np.sin(2 * np.pi * rows / Y * rng.uniform(0.5, 2)))
    shift = shift + rng.normal(0, jitter, Y)
    cols = np.arange(X, dtype=np.float64)
    warped = np.empty_like(image)
    for r in range(Y):
        warped[r] = np.interp(cols - shift[r], cols, image[r])
    image = rng.poisson(np.clip(warped, 0, None) * counts).astype(np.float64)
    image = image + rng.normal(0, read_noise, image.shape)
    return image.astype(np.float32), covered, shift


def shifted(positions: np.ndarray, shifts: np.ndarray, width: float) -> np.ndarray:
    """Where atoms at ``positions`` (y, x) appear after scan lines were moved by ``shifts``: x moves
    by the shifts of the lines the atom covers, weighted by its profile (σ = ``width`` pixels)."""
    yx = np.array(positions, dtype=np.float64, copy=True)
    rows = np.arange(len(shifts))
    weights = np.exp(-((rows[None, :] - yx[:, :1]) ** 2) / (2 * width**2))
    yx[:, 1] += (weights * shifts[None, :]).sum(1) / np.maximum(weights.sum(1), 1e-12)
    return yx


def low_dose_graphene(seed: int = 0, size: int = 512, *, cc: float | None = None, counts: float | None = None,
                      contamination: float | None = None, grain: bool | None = None) -> dict:
    """One low-dose HAADF frame of graphene with exact atom positions.

    Random choices (each overridable): C–C spacing 11–18 px, probe σ 0.22–0.32 × spacing,
    3–40 counts per atom peak, 0–25 % amorphous cover, a grain boundary in half of the frames,
    holes, Stone–Wales defects, 1 % Si.

    Returns
    -------
    dict
        ``image`` (Y, X) float32 counts; ``positions`` (N, 2) visible atoms (y, x) pixels
        (drift and scan distortion included); ``element`` (N,) 6 / 14; ``covered`` (Y, X) bool;
        ``spacing``; ``params``.
    """
    from .graphene import graphene_movie

    rng = np.random.default_rng(seed)
    cc = float(cc if cc is not None else rng.uniform(11, 18))
    sigma = cc * rng.uniform(0.22, 0.32)
    counts = float(counts if counts is not None else np.exp(rng.uniform(np.log(3), np.log(40))))
    contamination = float(contamination if contamination is not None else rng.choice([0.0, 0.1, 0.25]))
    grain = bool(grain if grain is not None else rng.random() < 0.5)
    sheet = graphene_movie(seed=seed, frames=1, size=size, cc=cc, probe_sigma=sigma, grain=grain,
                           n_holes=int(rng.integers(0, 3)), n_stone_wales=3, noise=False,
                           lattice_angle=rng.uniform(0, np.pi))
    atoms = sheet["atoms"]
    clean = sheet["data"][0].astype(np.float64) - 0.02  # the generator's own offset
    state = np.random.default_rng(seed + 7919)
    jitter = float(state.uniform(0.1, 0.5))
    distortion = float(state.uniform(0.0, 0.015))
    image, covered, shifts = degrade(clean, state, spacing=cc, width=sigma, counts=counts,
                                     contamination=contamination, jitter=jitter, distortion=distortion,
                                     tail=float(state.uniform(0.1, 0.35)))
    yx = shifted(np.column_stack([atoms["y"], atoms["x"]]), shifts, sigma)
    iy = np.clip(np.rint(yx[:, 0]).astype(int), 0, size - 1)
    ix = np.clip(np.rint(yx[:, 1]).astype(int), 0, size - 1)
    visible = ~covered[iy, ix] & (yx[:, 1] >= 0) & (yx[:, 1] <= size - 1)
    return {"image": image, "positions": yx[visible], "element": atoms["element"][visible], "covered": covered,
            "spacing": cc, "params": dict(seed=seed, cc=cc, sigma=sigma, counts=counts, contamination=contamination,
                                          grain=grain, jitter=jitter, distortion=distortion)}
