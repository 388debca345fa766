"""Detection on the project's graphene-movie sample (synth), against its exact ground truth.

Held-out seeds; the movie has hopping Si, growing holes, Stone–Wales defects, a
rotated grain, drift, Poisson + read noise and scan-line jitter.
"""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import detect_atoms, find_rings, link_tracks
from napari_rvae.synth import make_sample

SIZE = 256
COUNTS = ("n5", "n6", "n7", "n8")


def _truth(sample, t):
    atoms = sample["atoms"][sample["atoms"]["frame"] == t]
    return atoms, np.stack([atoms["y"], atoms["x"]], 1)


@pytest.fixture(scope="module")
def movie():
    sample = make_sample("graphene-movie", seed=4242, frames=6, size=SIZE, n_holes=2, n_stone_wales=3)
    sites = detect_atoms(sample["data"])
    atoms, hollows = find_rings(sites)
    return sample, atoms, hollows


def test_atoms_f1_classes_and_holes(movie):
    sample, atoms, _ = movie
    for t in range(len(sample["data"])):
        truth, tyx = _truth(sample, t)
        yx = atoms.loc[atoms["frame"] == t, ["y", "x"]].to_numpy()
        dist, idx = cKDTree(tyx).query(yx)
        matched = dist <= 2.0
        tp = len(np.unique(idx[matched]))
        inner = ((tyx >= 4) & (tyx <= SIZE - 5)).all(1)  # edge margin: border atoms are optional
        fn = int(inner.sum()) - int(inner[np.unique(idx[matched])].sum())
        fp = len(yx) - tp
        assert 2 * tp / (2 * tp + fp + fn) >= 0.99
        cls = atoms.loc[atoms["frame"] == t, "class"].to_numpy()
        assert (cls[matched] == truth["class"][idx[matched]]).mean() >= 0.98
        holes = sample["hole_masks"][t]
        iy, ix = np.rint(yx).astype(int).clip(0, SIZE - 1).T
        assert not holes[iy, ix].any()


def test_ring_counts_at_stone_wales_atoms_and_hollow_sites(movie):
    sample, atoms, hollows = movie
    right, total = 0, 0
    for t in range(len(sample["data"])):
        truth, tyx = _truth(sample, t)
        frame = atoms[atoms["frame"] == t]
        yx = frame[["y", "x"]].to_numpy()
        defect = truth["defect"] >= 0
        if defect.any():
            dist, idx = cKDTree(yx).query(tyx[defect])
            got = frame[list(COUNTS)].to_numpy()[idx]
            want = np.stack([truth[k][defect] for k in COUNTS], 1)
            right += int(((dist < 2) & (got == want).all(1)).sum())
            total += int(defect.sum())
        rings = sample["rings"][sample["rings"]["frame"] == t]
        centres = np.stack([rings["y"], rings["x"]], 1)
        found = hollows.loc[hollows["frame"] == t, ["y", "x"]].to_numpy()
        dist, idx = cKDTree(centres).query(found)
        assert (dist <= 1.0).mean() >= 0.98
        inner = ((centres > 20) & (centres < SIZE - 21)).all(1)
        back, _ = cKDTree(found).query(centres[inner])
        assert (back <= 1.0).mean() >= 0.97
    assert total > 0 and right / total >= 0.95


def test_position_rmse_at_default_dose(movie):
    # issue 5: RMSE <= 0.2 px after refinement at the sample's default settings (dose 40, 0.3 px
    # scan jitter); the neighbour-subtracted refit is what brings it under (0.20-0.21 px without it)
    sample, atoms, _ = movie
    sq = []
    for t in range(len(sample["data"])):
        _, tyx = _truth(sample, t)
        dist, _ = cKDTree(tyx).query(atoms.loc[atoms["frame"] == t, ["y", "x"]].to_numpy())
        sq.append(dist[dist < 2] ** 2)
    assert np.sqrt(np.concatenate(sq).mean()) <= 0.2


def test_position_rmse_at_higher_dose():
    # the default dose 40 with 0.3 px scan jitter sits at the noise floor (≈ 0.21 px, see docs)
    sample = make_sample("graphene-movie", seed=77, frames=2, size=SIZE, dose=100.0)
    sites = detect_atoms(sample["data"])
    for t in range(2):
        _, tyx = _truth(sample, t)
        dist, _ = cKDTree(tyx).query(sites.loc[sites["frame"] == t, ["y", "x"]].to_numpy())
        assert np.sqrt((dist[dist < 2] ** 2).mean()) <= 0.2


def test_si_tracks_are_pure(movie):
    sample, atoms, _ = movie
    tracked = link_tracks(atoms, r_max=18.0, classes=1, max_gap=1, min_length=3)
    si = tracked[(tracked["class"] == 1) & (tracked["track_id"] >= 0)]
    assert si["track_id"].nunique() > 0
    majority = 0
    for _, group in si.groupby("track_id"):
        ids = []
        for t, y, x in group[["frame", "y", "x"]].to_numpy():
            truth, tyx = _truth(sample, int(t))
            dist, i = cKDTree(tyx).query([y, x])
            ids.append(truth["track_id"][i] if dist < 2 else -2)
        majority += np.unique(ids, return_counts=True)[1].max()
    assert majority / len(si) >= 0.95
