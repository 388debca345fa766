"""graphene-movie: HAADF-like Si-doped graphene under the electron beam, with exact ground truth.

A honeycomb lattice (two sublattices A/B, C–C spacing ``cc`` pixels) with an
optional rotated grain, ~1 % substitutional Si (Z-contrast (14/6)^1.7 × C) that
hop to neighbouring sites between frames, holes that nucleate and lose edge
atoms every frame, and Stone–Wales defects (one bond rotated by 90°, giving
5-7-7-5 rings) appearing over time. Atoms are probe-blurred Gaussian spots;
Poisson noise at ``dose``, Gaussian read noise, scan-line jitter and a slow
drift complete the picture.

The structure is an explicit graph (atoms + bonds), so ring sizes around each
atom are exact faces of the planar bond graph (see ``_graph``), never image
analysis. See ``docs/samples.md`` for the output keys.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._graph import crossing_pairs, edges_from_adjacency, planar_faces, ring_table
from ._util import check_positive_int, check_range, params_json, rngs, units_array
from .render import add_noise, render_spots, scan_jitter

SI_CONTRAST = (14.0 / 6.0) ** 1.7  # HAADF intensity ~ Z^1.7
CC_ANGSTROM = 1.42
SQ3 = np.sqrt(3.0)

ATOM_DTYPE = np.dtype(
    [
        ("frame", "i4"), ("id", "i4"), ("y", "f8"), ("x", "f8"), ("element", "i1"), ("class", "i1"),
        ("sublattice", "i1"), ("grain", "i1"), ("track_id", "i4"), ("defect", "i4"),
        ("n5", "i1"), ("n6", "i1"), ("n7", "i1"), ("n8", "i1"),
    ]
)
BOND_DTYPE = np.dtype([("frame", "i4"), ("i", "i4"), ("j", "i4")])
RING_DTYPE = np.dtype([("frame", "i4"), ("y", "f8"), ("x", "f8"), ("size", "i1")])
SW_DTYPE = np.dtype([("id", "i4"), ("frame", "i4"), ("atom_i", "i4"), ("atom_j", "i4"), ("y", "f8"), ("x", "f8")])


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1)


def _honeycomb(cc: float, angle: float, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Honeycomb sites within ``radius`` of ``centre``: positions (N,2) (y, x) and sublattice (N,)."""
    a1 = np.array([0.0, SQ3 * cc])
    a2 = np.array([1.5 * cc, SQ3 / 2 * cc])
    n = int(np.ceil(radius / (1.5 * cc))) + 3
    i, j = np.meshgrid(np.arange(-2 * n, 2 * n + 1), np.arange(-n, n + 1), indexing="ij")
    cells = i.ravel()[:, None] * a1 + j.ravel()[:, None] * a2
    pos = np.concatenate([cells, cells + np.array([cc, 0.0])])
    sub = np.repeat(np.array([0, 1], dtype=np.int8), len(cells))
    pos = _rotate(pos, angle) + centre
    keep = np.linalg.norm(pos - centre, axis=1) <= radius
    return pos[keep], sub[keep]


class _Sheet:
    """Mutable atom graph: positions (no drift), alive flags, elements, bonds."""

    def __init__(self, pos, sub, grain, cc):
        self.pos = pos
        self.sub = sub
        self.grain = grain
        self.cc = cc
        n = len(pos)
        self.alive = np.ones(n, dtype=bool)
        self.si = np.zeros(n, dtype=bool)
        self.track = np.full(n, -1, dtype=np.int32)
        self.defect = np.full(n, -1, dtype=np.int32)
        self.protected = np.zeros(n, dtype=bool)
        self.hole_edge = np.zeros(n, dtype=bool)
        self.adj: list[set[int]] = [set() for _ in range(n)]
        for i, j in cKDTree(pos).query_pairs(1.18 * cc):
            self.adj[i].add(j)
            self.adj[j].add(i)

    def degree(self) -> np.ndarray:
        return np.array([len(a) for a in self.adj])

    def edges(self) -> np.ndarray:
        return edges_from_adjacency(self.adj)

    def unbond(self, i: int, j: int) -> None:
        self.adj[i].discard(j)
        self.adj[j].discard(i)

    def remove(self, a: int, *, hole: bool = False) -> None:
        for nb in self.adj[a]:
            self.adj[nb].discard(a)
            if hole:
                self.hole_edge[nb] = True
        self.adj[a] = set()
        self.alive[a] = False
        self.si[a] = False
        self.track[a] = -1

    def rings(self) -> np.ndarray:
        counts, _ = ring_table(self.pos, self.edges())
        return counts

    def prune_dangling(self, only: np.ndarray | None = None) -> None:
        """Remove atoms with at most one bond, repeatedly (optionally only where ``only``)."""
        while True:
            deg = self.degree()
            bad = self.alive & (deg <= 1)
            if only is not None:
                bad &= only
            if not bad.any():
                return
            for a in np.flatnonzero(bad):
                self.remove(int(a), hole=True)


