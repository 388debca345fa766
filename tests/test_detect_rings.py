"""Rings, per-atom ring counts and hollow sites against independent ground truth.

Truth rings come from the TRUE bond list of the scene with a different
algorithm from the face tracing under test: for every atom ``v`` and every
pair of its bonds ``u-v-w``, the ring is the shortest path ``u → w`` that
avoids ``v`` (breadth-first search), closed through ``v``.
"""

from collections import deque

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import detect_atoms, find_rings, find_rings_in_frame, ring_counts_at
from napari_rvae.detect.rings import with_hollows
from napari_rvae.detect.scenes import bonds_of, graphene_scene, honeycomb
from napari_rvae.io.sites import make_sites

SHAPE = (192, 192)
BOND = 8.0


def _shortest_path_avoiding(adjacency, start, goal, avoid, limit=7):
    parent = {start: None}
    queue = deque([(start, 0)])
    while queue:
        node, depth = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = parent[node]
            return path
        if depth == limit:
            continue
        for nxt in adjacency[node]:
            if nxt != avoid and nxt not in parent:
                parent[nxt] = node
                queue.append((nxt, depth + 1))
    return None


def true_rings(yx, bond):
    adjacency = [[] for _ in range(len(yx))]
    for i, j in bonds_of(yx, bond, 1.2).tolist():
        adjacency[i].append(j)
        adjacency[j].append(i)
    rings = set()
    for v, nb in enumerate(adjacency):
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                path = _shortest_path_avoiding(adjacency, nb[a], nb[b], v)
                if path is not None and 5 <= len(path) + 1 <= 8:
                    rings.add(frozenset(path + [v]))
    return [sorted(r) for r in rings]


def true_counts(yx, rings):
    counts = np.zeros((len(yx), 4), int)
    for ring in rings:
        counts[list(ring), len(ring) - 5] += 1
    return counts


@pytest.fixture(scope="module")
def defect_scenes():
    return [
        graphene_scene(SHAPE, BOND, seed=s, n_si=0, stone_wales_defects=3, holes=1, hole_radius=12.0, margin=28.0)
        for s in range(2)
    ]


def test_single_hexagon_is_one_ring_not_two():
    angles = np.arange(6) * np.pi / 3
    hexagon = 20 + 8 * np.stack([np.sin(angles), np.cos(angles)], 1)
    rings = find_rings_in_frame(hexagon)
    assert len(rings) == 1 and len(rings[0]) == 6
    np.testing.assert_array_equal(ring_counts_at(hexagon, 0, (4, 9.6)), [0, 1, 0, 0])


def test_bulk_atoms_are_6_6_6_and_hollows_at_hexagon_centres():
    yx = honeycomb((120, 120), BOND, angle=0.3, offset=(0.4, 0.7))
    sites = make_sites(0, yx[:, 0], yx[:, 1])
    atoms, hollows = find_rings(sites)
    bulk = ((yx > 2.5 * BOND) & (yx < 120 - 1 - 2.5 * BOND)).all(1)
    counts = atoms[["n5", "n6", "n7", "n8"]].to_numpy()
    assert (counts[bulk] == [0, 3, 0, 0]).all()
    assert (hollows["ring_size"] == 6).all()
    # every hollow is a hexagon centre: the 6 nearest atoms lie at one bond length
    d, _ = cKDTree(yx).query(hollows[["y", "x"]].to_numpy(), k=6)
    np.testing.assert_allclose(d, BOND, atol=1e-6)


def test_ring_counts_at_stone_wales_atoms_from_noisy_images(defect_scenes):
    correct, total = 0, 0
    for sc in defect_scenes:
        sites = detect_atoms(sc["image"], method="peaks")
        atoms, _ = find_rings(sites)
        counts = atoms[["n5", "n6", "n7", "n8"]].to_numpy()
        truth = true_counts(sc["yx"], true_rings(sc["yx"], sc["bond"]))
        dist, idx = cKDTree(atoms[["y", "x"]].to_numpy()).query(sc["yx"][sc["sw_atoms"]])
        found = dist < 2
        got = counts[idx]
        want = truth[sc["sw_atoms"]]
        assert (want[:, 0] > 0).any() and (want[:, 2] > 0).any()  # the defects really have 5- and 7-rings
        correct += int((found & (got == want).all(1)).sum())
        total += len(want)
    assert correct / total >= 0.95


