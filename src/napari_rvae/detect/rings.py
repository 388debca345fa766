"""Rings of the atom graph (5–8 members), per-atom ring counts and hollow sites.

Why faces of the geometric embedding: atoms of a 2D material sit in the plane
and bonds do not cross, so the bond graph drawn at the atom positions is a
plane graph and its rings are exactly its bounded *faces*. Tracing faces
(at each atom turn to the next bond in angular order) is exact and linear in
the number of bonds, handles defects (5-7-7-5 Stone–Wales, 8-rings), edges
and holes (a hole's boundary is a bounded face with more than 8 members and is
dropped; the outer boundary of a flake is traced with the opposite orientation
and is dropped). ``networkx.minimum_cycle_basis`` would give the same rings on a
perfect sheet but is not unique at defects, costs O(E² V), and ``simple_cycles``
(used by ChemDisc) counts non-minimal cycles. Atoms of degree ≤ 1 (dangling)
cannot lie on a ring and are pruned first (the 2-core), so a dangling atom
inside a ring does not break it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..io.sites import make_sites
from ._checks import nearest_neighbour_distance, positions_of

RING_SIZES = (5, 6, 7, 8)
# Bonded when 0.5 L < d < 1.25 L (L = median nearest-neighbour distance). Second
# neighbours of graphene sit at √3 L = 1.73 L. 1.2 L (the first guess) drops the
# stretched bonds of some Stone–Wales defects in the graphene-movie sample (1.20 L), while
# unbonded pairs at grain boundaries and defects start at ≈ 1.27 L there. AtomAI's
# covalent-radius rule (radii sum × 1.2) is 1.28 L for C–C.
BOND_RANGE = (0.5, 1.25)
COUNT_COLUMNS = tuple(f"n{k}" for k in RING_SIZES)


def bond_pairs(yx: np.ndarray, bond_length: float | None = None, bond_range=BOND_RANGE) -> np.ndarray:
    """Bonds ``(M, 2)`` between atoms at distance ``bond_range[0]·L < d < bond_range[1]·L``.

    ``L`` (pixels) is ``bond_length`` or the median nearest-neighbour distance.
    """
    from scipy.spatial import cKDTree

    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    if len(yx) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    low, high = _bond_limits(yx, bond_length, bond_range)
    pairs = cKDTree(yx).query_pairs(high, output_type="ndarray").reshape(-1, 2)
    d = np.hypot(*(yx[pairs[:, 0]] - yx[pairs[:, 1]]).T)
    return pairs[d > low]


def _bond_limits(yx, bond_length, bond_range) -> tuple[float, float]:
    lo, hi = float(bond_range[0]), float(bond_range[1])
    if not 0 <= lo < hi:
        raise ValueError(f"bond_range: expected (low, high) with 0 ≤ low < high, got {bond_range}")
    length = nearest_neighbour_distance(yx) if bond_length is None else float(bond_length)
    if not np.isfinite(length) or length <= 0:
        raise ValueError(f"bond_length: must be a positive number of pixels, got {length}")
    return lo * length, hi * length


def bond_graph(yx: np.ndarray, bond_length: float | None = None, bond_range=BOND_RANGE):
    """The atom graph as a ``networkx.Graph``; nodes are row indices with a ``pos`` (y, x) attribute."""
    import networkx as nx

    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    graph = nx.Graph()
    graph.add_nodes_from((i, {"pos": (float(p[0]), float(p[1]))}) for i, p in enumerate(yx))
    graph.add_edges_from(map(tuple, bond_pairs(yx, bond_length, bond_range)))
    return graph


def _rotation_system(yx: np.ndarray, neighbours: list[np.ndarray]) -> tuple[list, list]:
    """Neighbours of each atom sorted by angle, and each neighbour's rank in that order."""
    order, rank = [], []
    for v, nb in enumerate(neighbours):
        if len(nb) == 0:
            order.append(nb)
            rank.append({})
            continue
        d = yx[nb] - yx[v]
        nb = nb[np.argsort(np.arctan2(d[:, 0], d[:, 1]))]
        order.append(nb)
        rank.append({int(u): k for k, u in enumerate(nb)})
    return order, rank