def _build_sheet(rng, size, cc, lattice_angle, grain, grain_angle, grain_radius, margin) -> _Sheet:
    centre = np.array([size / 2.0, size / 2.0])
    radius = (size / 2.0 + margin) * np.sqrt(2.0)
    pos, sub = _honeycomb(cc, lattice_angle, centre, radius)
    lo, hi = -margin, size + margin
    inside = np.all((pos >= lo) & (pos <= hi), axis=1)
    pos, sub = pos[inside], sub[inside]
    gflag = np.zeros(len(pos), dtype=np.int8)
    if grain:
        gc = centre + rng.uniform(-0.2, 0.2, 2) * size
        gr = grain_radius * size
        gpos, gsub = _honeycomb(cc, lattice_angle + grain_angle, gc, gr)
        keep_main = np.linalg.norm(pos - gc, axis=1) > gr
        pos = np.concatenate([pos[keep_main], gpos])
        sub = np.concatenate([sub[keep_main], gsub])
        gflag = np.concatenate([gflag[keep_main], np.ones(len(gpos), dtype=np.int8)])
        # drop grain atoms that sit too close to a matrix atom
        drop = np.zeros(len(pos), dtype=bool)
        for i, j in sorted(cKDTree(pos).query_pairs(0.85 * cc)):
            if drop[i] or drop[j]:
                continue
            drop[j if gflag[j] else i] = True
        pos, sub, gflag = pos[~drop], sub[~drop], gflag[~drop]
    sheet = _Sheet(pos, sub, gflag, cc)
    if grain:
        _clean_boundary(sheet)
    return sheet


def _clean_boundary(sheet: _Sheet) -> None:
    """Make the grain boundary a valid sp2 network: ≤ 3 bonds, no crossings, no 3-/4-rings, no dangling atoms."""
    cc = sheet.cc
    for _ in range(6):
        deg = sheet.degree()
        for a in np.flatnonzero(deg > 3):  # drop the longest bonds of over-coordinated atoms
            while len(sheet.adj[a]) > 3:
                nb = max(sheet.adj[a], key=lambda b: np.linalg.norm(sheet.pos[a] - sheet.pos[b]))
                sheet.unbond(int(a), nb)
        edges = sheet.edges()
        for e1, e2 in crossing_pairs(sheet.pos, edges, 1.2 * cc):
            long_e = max((e1, e2), key=lambda e: np.linalg.norm(np.subtract(*sheet.pos[edges[e]])))
            sheet.unbond(int(edges[long_e, 0]), int(edges[long_e, 1]))
        small = [f for f in planar_faces(sheet.pos, sheet.edges()) if len(f) < 5 and len(np.unique(f)) == len(f)]
        for face in small:
            victims = [a for a in face if sheet.alive[a] and sheet.grain[a]] or [a for a in face if sheet.alive[a]]
            if victims:
                sheet.remove(int(victims[0]))
        sheet.prune_dangling()
        if not small and not (sheet.degree() > 3).any():
            break
    sheet.hole_edge[:] = False


