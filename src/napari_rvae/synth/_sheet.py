"""The graphene sheet as an explicit atom graph, and the events that change it between frames.

Used by ``graphene.py``. Positions are in pixels without drift; bonds are
adjacency sets; every event (Si hop, hole nucleation / growth, Stone–Wales
rotation) edits the graph, so ring sizes stay exact topology.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ._graph import crossing_pairs, edges_from_adjacency, planar_faces, ring_table

SQ3 = np.sqrt(3.0)

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
        zone = np.abs(np.linalg.norm(pos - gc, axis=1) - gr) < 2.5 * cc
        _clean_boundary(sheet)
        _stitch_boundary(sheet, zone)
        _clean_boundary(sheet)
    return sheet


def _near_in_graph(adj: list[set[int]], i: int, j: int, depth: int) -> bool:
    """True if ``j`` is within ``depth`` bonds of ``i`` (bonding them would close a ring smaller than depth + 2)."""
    frontier, seen = {i}, {i}
    for _ in range(depth):
        frontier = {b for a in frontier for b in adj[a]} - seen
        if j in frontier:
            return True
        seen |= frontier
    return False


def _stitch_boundary(sheet: _Sheet, zone: np.ndarray, rounds: int = 3, steps: int = 80) -> None:
    """Close the gaps of the grain boundary: bond under-coordinated atoms across it, then relax.

    Under-coordinated atoms in ``zone`` that are less than 1.75·cc apart get a
    bond (unless it would close a ring of fewer than 5 atoms); a spring
    relaxation (bond rest length cc, non-bonded atoms pushed beyond 1.5·cc)
    then moves the zone's atoms. Bonds left outside 0.82–1.18·cc are dropped,
    so the bond list stays physical.
    """
    cc = sheet.cc
    for _ in range(rounds):
        movable = zone & sheet.alive
        deg = sheet.degree()
        under = np.flatnonzero(movable & (deg < 3))
        if len(under) >= 2:
            pairs = np.asarray(sorted(cKDTree(sheet.pos[under]).query_pairs(1.75 * cc)), dtype=np.int64).reshape(-1, 2)
            if len(pairs):
                d = np.linalg.norm(sheet.pos[under[pairs[:, 0]]] - sheet.pos[under[pairs[:, 1]]], axis=1)
                for p, q in pairs[np.argsort(d)]:
                    i, j = int(under[p]), int(under[q])
                    if len(sheet.adj[i]) >= 3 or len(sheet.adj[j]) >= 3 or j in sheet.adj[i]:
                        continue
                    if _near_in_graph(sheet.adj, i, j, 3):
                        continue
                    sheet.adj[i].add(j)
                    sheet.adj[j].add(i)
        pos = sheet.pos
        edges = sheet.edges()  # bonds do not change while relaxing
        e = edges[movable[edges[:, 0]] | movable[edges[:, 1]]]
        for step in range(steps):
            force = np.zeros_like(pos)
            vec = pos[e[:, 1]] - pos[e[:, 0]]
            length = np.linalg.norm(vec, axis=1, keepdims=True)
            pull = (length - cc) / np.maximum(length, 1e-9) * vec
            np.add.at(force, e[:, 0], pull)
            np.add.at(force, e[:, 1], -pull)
            if step % 10 == 0:
                idx = np.flatnonzero(sheet.alive & (zone | movable))
                close = np.asarray(sorted(cKDTree(pos[idx]).query_pairs(1.5 * cc)), dtype=np.int64).reshape(-1, 2)
                close = idx[close] if len(close) else close
                if len(close):
                    bonded = np.array([b in sheet.adj[a] for a, b in close], dtype=bool)
                    close = close[~bonded]
            if len(close):
                vec = pos[close[:, 1]] - pos[close[:, 0]]
                length = np.linalg.norm(vec, axis=1, keepdims=True)
                push = np.clip(1.5 * cc - length, 0, None) / np.maximum(length, 1e-9) * vec
                np.add.at(force, close[:, 0], -push)
                np.add.at(force, close[:, 1], push)
            move = 0.25 * force[movable]
            norm = np.linalg.norm(move, axis=1, keepdims=True)
            pos[movable] += move * np.minimum(1.0, 0.1 * cc / np.maximum(norm, 1e-9))
        for i, j in sheet.edges():
            if not 0.82 * cc <= np.linalg.norm(pos[i] - pos[j]) <= 1.18 * cc:
                sheet.unbond(int(i), int(j))
        sheet.prune_dangling()


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
