"""Training data for the shipped atom finder: random atomic lattices with dense labels.

Each image is a HAADF-like view of one lattice — graphene (honeycomb), square,
or perovskite-like (bright A columns on a square lattice, dimmer B columns at
the cell centres) — with a random nearest-neighbour spacing (≈ 6–25 pixels),
rotation, atom width, vacancies, holes (vacuum), brighter dopants, scan-line jitter, amorphous
contamination blobs (random speckle, labelled background), a background
gradient, probe blur and Poisson + Gaussian noise. Labels: 1 = background,
2 = atom (a disk around every atom centre). Built on ``synth.render``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..synth.render import add_noise, render_spots, scan_jitter

LATTICES = ("graphene", "square", "perovskite")


def lattice_sites(kind: str, spacing: float, shape: tuple, angle: float, rng: np.random.Generator):
    """Atom centres ``(N, 2)`` (y, x pixels) covering ``shape``, and a relative amplitude per atom.

    ``spacing`` is the nearest-neighbour distance in pixels; ``angle`` in radians.
    """
    Y, X = shape
    if kind == "graphene":
        a = spacing * np.sqrt(3.0)
        a1 = np.array([a, 0.0])
        a2 = np.array([a / 2, a * np.sqrt(3.0) / 2])
        basis = np.array([[0.0, 0.0], [0.0, spacing]])  # (x, y) offsets of the two sublattices
        amps = np.array([1.0, 1.0])
    elif kind == "square":
        a1, a2 = np.array([spacing, 0.0]), np.array([0.0, spacing])
        basis, amps = np.zeros((1, 2)), np.array([1.0])
    elif kind == "perovskite":
        a = spacing * np.sqrt(2.0)  # A–B distance is the nearest-neighbour spacing
        a1, a2 = np.array([a, 0.0]), np.array([0.0, a])
        basis = np.array([[0.0, 0.0], [a / 2, a / 2]])
        amps = np.array([1.0, rng.uniform(0.35, 0.8)])
    else:
        raise ValueError(f"kind must be one of {LATTICES}, got {kind!r}")
    diag = np.hypot(Y, X)
    n = int(np.ceil(diag / min(np.linalg.norm(a1), np.linalg.norm(a2)))) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    cells = i.reshape(-1, 1) * a1 + j.reshape(-1, 1) * a2
    pts = (cells[:, None, :] + basis[None]).reshape(-1, 2)
    amp = np.tile(amps, len(cells))
    c, s = np.cos(angle), np.sin(angle)
    xy = pts @ np.array([[c, s], [-s, c]]) + rng.uniform(0, spacing, 2) + np.array([X / 2, Y / 2])
    yx = xy[:, ::-1]
    margin = 3 * spacing
    keep = (yx[:, 0] > -margin) & (yx[:, 0] < Y + margin) & (yx[:, 1] > -margin) & (yx[:, 1] < X + margin)
    return yx[keep], amp[keep]


def _blob_mask(shape, rng, n_blobs, radius_range):
    """Union of smooth random blobs (boolean mask)."""
    Y, X = shape
    yy, xx = np.mgrid[0:Y, 0:X]
    mask = np.zeros(shape, bool)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, Y), rng.uniform(0, X)
        r = rng.uniform(*radius_range)
        th = np.arctan2(yy - cy, xx - cx)
        wobble = 1 + 0.25 * np.sin(3 * th + rng.uniform(0, 6.3)) + 0.15 * np.sin(5 * th + rng.uniform(0, 6.3))
        mask |= np.hypot(yy - cy, xx - cx) < r * wobble
    return mask


def make_atom_image(rng: np.random.Generator, shape=(192, 192), *, kind: str | None = None,
                    spacing: float | None = None, holes: bool | None = None, contamination: bool | None = None,
                    noise: bool = True, label_radius: float | None = None) -> dict:
    """One random lattice image with dense labels and ground truth.

    Parameters
    ----------
    rng : numpy Generator
    shape : (Y, X) pixels
    kind : one of ``LATTICES`` (random if None)
    spacing : nearest-neighbour distance in pixels (log-uniform in [6, 25] if None)
    holes, contamination : force holes / amorphous blobs on or off (random if None)
    noise : add dose / read noise
    label_radius : radius (pixels) of each atom's label disk (default ``clip(0.22·spacing, 1.5, 3)``)

    Returns
    -------
    dict with ``image`` (Y, X) float32 (normalised 0–1), ``labels`` (Y, X) uint8
    (1 background, 2 atom), ``positions`` (N, 2) true atom centres inside the
    frame, ``dopant`` (N,) bool, ``hole_mask`` (Y, X) bool, ``spacing``, ``kind``.
    """
    Y, X = shape
    kind = kind or LATTICES[rng.integers(len(LATTICES))]
    spacing = float(spacing if spacing is not None else np.exp(rng.uniform(np.log(6.0), np.log(25.0))))
    pos, amp = lattice_sites(kind, spacing, shape, rng.uniform(0, 2 * np.pi), rng)
    pos = pos + rng.normal(0, 0.03 * spacing, pos.shape)  # thermal / strain jitter
    amp = amp * (1 + 0.06 * rng.standard_normal(len(amp)))
    keep = rng.random(len(pos)) >= rng.uniform(0.0, 0.08)  # vacancies
    hole_mask = np.zeros(shape, bool)
    if holes if holes is not None else rng.random() < 0.4:
        hole_mask = _blob_mask(shape, rng, int(rng.integers(1, 3)), (2 * spacing, 0.3 * min(Y, X) + 2 * spacing))
    cont_mask = np.zeros(shape, bool)
    if contamination if contamination is not None else rng.random() < 0.4:
        cont_mask = _blob_mask(shape, rng, int(rng.integers(1, 3)), (1.5 * spacing, 0.25 * min(Y, X) + spacing))
        cont_mask &= ~hole_mask
    iy = np.clip(np.rint(pos[:, 0]).astype(int), 0, Y - 1)
    ix = np.clip(np.rint(pos[:, 1]).astype(int), 0, X - 1)
    keep &= ~hole_mask[iy, ix] & ~cont_mask[iy, ix]
    pos, amp = pos[keep], amp[keep]
    dopant = rng.random(len(pos)) < rng.uniform(0.0, 0.04)
    amp = np.where(dopant, amp * rng.uniform(1.6, 3.0), amp)
    width = spacing * rng.uniform(0.12, 0.3)
    sigma = width * (1 + 0.05 * rng.standard_normal(len(pos)))
    image = render_spots(shape, pos, amp, sigma)
    if cont_mask.any():
        # amorphous material: dense random speckle of atom-like spots, smooth edges, labelled background
        area = cont_mask.sum()
        n = int(area / (0.6 * spacing**2)) + 1
        cand = np.column_stack([rng.uniform(0, Y, 4 * n), rng.uniform(0, X, 4 * n)])
        inside = cont_mask[np.clip(cand[:, 0].astype(int), 0, Y - 1), np.clip(cand[:, 1].astype(int), 0, X - 1)]
        cand = cand[inside][:n]
        amorph = render_spots(shape, cand, rng.uniform(0.2, 0.9, len(cand)), width * rng.uniform(0.8, 1.6, len(cand)))
        soft = ndimage.gaussian_filter(cont_mask.astype(float), spacing / 2)
        image += amorph * soft + soft * rng.uniform(0.1, 0.5)
    yy, xx = np.mgrid[0:Y, 0:X] / max(Y, X)
    th = rng.uniform(0, 2 * np.pi)
    support = rng.uniform(0.0, 0.3)  # the film / substrate glow under atoms, absent in holes
    image += support * (1 - ndimage.gaussian_filter(hole_mask.astype(float), 2.0))
    image += rng.uniform(0, 0.5) * (np.cos(th) * xx + np.sin(th) * yy)
    image = ndimage.gaussian_filter(image, rng.uniform(0.0, 0.8))
    if rng.random() < 0.5:
        image = scan_jitter(image, rng, float(rng.uniform(0.0, 0.4)))
    if noise:
        image = np.clip(image, 0, None)
        image = add_noise(image, rng, dose=float(np.exp(rng.uniform(np.log(4.0), np.log(300.0)))),
                          read_noise=float(rng.uniform(0.0, 0.08)))
    image = (image - image.min()) / max(np.ptp(image), 1e-12)
    r = label_radius if label_radius is not None else float(np.clip(0.22 * spacing, 1.5, 3.0))
    labels = np.ones(shape, np.uint8)
    atoms = render_spots(shape, pos, 1.0, r / 2.0)  # value exp(-d²/(2(r/2)²)) ≥ exp(-2) ⇔ d ≤ r
    labels[atoms >= np.exp(-2.0) - 1e-9] = 2
    inside = (pos[:, 0] >= 0) & (pos[:, 0] < Y) & (pos[:, 1] >= 0) & (pos[:, 1] < X)
    return {"image": image.astype(np.float32), "labels": labels, "positions": pos[inside],
            "dopant": dopant[inside], "hole_mask": hole_mask, "spacing": spacing, "kind": kind}


def make_training_set(n: int, shape=(192, 192), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random images and labels, ``(n, Y, X)`` float32 and uint8."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    items = [make_atom_image(rng, shape) for _ in range(n)]
    return np.stack([d["image"] for d in items]), np.stack([d["labels"] for d in items])
