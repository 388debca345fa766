"""Exact ring topology of a straight-line planar atom graph (numpy + scipy only).

Rings are the faces of the planar embedding: every directed bond (half-edge)
``u → v`` is followed by ``v → w`` where ``w`` is the neighbour of ``v`` that
comes right before ``u`` in the angular order around ``v``. Each half-edge lies
on exactly one face, so walking this permutation lists every face once. A face
with ``k`` distinct atoms and ``k`` half-edges is a ``k``-membered ring; large
faces are openings (holes, the outer boundary) and are not rings.

This is topology, not image analysis: the ring sizes are exact for the bond
list given.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def edges_from_adjacency(adjacency: list[set[int]], alive: np.ndarray | None = None) -> np.ndarray:
    """Undirected bond list ``(M, 2)`` int64 with ``i < j`` from adjacency sets."""
    pairs = [(i, j) for i, nb in enumerate(adjacency) for j in nb if i < j]
    if alive is not None:
        pairs = [(i, j) for i, j in pairs if alive[i] and alive[j]]
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.asarray(sorted(pairs), dtype=np.int64)


def planar_faces(positions: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """Faces of a straight-line planar graph.

    Parameters
    ----------
    positions : (N, 2) float
        Atom positions ``(y, x)`` in pixels.
    edges : (M, 2) int
        Undirected bonds (each listed once).

    Returns
    -------
    faces : list of (k,) int arrays
        Atom indices around each face, in walking order (a face that touches
        a dangling bond lists an atom more than once).
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) == 0:
        return []
    src = np.concatenate([edges[:, 0], edges[:, 1]])
    dst = np.concatenate([edges[:, 1], edges[:, 0]])
    d = positions[dst] - positions[src]
    ang = np.arctan2(d[:, 0], d[:, 1])
    order = np.lexsort((ang, src))  # half-edges grouped by source, by angle
    src, dst = src[order], dst[order]
    m = len(src)
    # position of each half-edge within its source block, and block starts
    starts = np.searchsorted(src, src, side="left")
    ends = np.searchsorted(src, src, side="right")
    # twin lookup: key (src, dst) -> index
    key = src * (int(positions.shape[0]) + 1) + dst
    key_sorted = np.argsort(key)
    twin_key = dst * (int(positions.shape[0]) + 1) + src
    twin = key_sorted[np.searchsorted(key[key_sorted], twin_key)]
    # next(h = u->v) = rotation-predecessor of twin (v->u) within v's block
    t = twin
    prev_in_block = np.where(t - 1 >= starts[t], t - 1, ends[t] - 1)
    nxt = prev_in_block
    seen = np.zeros(m, dtype=bool)
    faces = []
    for h0 in range(m):
        if seen[h0]:
            continue
        cycle = []
        h = h0
        while not seen[h]:
            seen[h] = True
            cycle.append(src[h])
            h = nxt[h]
        faces.append(np.asarray(cycle, dtype=np.int64))
    return faces


def ring_table(
    positions: np.ndarray, edges: np.ndarray, sizes: tuple[int, ...] = (5, 6, 7, 8)
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ring counts per atom and the rings themselves.

    Parameters
    ----------
    positions : (N, 2) float
        Atom positions in pixels.
    edges : (M, 2) int
        Bonds.
    sizes : tuple of int
        Ring sizes to count (a face with repeated atoms is never a ring).

    Returns
    -------
    counts : (N, len(sizes)) int16
        ``counts[i, k]`` = number of rings of size ``sizes[k]`` containing atom ``i``.
    rings : list of (k,) int arrays
        Atom indices of every ring of a counted size.
    """
    n = int(positions.shape[0])
    counts = np.zeros((n, len(sizes)), dtype=np.int16)
    rings = []
    col = {s: k for k, s in enumerate(sizes)}
    for face in planar_faces(positions, edges):
        k = len(face)
        if k in col and len(set(face.tolist())) == k:
            counts[face, col[k]] += 1
            rings.append(face)
    return counts, rings


def crossing_pairs(positions: np.ndarray, edges: np.ndarray, reach: float) -> list[tuple[int, int]]:
    """Pairs of edge indices whose segments cross (sharing no atom).

    ``reach`` (pixels) bounds the edge length; only edges whose midpoints are
    closer than ``reach`` are tested.
    """
    if len(edges) < 2:
        return []
    p, q = positions[edges[:, 0]], positions[edges[:, 1]]
    mid = 0.5 * (p + q)
    cand = np.asarray(sorted(cKDTree(mid).query_pairs(reach)), dtype=np.int64).reshape(-1, 2)
    if len(cand) == 0:
        return []
    a, b = cand[:, 0], cand[:, 1]
    share = (
        (edges[a, 0] == edges[b, 0])
        | (edges[a, 0] == edges[b, 1])
        | (edges[a, 1] == edges[b, 0])
        | (edges[a, 1] == edges[b, 1])
    )

    def orient(o, s, r):
        return (s[:, 1] - o[:, 1]) * (r[:, 0] - o[:, 0]) - (s[:, 0] - o[:, 0]) * (r[:, 1] - o[:, 1])

    d1 = orient(p[a], q[a], p[b])
    d2 = orient(p[a], q[a], q[b])
    d3 = orient(p[b], q[b], p[a])
    d4 = orient(p[b], q[b], q[a])
    cross = (d1 * d2 < 0) & (d3 * d4 < 0) & ~share
    return [(int(i), int(j)) for i, j in cand[cross]]