def test_hollow_sites_within_1_px_of_true_ring_centroids(defect_scenes):
    for sc in defect_scenes:
        sites = detect_atoms(sc["image"], method="peaks")
        _, hollows = find_rings(sites)
        rings = true_rings(sc["yx"], sc["bond"])
        centres = np.array([sc["yx"][list(r)].mean(0) for r in rings])
        sizes = np.array([len(r) for r in rings])
        got = hollows[["y", "x"]].to_numpy()
        dist, idx = cKDTree(centres).query(got)
        assert (dist <= 1.0).mean() >= 0.99
        assert (hollows["ring_size"].to_numpy()[dist <= 1.0] == sizes[idx[dist <= 1.0]]).all()
        # recall on interior rings (edge rings may lose a border atom)
        inner = ((centres > 3 * BOND) & (centres < SHAPE[0] - 1 - 3 * BOND)).all(1)
        d_back, _ = cKDTree(got).query(centres[inner])
        assert (d_back <= 1.0).mean() >= 0.98
        # every 5- and 7-ring of the defects is found
        assert (hollows["ring_size"] == 5).sum() == (sizes == 5).sum()
        assert (hollows["ring_size"] == 7).sum() == (sizes == 7).sum()


def test_hole_boundary_is_not_a_ring_and_dangling_atoms_are_ignored():
    yx = honeycomb((100, 100), BOND)
    centre = np.array([50.0, 50.0])
    yx = yx[np.hypot(*(yx - centre).T) > 13]  # a hole: its boundary is a long cycle
    rings = find_rings_in_frame(yx, bond_length=BOND)
    assert all(5 <= len(r) <= 8 for r in rings)
    ring_centres = np.array([yx[r].mean(0) for r in rings])
    assert np.hypot(*(ring_centres - centre).T).min() > 13
    # a short chain sticking into the hole (dangling atoms) adds no ring and removes none
    rim = np.argmin(np.hypot(*(yx - centre).T))
    inward = (centre - yx[rim]) / np.hypot(*(centre - yx[rim]))
    chain = yx[rim] + BOND * np.outer([1.0, 2.0], inward)
    with_chain = np.vstack([yx, chain])
    assert len(find_rings_in_frame(with_chain, bond_length=BOND)) == len(rings)


def test_ring_counts_at_matches_find_rings_on_small_windows(defect_scenes):
    sc = defect_scenes[0]
    yx = sc["yx"]
    atoms, _ = find_rings(make_sites(0, yx[:, 0], yx[:, 1]), bond_length=BOND)
    counts = atoms[["n5", "n6", "n7", "n8"]].to_numpy()
    tree = cKDTree(yx)
    checked = 0
    for centre in list(sc["sw_atoms"]) + list(range(0, len(yx), 37)):
        window = tree.query_ball_point(yx[centre], 4 * BOND)
        if ((yx[centre] < 4 * BOND) | (yx[centre] > SHAPE[0] - 1 - 4 * BOND)).any():
            continue  # windows cut by the frame border
        local = yx[window]
        got = ring_counts_at(local, window.index(centre), (0.5 * BOND, 1.2 * BOND))
        np.testing.assert_array_equal(got, counts[centre])
        checked += 1
    assert checked > 10


def test_with_hollows_keeps_integer_columns():
    yx = honeycomb((60, 60), BOND)
    atoms, hollows = find_rings(make_sites(0, yx[:, 0], yx[:, 1]))
    table = with_hollows(atoms, hollows)
    assert table["n6"].dtype == np.int64 and table["ring_size"].dtype == np.int64
    assert set(table["kind"]) == {"atom", "hollow"}


def test_ring_input_validation():
    with pytest.raises(ValueError, match="centre_index"):
        ring_counts_at(np.zeros((3, 2)), 5, (1, 2))
    with pytest.raises(ValueError, match="bond_range"):
        find_rings_in_frame(honeycomb((40, 40), BOND), bond_range=(1.2, 0.5))
    assert find_rings_in_frame(np.zeros((0, 2))) == []
    np.testing.assert_array_equal(ring_counts_at(np.zeros((2, 2)), 0, (1, 2)), [0, 0, 0, 0])
