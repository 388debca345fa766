"""Training images for the shipped atom finder: domain randomisation over what real STEM frames hold.

Each image is one random scene at the network's input scale: a lattice (graphene
honeycomb, a two-species honeycomb such as a TMD, triangular, square, perovskite
A + B columns, perovskite with O columns as seen in ABF, or a rectangular
projection), a second grain in some, then what samples and microscopes add:
vacancies, holes, dopants 1.5–5× brighter, amorphous carbon and contamination
blobs (labelled background), a probe with long tails and defocus blur, a
background gradient and support glow, scan-line jitter and stripes, slow drift,
Poisson noise from a few to thousands of counts per atom and read noise, and
inverted (ABF / BF) contrast. Labels: 1 = background, 2 = atom (a disc around
every visible atom centre).

The detector rescales every frame so that the estimated nearest-neighbour
spacing becomes ``CANONICAL_SPACING`` before the network sees it; half of the
scenes are drawn near that spacing, the rest over 5–30 px, so that frames whose
spacing could not be estimated are handled too.

This is maintainer code (it builds the shipped weights); it is not installed
with the package.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_rvae.detect.lattice import CANONICAL_SPACING  # the spacing the detector rescales frames to
from napari_rvae.synth.render import blobs as _blobs, render_spots
KINDS = ("graphene", "tmd", "triangular", "square", "perovskite", "perovskite-abf", "rectangular")
WEIGHTS = (0.3, 0.12, 0.1, 0.1, 0.2, 0.08, 0.1)


def _basis(kind: str, d: float, rng: np.random.Generator):
    """Lattice vectors (2, 2) and basis (k, 2) in (x, y) pixels, relative amplitudes (k,), and
    whether each basis site is a (labelled) atom column."""
    if kind in ("graphene", "tmd"):
        a = d * np.sqrt(3)
        vectors = np.array([[a, 0.0], [a / 2, a * np.sqrt(3) / 2]])
        basis = np.array([[0.0, 0.0], [0.0, d]])
        amps = np.array([1.0, 1.0 if kind == "graphene" else rng.uniform(0.25, 0.8)])
    elif kind == "triangular":
        vectors = np.array([[d, 0.0], [d / 2, d * np.sqrt(3) / 2]])
        basis, amps = np.zeros((1, 2)), np.array([1.0])
    elif kind == "square":
        vectors, basis, amps = np.array([[d, 0.0], [0.0, d]]), np.zeros((1, 2)), np.array([1.0])
    elif kind == "rectangular":  # e.g. a [110] perovskite projection: a ≠ b, a centred site in some
        ratio = rng.uniform(1.3, 1.8)
        vectors = np.array([[d, 0.0], [0.0, d * ratio]])
        if rng.random() < 0.5:
            basis, amps = np.array([[0.0, 0.0], [d / 2, d * ratio / 2]]), np.array([1.0, rng.uniform(0.3, 1.0)])
        else:
            basis, amps = np.zeros((1, 2)), np.array([1.0])
    elif kind in ("perovskite", "perovskite-abf"):
        a = d * np.sqrt(2)  # the A–B distance is the nearest-neighbour spacing
        vectors = np.array([[a, 0.0], [0.0, a]])
        basis = np.array([[0.0, 0.0], [a / 2, a / 2]])
        amps = np.array([1.0, rng.uniform(0.3, 0.8)])
        if kind == "perovskite-abf":  # O columns at the cell edges' midpoints, weak, visible in ABF
            basis = np.vstack([basis, [[a / 2, 0.0], [0.0, a / 2]]])
            amps = np.r_[amps, [rng.uniform(0.2, 0.45)] * 2]
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return vectors, basis, amps


def lattice_points(kind: str, d: float, shape, rng, angle: float, origin) -> tuple[np.ndarray, np.ndarray]:
    """Atom centres ``(N, 2)`` (y, x) covering ``shape`` and their amplitudes."""
    vectors, basis, amps = _basis(kind, d, rng)
    Y, X = shape
    n = int(np.ceil(np.hypot(Y, X) / np.min(np.linalg.norm(vectors, axis=1)))) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    cells = i.reshape(-1, 1) * vectors[0] + j.reshape(-1, 1) * vectors[1]
    pts = (cells[:, None, :] + basis[None]).reshape(-1, 2)
    amp = np.tile(amps, len(cells))
    # a little strain / shear, then rotation
    strain = np.eye(2) + rng.normal(0, 0.02, (2, 2))
    c, s = np.cos(angle), np.sin(angle)
    xy = pts @ strain.T @ np.array([[c, s], [-s, c]]) + np.asarray(origin)
    yx = xy[:, ::-1]
    m = 2 * d
    keep = (yx[:, 0] > -m) & (yx[:, 0] < Y + m) & (yx[:, 1] > -m) & (yx[:, 1] < X + m)
    return yx[keep], amp[keep]


def _spacing(rng) -> float:
    if rng.random() < 0.5:
        return float(CANONICAL_SPACING * np.exp(rng.uniform(np.log(0.75), np.log(1.35))))
    return float(np.exp(rng.uniform(np.log(5.0), np.log(30.0))))


def make_scene(rng: np.random.Generator, shape=(192, 192), *, kind: str | None = None, spacing: float | None = None,
               noise: bool = True, cover_probability: float = 0.4) -> dict:
    """One random scene with dense labels and ground truth.

    ``cover_probability`` is the chance of amorphous carbon / contamination in the scene.

    Returns
    -------
    dict with ``image`` (Y, X) float32, ``labels`` (Y, X) uint8 (1 background, 2 atom),
    ``positions`` (N, 2) visible atom centres, ``spacing``, ``kind``, ``inverted``.
    """
    Y, X = shape
    kind = kind or str(rng.choice(KINDS, p=WEIGHTS))
    d = float(spacing if spacing is not None else _spacing(rng))
    pos, amp = lattice_points(kind, d, shape, rng, rng.uniform(0, 2 * np.pi), rng.uniform(0, d, 2) + [X / 2, Y / 2])
    if rng.random() < 0.2:  # a second grain, rotated, inside a blob; atoms too close to the first dropped
        grain = _blobs(shape, rng, 1, (0.2 * min(Y, X), 0.45 * min(Y, X)))
        gpos, gamp = lattice_points(kind, d, shape, rng, rng.uniform(0, 2 * np.pi), rng.uniform(0, d, 2))
        inside = lambda p: grain[np.clip(np.rint(p[:, 0]).astype(int), 0, Y - 1),
                                 np.clip(np.rint(p[:, 1]).astype(int), 0, X - 1)]
        pos, amp = np.vstack([pos[~inside(pos)], gpos[inside(gpos)]]), np.r_[amp[~inside(pos)], gamp[inside(gpos)]]
        from scipy.spatial import cKDTree

        drop = np.zeros(len(pos), bool)
        for i, j in cKDTree(pos).query_pairs(0.6 * d):
            drop[max(i, j)] = True
        pos, amp = pos[~drop], amp[~drop]
    pos = pos + rng.normal(0, rng.uniform(0.01, 0.05) * d, pos.shape)  # thermal / static disorder
    amp = amp * (1 + rng.uniform(0.0, 0.12) * rng.standard_normal(len(amp)))
    keep = rng.random(len(pos)) >= rng.uniform(0.0, 0.08)  # vacancies
    holes = np.zeros(shape, bool)
    if rng.random() < 0.35:
        holes = _blobs(shape, rng, int(rng.integers(1, 3)), (1.5 * d, 0.3 * min(Y, X) + 1.5 * d))
    cover = np.zeros(shape)
    if rng.random() < cover_probability:  # amorphous carbon / contamination, soft-edged; the lattice fades under it
        blobs = _blobs(shape, rng, int(rng.integers(1, 4)), (1.5 * d, 0.3 * min(Y, X) + d)) & ~holes
        cover = ndimage.gaussian_filter(blobs.astype(np.float64), rng.uniform(0.3, 1.0) * d)
    iy = np.clip(np.rint(pos[:, 0]).astype(int), 0, Y - 1)
    ix = np.clip(np.rint(pos[:, 1]).astype(int), 0, X - 1)
    keep &= ~holes[iy, ix]
    weight = 1.0 - cover[iy, ix]
    pos, amp, weight = pos[keep], amp[keep], weight[keep]
    dopant = rng.random(len(pos)) < rng.uniform(0.0, 0.05)
    amp = np.where(dopant, amp * rng.uniform(1.5, 5.0, len(amp)), amp)
    width = d * rng.uniform(0.12, 0.35)
    image = render_spots(shape, pos, amp * weight, width * (1 + 0.05 * rng.standard_normal(len(pos))))
    if cover.any():
        n = int(Y * X / (rng.uniform(0.4, 1.0) * d**2))
        pts = np.column_stack([rng.uniform(0, Y, n), rng.uniform(0, X, n)])
        amorphous = render_spots(shape, pts, rng.uniform(0.2, 1.0, n), width * rng.uniform(0.8, 1.8, n))
        thickness = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1, 4) * d)
        thickness = (thickness - thickness.min()) / max(np.ptp(thickness), 1e-12)
        image += cover * (amorphous * rng.uniform(0.5, 2.0) + thickness * rng.uniform(0.0, 1.5))
    # probe tails, defocus, support glow, gradient
    if rng.random() < 0.7:
        image = image + rng.uniform(0.05, 0.4) * ndimage.gaussian_filter(image, width * rng.uniform(2.5, 5.0))
    if rng.random() < 0.3:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 0.25 * d))
    glow = rng.uniform(0.0, 0.4) * (1 - ndimage.gaussian_filter(holes.astype(np.float64), 2.0))
    yy, xx = np.mgrid[0:Y, 0:X] / max(Y, X)
    th = rng.uniform(0, 2 * np.pi)
    image = image + glow + rng.uniform(0, 0.8) * (np.cos(th) * xx + np.sin(th) * yy) + rng.uniform(0.0, 0.3)
    # slow drift (shear along the slow scan axis) and line jitter, applied to image and truth alike
    rows = np.arange(Y)
    shift = rng.uniform(-0.04, 0.04) * rows + rng.normal(0, rng.uniform(0.0, 0.6), Y) * (rng.random() < 0.7)
    cols = np.arange(X, dtype=np.float64)
    image = np.stack([np.interp(cols - shift[r], cols, image[r]) for r in range(Y)])
    pos[:, 1] += np.interp(pos[:, 0], rows, shift)
    if noise:
        counts = float(np.exp(rng.uniform(np.log(1.5), np.log(3000.0))))
        image = rng.poisson(np.clip(image, 0, None) * counts).astype(np.float64) / counts
        image = image + rng.normal(0, rng.uniform(0.0, 0.1), image.shape)
        if rng.random() < 0.3:  # scan-line stripes: a gain change per line
            image = image * (1 + rng.normal(0, rng.uniform(0.01, 0.08), (Y, 1)))
    inverted = bool(rng.random() < 0.15)
    if inverted:
        image = image.max() - image
    image = (image - image.min()) / max(np.ptp(image), 1e-12)
    visible = weight >= 0.5
    vis_pos = pos[visible]
    r = float(np.clip(0.25 * d, 1.5, 3.5))
    labels = np.ones(shape, np.uint8)
    discs = render_spots(shape, vis_pos, 1.0, r / 2.0)
    labels[discs >= np.exp(-2.0) - 1e-9] = 2
    inside = (vis_pos[:, 0] >= 0) & (vis_pos[:, 0] < Y) & (vis_pos[:, 1] >= 0) & (vis_pos[:, 1] < X)
    return {"image": image.astype(np.float32), "labels": labels, "positions": vis_pos[inside], "spacing": d,
            "kind": kind, "inverted": inverted}


def make_training_set(n: int, shape=(192, 192), seed: int = 0, cover: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random scenes: images ``(n, Y, X)`` float32 and labels uint8 (``cover``: see :func:`make_scene`)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    scenes = [make_scene(rng, shape, cover_probability=cover) for _ in range(n)]
    return np.stack([s["image"] for s in scenes]), np.stack([s["labels"] for s in scenes])