def _trace(u: int, v: int, order, rank, max_size: int) -> list[int] | None:
    """Walk the face to the left of half-edge u→v; None if longer than ``max_size`` or not simple."""
    start = (u, v)
    ring = [u]
    for _ in range(max_size):
        nb = order[v]
        w = int(nb[(rank[v][u] - 1) % len(nb)])
        u, v = v, w
        if (u, v) == start:
            return ring
        if u in ring:
            return None
        ring.append(u)
    return None


def _signed_area(points: np.ndarray) -> float:
    y, x = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _two_core(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Adjacency lists after repeatedly removing atoms with fewer than two bonds."""
    adjacency = [set() for _ in range(n)]
    for a, b in pairs:
        adjacency[a].add(int(b))
        adjacency[b].add(int(a))
    stack = [v for v in range(n) if len(adjacency[v]) == 1]
    while stack:
        v = stack.pop()
        for u in list(adjacency[v]):
            adjacency[u].discard(v)
            if len(adjacency[u]) == 1:
                stack.append(u)
        adjacency[v].clear()
    return [np.fromiter(sorted(a), dtype=np.int64, count=len(a)) for a in adjacency]


def find_rings_in_frame(
    yx: np.ndarray, bond_length: float | None = None, bond_range=BOND_RANGE, sizes=(5, 8)
) -> list[np.ndarray]:
    """Rings (faces of the bond graph) of ``sizes[0]``–``sizes[1]`` members in one frame.

    Returns a list of atom-index arrays, each ring in boundary order.
    """
    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    lo, hi = int(sizes[0]), int(sizes[1])
    if not 3 <= lo <= hi:
        raise ValueError(f"sizes: expected (smallest, largest) ring size ≥ 3, got {sizes}")
    if len(yx) < lo:
        return []
    neighbours = _two_core(len(yx), bond_pairs(yx, bond_length, bond_range))
    order, rank = _rotation_system(yx, neighbours)
    seen: set[tuple[int, int]] = set()
    rings = []
    for u in range(len(yx)):
        for v in order[u]:
            v = int(v)
            if (u, v) in seen:
                continue
            ring = _trace(u, v, order, rank, hi)
            if ring is None:
                continue
            seen.update(zip(ring, ring[1:] + ring[:1]))
            # bounded faces come out clockwise in (x right, y down) image axes: positive area here
            if len(ring) >= lo and _signed_area(yx[ring]) > 0:
                rings.append(np.asarray(ring, dtype=np.int64))
    return rings


def ring_counts_at(positions, centre_index: int, bond_range) -> np.ndarray:
    """Number of 5-, 6-, 7- and 8-membered rings through one atom (``(4,)`` int64); see :func:`rings_at`."""
    counts = np.zeros(4, dtype=np.int64)
    for ring in rings_at(positions, centre_index, bond_range):
        counts[len(ring) - 5] += 1
    return counts


def rings_at(positions, centre_index: int, bond_range) -> list[list[int]]:
    """The rings (5–8 members) through one atom of a small point set; fast path for decoded windows.

    Parameters
    ----------
    positions : (n, 2) array
        Atom positions (pixels) of one small image (e.g. a decoded window).
    centre_index : int
        Row of the atom whose rings are counted (e.g. the one nearest the centre).
    bond_range : (low, high)
        Bond distance limits in pixels: a bond when ``low < d < high``.

    Returns
    -------
    rings : list of list of int
        Each ring (a bounded face of the bond graph) as rows of ``positions``
        in boundary order, starting at ``centre_index``.
    """
    yx = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    found: list[list[int]] = []
    n = len(yx)
    if not 0 <= int(centre_index) < n:
        raise ValueError(f"centre_index: {centre_index} is not a row of the {n} positions")
    lo, hi = float(bond_range[0]), float(bond_range[1])
    if n < 5:
        return found
    # every atom of a ring of ≤ 8 through the centre lies within 4 bonds of it
    offset = yx - yx[int(centre_index)]
    local = np.flatnonzero((offset * offset).sum(1) <= (4.0 * hi) ** 2)
    yx = yx[local]
    n = len(yx)
    c = int(np.searchsorted(local, int(centre_index)))
    diff = yx[:, None, :] - yx[None, :, :]
    d2 = (diff * diff).sum(-1)
    adjacency = (d2 > lo * lo) & (d2 < hi * hi)
    degree = adjacency.sum(1)
    while True:  # prune dangling atoms (2-core; cycles are never pruned)
        dangling = degree == 1
        if not dangling.any():
            break
        adjacency[dangling] = False
        adjacency[:, dangling] = False
        degree = adjacency.sum(1)
    if degree[c] < 2:
        return found
    # plain Python below: on ~50 points it beats array calls by an order of magnitude
    pts = yx.tolist()
    rows: list[list[int]] = [[] for _ in range(n)]
    for i, j in zip(*(idx.tolist() for idx in np.nonzero(adjacency))):
        rows[i].append(j)
    order: dict[int, list[int]] = {}
    rank: dict[int, dict[int, int]] = {}

    def neighbours(v: int) -> list[int]:
        if v not in order:
            vy, vx = pts[v]
            nb = rows[v]
            nb.sort(key=lambda u: math.atan2(pts[u][0] - vy, pts[u][1] - vx))
            order[v] = nb
            rank[v] = {u: k for k, u in enumerate(nb)}
        return order[v]

    for first in neighbours(c):
        ring = [c]
        a, b = c, first
        closed = False
        for _ in range(8):
            nb = neighbours(b)
            w = nb[(rank[b][a] - 1) % len(nb)]
            a, b = b, w
            if a == c:
                closed = b == first
                break
            if a in ring:
                break
            ring.append(a)
        if closed and 5 <= len(ring) <= 8:
            area = 0.0
            for i, j in zip(ring, ring[1:] + ring[:1]):
                area += pts[i][1] * pts[j][0] - pts[i][0] * pts[j][1]
            if area > 0:
                found.append([int(local[v]) for v in ring])
    return found


def find_rings(
    sites: pd.DataFrame,
    *,
    bond_length: float | None = None,
    bond_range=BOND_RANGE,
    kind: str = "atom",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-atom ring counts and ring-centre (hollow) sites for every frame.

    Parameters
    ----------
    sites : DataFrame
        Sites table; rows of ``kind`` are the atoms.
    bond_length : float, optional
        Bond length ``L`` in pixels; default the median nearest-neighbour
        distance of each frame's atoms.
    bond_range : (low, high)
        A bond when ``low·L < d < high·L``.
    kind : str
        Which rows are atoms.

    Returns
    -------
    atoms : DataFrame
        Copy of ``sites`` with columns ``n5 n6 n7 n8`` (0 for other kinds).
    hollows : DataFrame
        One site per ring: ``kind="hollow"``, position = centroid of the ring's
        atoms (pixels), ``ring_size`` column, ``class`` 0.
    """
    frames, yx = positions_of(sites)
    out = sites.copy()
    counts = np.zeros((len(sites), 4), dtype=np.int64)
    is_atom = (sites["kind"] == kind).to_numpy() if "kind" in sites.columns else np.ones(len(sites), bool)
    hollow = {"frame": [], "y": [], "x": [], "ring_size": []}
    for t in np.unique(frames[is_atom]):
        rows = np.flatnonzero(is_atom & (frames == t))
        if len(rows) < 5:
            continue
        for ring in find_rings_in_frame(yx[rows], bond_length, bond_range):
            np.add.at(counts[:, len(ring) - 5], rows[ring], 1)
            centre = yx[rows[ring]].mean(0)
            hollow["frame"].append(t)
            hollow["y"].append(centre[0])
            hollow["x"].append(centre[1])
            hollow["ring_size"].append(len(ring))
    for k, name in enumerate(COUNT_COLUMNS):
        out[name] = counts[:, k]
    hollows = make_sites(
        np.asarray(hollow["frame"], dtype=np.int64),
        hollow["y"],
        hollow["x"],
        "hollow",
        0,
        ring_size=np.asarray(hollow["ring_size"], dtype=np.int64),
    )
    return out, hollows


def with_hollows(atoms: pd.DataFrame, hollows: pd.DataFrame) -> pd.DataFrame:
    """One table of atoms and hollow sites, integer columns kept integer.

    Hollow rows get ``n5..n8 = 0`` and ``track_id = -1`` (if present); atom rows
    get ``ring_size = 0``.
    """
    table = pd.concat([atoms, hollows], ignore_index=True)
    fills = {name: 0 for name in COUNT_COLUMNS + ("ring_size",)}
    fills["track_id"] = -1
    for name, value in fills.items():
        if name in table.columns:
            table[name] = table[name].fillna(value).astype(np.int64)
    return table


def bond_orientation(
    sites: pd.DataFrame,
    *,
    symmetry: int = 3,
    bond_length: float | None = None,
    bond_range=BOND_RANGE,
    kind: str = "atom",
    column: str = "bond_angle",
) -> pd.DataFrame:
    """The orientation of each atom's bond star, for windows cut in the atom's own frame.

    For an atom with bonds at angles ``θ_k`` (radians, ``atan2(Δy, Δx)`` in image
    pixels) the orientation is ``arg(Σ_k exp(i·n·θ_k)) / n`` with ``n = symmetry``:
    one bond direction, defined modulo ``2π/n``. In graphene (``n = 3``) the two
    sublattices, whose bond stars point opposite ways, and grains of any
    misorientation then all get a bond along the window's +x axis once windows
    are cut with ``cut_windows(..., orientation=column)``, so a model no longer
    spends latents on the lattice orientation.

    Parameters
    ----------
    sites : DataFrame
        Sites table; rows of ``kind`` are the atoms (others get 0).
    symmetry : int
        Order ``n`` of the bond star (3 for graphene, 4 for a square lattice, 6 for hexagonal close packing).
    bond_length, bond_range
        As in :func:`find_rings`.
    kind : str
        Which rows are atoms.
    column : str
        Name of the new column.

    Returns
    -------
    DataFrame
        Copy of ``sites`` with ``column`` (radians, in ``(−π/n, π/n]``). Atoms without a bond get 0;
        their number is in ``result.attrs["atoms_without_bonds"]``.
    """
    if int(symmetry) != symmetry or symmetry < 1:
        raise ValueError(f"symmetry must be a positive integer (3 for graphene), got {symmetry}")
    n = int(symmetry)
    frames, yx = positions_of(sites)
    is_atom = (sites["kind"] == kind).to_numpy() if "kind" in sites.columns else np.ones(len(sites), bool)
    star = np.zeros(len(sites), dtype=np.complex128)
    for t in np.unique(frames[is_atom]):
        rows = np.flatnonzero(is_atom & (frames == t))
        pairs = bond_pairs(yx[rows], bond_length, bond_range)
        if len(pairs) == 0:
            continue
        d = yx[rows[pairs[:, 1]]] - yx[rows[pairs[:, 0]]]
        phase = np.exp(1j * n * np.arctan2(d[:, 0], d[:, 1]))
        np.add.at(star, rows[pairs[:, 0]], phase)  # bond a → b at θ
        np.add.at(star, rows[pairs[:, 1]], phase * np.exp(1j * n * np.pi))  # b → a at θ + π
    bonded = np.abs(star) > 1e-9
    angle = np.where(bonded, np.angle(star) / n, 0.0)
    angle = np.where(angle <= -np.pi / n, angle + 2 * np.pi / n, angle)  # (−π/n, π/n]
    out = sites.copy()
    out[column] = angle
    out.attrs["atoms_without_bonds"] = int((is_atom & ~bonded).sum())
    return out