def _add_stone_wales(rng, sheet: _Sheet, rings: np.ndarray, interior: np.ndarray, defect_id: int):
    """Rotate one pristine bond by 90°; returns (i, j) or None when no site qualifies."""
    cc = sheet.cc
    deg = sheet.degree()
    pristine = sheet.alive & (rings[:, 1] == 3) & (deg == 3) & ~sheet.protected & ~sheet.si & ~sheet.hole_edge
    cand = np.flatnonzero(pristine & interior)
    rng.shuffle(cand)
    near_edge = cKDTree(sheet.pos[sheet.hole_edge & sheet.alive]) if (sheet.hole_edge & sheet.alive).any() else None
    for i in cand:
        for j in sorted(sheet.adj[i]):
            ring_atoms = sheet.adj[i] | sheet.adj[j]
            if not all(pristine[b] for b in ring_atoms):
                continue
            if not all(pristine[c] for b in ring_atoms for c in sheet.adj[b]):
                continue
            mid = 0.5 * (sheet.pos[i] + sheet.pos[j])
            if near_edge is not None and near_edge.query(mid)[0] < 4 * cc:
                continue
            half = 0.5 * (sheet.pos[i] - sheet.pos[j]) * 0.95  # the rotated bond is slightly shorter
            rot = np.array([-half[1], half[0]])
            others = sorted((sheet.adj[i] | sheet.adj[j]) - {i, j})
            for b in others:
                sheet.unbond(i, b)
                sheet.unbond(j, b)
            sheet.pos[i] = mid + rot
            sheet.pos[j] = mid - rot
            di = {b: np.linalg.norm(sheet.pos[i] - sheet.pos[b]) for b in others}
            near_i = sorted(others, key=di.get)[:2]
            for b in others:
                k = i if b in near_i else j
                sheet.adj[k].add(b)
                sheet.adj[b].add(k)
            sheet.defect[[i, j]] = defect_id
            close = np.linalg.norm(sheet.pos - mid, axis=1) < 3.2 * cc
            sheet.protected |= close
            return int(i), int(j)
    return None


def _nucleate_hole(rng, sheet: _Sheet, interior: np.ndarray) -> bool:
    cc = sheet.cc
    cand = np.flatnonzero(sheet.alive & interior & ~sheet.protected & ~sheet.si & ~sheet.hole_edge)
    if len(cand) == 0:
        return False
    edge_pts = sheet.pos[(sheet.hole_edge | ~sheet.alive) & interior]
    tree = cKDTree(edge_pts) if len(edge_pts) else None
    rng.shuffle(cand)
    for c in cand:
        if tree is not None and tree.query(sheet.pos[c])[0] < 8 * cc:
            continue
        victims = [c] + [b for b in sheet.adj[c] if not sheet.protected[b] and not sheet.si[b]]
        for b in victims:
            sheet.remove(int(b), hole=True)
        sheet.prune_dangling(only=sheet.hole_edge)
        return True
    return False


def _grow_holes(rng, sheet: _Sheet, growth: float) -> None:
    edge = np.flatnonzero(sheet.alive & sheet.hole_edge & ~sheet.protected & ~sheet.si)
    for a in edge[rng.random(len(edge)) < growth]:
        sheet.remove(int(a), hole=True)
    sheet.prune_dangling(only=sheet.hole_edge)


def _hop_si(rng, sheet: _Sheet, probability: float) -> None:
    for a in np.flatnonzero(sheet.si & sheet.alive):
        if rng.random() >= probability:
            continue
        targets = [b for b in sorted(sheet.adj[a]) if not sheet.si[b] and sheet.defect[b] < 0]
        if not targets:
            continue
        b = targets[int(rng.integers(len(targets)))]
        sheet.si[b], sheet.track[b] = True, sheet.track[a]
        sheet.si[a], sheet.track[a] = False, -1


def _masks(positions: np.ndarray, is_si: np.ndarray, size: int, cc: float, label_radius: float, pad: int):
    """Per-class labels (1 background, 2 C, 3 Si) and the hole mask (farther than 1.4·cc from any atom)."""
    grid = size + 2 * pad
    rc = np.rint(positions).astype(np.int64) + pad
    ok = np.all((rc >= 0) & (rc < grid), axis=1)
    rc, cls = rc[ok], np.where(is_si[ok], 3, 2).astype(np.uint8)
    seeds = np.ones((grid, grid), dtype=bool)
    seeds[rc[:, 0], rc[:, 1]] = False
    cls_img = np.ones((grid, grid), dtype=np.uint8)
    cls_img[rc[:, 0], rc[:, 1]] = cls
    dist, (iy, ix) = ndimage.distance_transform_edt(seeds, return_indices=True)
    labels = np.where(dist <= label_radius, cls_img[iy, ix], 1).astype(np.uint8)
    holes = dist > 1.4 * cc
    sl = slice(pad, pad + size)
    return labels[sl, sl], holes[sl, sl]


