"""Small graphene-like test scenes with exact ground truth, for detection tests and benchmarks.

A honeycomb lattice (bond length in pixels) rendered with
:func:`napari_rvae.synth.render.render_spots`, with optional brighter dopants
("Si"), round holes (atoms removed) and Stone–Wales defects (one bond rotated
by 90° about its midpoint, unrelaxed). The full physical graphene movie lives
in :mod:`napari_rvae.synth`; this is deliberately minimal.
"""

from __future__ import annotations

import numpy as np

from ..synth.render import add_noise, render_spots


def honeycomb(shape: tuple[int, int], bond: float, *, angle: float = 0.0, offset=(0.0, 0.0)) -> np.ndarray:
    """Honeycomb atom positions ``(N, 2)`` ``(y, x)`` in pixels covering a frame of ``shape``.

    ``bond`` is the nearest-neighbour distance (pixels), ``angle`` the lattice
    rotation (radians), ``offset`` a sub-pixel shift of the lattice origin.
    """
    if bond <= 1:
        raise ValueError(f"bond: must exceed 1 pixel, got {bond}")
    Y, X = shape
    a = np.sqrt(3.0) * bond
    a1 = np.array([a, 0.0])
    a2 = np.array([0.5 * a, 1.5 * bond])
    basis = np.array([[0.0, 0.0], (a1 + a2) / 3.0])
    n = int(np.ceil(np.hypot(Y, X) / (1.5 * bond))) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    cells = i.ravel()[:, None] * a1 + j.ravel()[:, None] * a2
    xy = (cells[:, None, :] + basis[None]).reshape(-1, 2)
    c, s = np.cos(angle), np.sin(angle)
    xy = xy @ np.array([[c, s], [-s, c]])
    yx = np.stack([xy[:, 1] + Y / 2 + offset[0], xy[:, 0] + X / 2 + offset[1]], axis=1)
    inside = (yx[:, 0] >= 0) & (yx[:, 0] <= Y - 1) & (yx[:, 1] >= 0) & (yx[:, 1] <= X - 1)
    return yx[inside]


def bonds_of(yx: np.ndarray, bond: float, tolerance: float = 1.2) -> np.ndarray:
    """Pairs ``(M, 2)`` of atoms closer than ``tolerance × bond`` (the true bond list of a scene)."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(yx).query_pairs(tolerance * bond, output_type="ndarray")
    return pairs.reshape(-1, 2)


def stone_wales(yx: np.ndarray, i: int, j: int) -> np.ndarray:
    """Rotate the bond between atoms ``i`` and ``j`` by 90° about its midpoint (copy)."""
    out = np.array(yx, dtype=np.float64, copy=True)
    mid = 0.5 * (out[i] + out[j])
    for k in (i, j):
        d = out[k] - mid
        out[k] = mid + np.array([-d[1], d[0]])
    return out


def graphene_scene(
    shape=(128, 128),
    bond: float = 8.0,
    *,
    seed: int = 0,
    angle: float | None = None,
    n_si: int = 4,
    si_ratio: float = 3.0,
    holes: int = 0,
    hole_radius: float = 14.0,
    stone_wales_defects: int = 0,
    sigma: float = 1.4,
    dose: float | None = 200.0,
    read_noise: float = 0.05,
    margin: float = 10.0,
) -> dict:
    """One noisy graphene-like frame and its truth.

    Returns
    -------
    scene : dict
        ``image`` (Y, X) float64; ``yx`` (N, 2) true positions (pixels);
        ``is_si`` (N,) bool; ``bond`` (pixels); ``holes`` list of
        ``(y, x, radius)``; ``sw_pairs`` (K, 2) indices of the rotated atoms;
        ``sw_atoms`` indices of every atom within one bond of a rotated pair.
        Dopants, holes and defects are placed at least ``margin`` pixels from
        the border and apart from each other.
    """
    rng = np.random.default_rng(seed)
    Y, X = shape
    if angle is None:
        angle = rng.uniform(0, np.pi / 3)
    yx = honeycomb(shape, bond, angle=angle, offset=rng.uniform(0, bond, 2))
    hole_list = []
    for _ in range(holes):
        cy, cx = rng.uniform(margin + hole_radius, Y - margin - hole_radius), rng.uniform(
            margin + hole_radius, X - margin - hole_radius
        )
        hole_list.append((float(cy), float(cx), float(hole_radius)))
    keep = np.ones(len(yx), dtype=bool)
    for cy, cx, r in hole_list:
        keep &= np.hypot(yx[:, 0] - cy, yx[:, 1] - cx) > r
    yx = yx[keep]
    interior = (yx[:, 0] > margin) & (yx[:, 0] < Y - 1 - margin) & (yx[:, 1] > margin) & (yx[:, 1] < X - 1 - margin)
    for cy, cx, r in hole_list:  # defects and dopants away from hole edges
        interior &= np.hypot(yx[:, 0] - cy, yx[:, 1] - cx) > r + 2.5 * bond
    pairs = bonds_of(yx, bond, 1.1)
    sw_pairs: list[tuple[int, int]] = []
    used = np.zeros(len(yx), dtype=bool)
    for idx in rng.permutation(len(pairs)):
        if len(sw_pairs) >= stone_wales_defects:
            break
        i, j = pairs[idx]
        if not (interior[i] and interior[j]):
            continue
        mid = 0.5 * (yx[i] + yx[j])
        near = np.hypot(*(yx - mid).T) < 3.5 * bond
        if used[near].any():
            continue
        used[near] = True
        yx = stone_wales(yx, i, j)
        sw_pairs.append((int(i), int(j)))
    sw_atoms = np.zeros(len(yx), dtype=bool)
    for i, j in sw_pairs:
        mid = 0.5 * (yx[i] + yx[j])
        sw_atoms |= np.hypot(*(yx - mid).T) < 1.6 * bond
    candidates = np.flatnonzero(interior & ~used)
    si = rng.choice(candidates, size=min(n_si, len(candidates)), replace=False) if n_si else np.zeros(0, int)
    is_si = np.zeros(len(yx), dtype=bool)
    is_si[si] = True
    amplitudes = np.where(is_si, si_ratio, 1.0)
    clean = render_spots(shape, yx, amplitudes, sigma)
    image = add_noise(clean, rng, dose=dose, read_noise=read_noise)
    return {
        "image": image,
        "clean": clean,
        "yx": yx,
        "is_si": is_si,
        "bond": float(bond),
        "sigma": float(sigma),
        "holes": hole_list,
        "sw_pairs": np.asarray(sw_pairs, dtype=np.int64).reshape(-1, 2),
        "sw_atoms": np.flatnonzero(sw_atoms),
    }


def probability_maps(shape, yx, classes, n_classes: int = 2, radius: float = 2.5) -> np.ndarray:
    """Clean segmenter-like maps ``(C + 1, Y, X)``: a soft disc per atom in its class channel."""
    Y, X = shape
    maps = np.zeros((n_classes + 1, Y, X))
    for c in range(n_classes):
        sel = np.asarray(classes) == c
        maps[c + 1] = np.clip(render_spots(shape, yx[sel], 1.0, radius / 1.5), 0, 1)
    maps[0] = np.clip(1.0 - maps[1:].sum(0), 0, 1)
    return maps / np.maximum(maps.sum(0, keepdims=True), 1e-12)