def graphene_movie(
    seed: int = 0,
    frames: int = 20,
    size: int = 512,
    *,
    cc: float = 12.0,
    probe_sigma: float | None = None,
    lattice_angle: float = 0.15,
    si_fraction: float = 0.01,
    si_hop: float = 0.3,
    n_holes: int = 3,
    hole_growth: float = 0.2,
    n_stone_wales: int = 4,
    grain: bool = True,
    grain_angle: float = 0.3,
    grain_radius: float = 0.17,
    dose: float = 40.0,
    read_noise: float = 0.03,
    jitter: float = 0.3,
    drift: tuple[float, float] = (3.0, 5.0),
    noise: bool = True,
) -> dict:
    """Generate the graphene movie and its ground truth.

    Parameters
    ----------
    seed : int
        Random seed; the same seed gives the same movie and truth.
    frames, size : int
        Movie shape ``(frames, size, size)``.
    cc : float
        C–C bond length in pixels (pixel size = 0.142 nm / ``cc``).
    probe_sigma : float, optional
        Gaussian probe width in pixels (default ``0.25 * cc``).
    lattice_angle : float
        Lattice orientation (radians).
    si_fraction : float
        Fraction of atoms in the field of view replaced by Si.
    si_hop : float
        Probability per frame that a Si swaps with a neighbouring C.
    n_holes, hole_growth : int, float
        Number of holes (nucleating in the first half of the movie) and the
        probability per frame that each hole-edge C atom is sputtered.
    n_stone_wales : int
        Stone–Wales defects, appearing at random frames ≥ 1.
    grain, grain_angle, grain_radius : bool, float, float
        A rotated grain (misorientation in radians, radius as a fraction of ``size``).
    dose, read_noise, jitter : float
        Counts per unit intensity (a C peak is 1), Gaussian read noise, scan-line jitter (pixels).
    drift : (dy, dx)
        Total linear drift over the movie (pixels).
    noise : bool
        ``False`` renders the noiseless movie (same ground truth).

    Returns
    -------
    dict
        ``data`` (T, Y, X) float32, ``scale``, ``units``, ``atoms``, ``bonds``,
        ``rings``, ``stone_wales``, ``labels`` (T, Y, X) uint8, ``hole_masks``
        (T, Y, X) bool, ``params`` (JSON). See ``docs/samples.md``.
    """
    frames = check_positive_int("frames", frames)
    size = check_positive_int("size", size, 32)
    cc = check_range("cc", cc, 4.0, 100.0)
    sigma = 0.25 * cc if probe_sigma is None else check_range("probe_sigma", probe_sigma, 0.3, cc)
    si_fraction = check_range("si_fraction", si_fraction, 0.0, 0.2)
    si_hop = check_range("si_hop", si_hop, 0.0, 1.0)
    hole_growth = check_range("hole_growth", hole_growth, 0.0, 1.0)
    n_holes = check_positive_int("n_holes", n_holes, 0)
    n_stone_wales = check_positive_int("n_stone_wales", n_stone_wales, 0)
    grain_radius = check_range("grain_radius", grain_radius, 0.02, 0.45)
    dose = check_range("dose", dose, 1e-3, 1e9)
    drift = np.asarray(drift, dtype=np.float64).reshape(2)
    params = dict(seed=seed, frames=frames, size=size, cc=cc, probe_sigma=sigma, lattice_angle=lattice_angle,
                  si_fraction=si_fraction, si_hop=si_hop, n_holes=n_holes, hole_growth=hole_growth,
                  n_stone_wales=n_stone_wales, grain=bool(grain), grain_angle=grain_angle,
                  grain_radius=grain_radius, dose=dose, read_noise=read_noise, jitter=jitter,
                  drift=drift, noise=bool(noise))
    rng, rng_noise = rngs(seed)

    margin = 3 * cc + float(np.abs(drift).max()) + 2
    sheet = _build_sheet(rng, size, cc, lattice_angle, grain, grain_angle, grain_radius, margin)
    edge_gap = 4 * cc
    interior = np.all((sheet.pos > edge_gap) & (sheet.pos < size - edge_gap), axis=1)
    in_view = np.all((sheet.pos >= 0) & (sheet.pos <= size - 1), axis=1)
    pool = np.flatnonzero(in_view & sheet.alive & (sheet.degree() == 3))
    n_si = int(round(si_fraction * in_view.sum()))
    chosen = rng.choice(pool, size=min(n_si, len(pool)), replace=False) if n_si else np.zeros(0, int)
    sheet.si[chosen] = True
    sheet.track[chosen] = np.arange(len(chosen), dtype=np.int32)
    hole_frames = np.sort(rng.integers(0, max(1, frames // 2), n_holes))
    sw_frames = np.sort(rng.integers(1, max(2, frames), n_stone_wales))
    t_frac = np.arange(frames) / max(frames - 1, 1)
    wobble = 0.4 * np.stack([np.sin(2 * np.pi * t_frac * 1.3), np.cos(2 * np.pi * t_frac * 0.7) - 1], axis=1)
    drifts = t_frac[:, None] * drift[None, :] + wobble

    atoms, bonds, rings_out, sws = [], [], [], []
    data = np.empty((frames, size, size), dtype=np.float32)
    labels = np.empty((frames, size, size), dtype=np.uint8)
    holes = np.empty((frames, size, size), dtype=bool)
    for t in range(frames):
        if t > 0:
            _hop_si(rng, sheet, si_hop)
            _grow_holes(rng, sheet, hole_growth)
        for _ in range(int((hole_frames == t).sum())):
            _nucleate_hole(rng, sheet, interior)
        counts, ring_list = ring_table(sheet.pos, sheet.edges())
        for _ in range(int((sw_frames == t).sum())):
            pair = _add_stone_wales(rng, sheet, counts, interior, len(sws))
            if pair is not None:
                mid = 0.5 * (sheet.pos[pair[0]] + sheet.pos[pair[1]]) + drifts[t]
                sws.append((len(sws), t, pair[0], pair[1], mid[0], mid[1]))
                counts, ring_list = ring_table(sheet.pos, sheet.edges())
        pos_t = sheet.pos + drifts[t]
        alive = sheet.alive
        vis = alive & np.all((pos_t >= 0) & (pos_t <= size - 1), axis=1)
        idx = np.flatnonzero(vis)
        rows = np.zeros(len(idx), dtype=ATOM_DTYPE)
        rows["frame"], rows["id"] = t, idx
        rows["y"], rows["x"] = pos_t[idx, 0], pos_t[idx, 1]
        rows["element"] = np.where(sheet.si[idx], 14, 6)
        rows["class"] = sheet.si[idx].astype(np.int8)
        rows["sublattice"], rows["grain"] = sheet.sub[idx], sheet.grain[idx]
        rows["track_id"], rows["defect"] = sheet.track[idx], sheet.defect[idx]
        for k, name in enumerate(("n5", "n6", "n7", "n8")):
            rows[name] = counts[idx, k]
        atoms.append(rows)
        e = sheet.edges()
        e = e[vis[e[:, 0]] & vis[e[:, 1]]]
        b = np.zeros(len(e), dtype=BOND_DTYPE)
        b["frame"], b["i"], b["j"] = t, e[:, 0], e[:, 1]
        bonds.append(b)
        if ring_list:
            centres = np.array([pos_t[r].mean(axis=0) for r in ring_list])
            rsize = np.array([len(r) for r in ring_list])
            ok = np.all((centres >= 0) & (centres <= size - 1), axis=1)
            r = np.zeros(int(ok.sum()), dtype=RING_DTYPE)
            r["frame"], r["y"], r["x"], r["size"] = t, centres[ok, 0], centres[ok, 1], rsize[ok]
            rings_out.append(r)
        amps = np.where(sheet.si[alive], SI_CONTRAST, 1.0)
        image = render_spots((size, size), pos_t[alive], amps, sigma) + 0.02
        if noise:
            image = add_noise(image, rng_noise, dose=dose, read_noise=read_noise)
            image = scan_jitter(image, rng_noise, jitter)
        data[t] = image
        labels[t], holes[t] = _masks(pos_t[alive], sheet.si[alive], size, cc, 0.3 * cc, int(2 * cc))

    pixel_nm = CC_ANGSTROM / 10.0 / cc
    return {
        "data": data,
        "scale": np.array([1.0, pixel_nm, pixel_nm]),
        "units": units_array("", "nm", "nm"),
        "atoms": np.concatenate(atoms),
        "bonds": np.concatenate(bonds),
        "rings": np.concatenate(rings_out) if rings_out else np.zeros(0, RING_DTYPE),
        "stone_wales": np.array(sws, dtype=SW_DTYPE),
        "labels": labels,
        "hole_masks": holes,
        "drift": drifts.astype(np.float64),
        "params": params_json(params),
    }
