"""Linking hopping Si dopants across drifting frames."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import link_tracks, tracks_layer_data
from napari_rvae.detect.scenes import honeycomb

BOND = 8.0


def hopping_dopants(seed=0, frames=30, n_si=12, p_hop=0.3, drift_step=(0.8, -0.5), miss=0.05):
    """Sites table of Si dopants hopping to neighbouring lattice sites, with drift and carbon clutter.

    Column ``true`` holds the dopant identity (−1 for carbon).
    """
    rng = np.random.default_rng(seed)
    lattice = honeycomb((400, 400), BOND)
    tree = cKDTree(lattice)
    inner = np.flatnonzero(((lattice > 60) & (lattice < 340)).all(1))
    current = rng.choice(inner, n_si, replace=False)
    drift = np.zeros(2)
    rows = []
    for t in range(frames):
        if t:
            drift += np.asarray(drift_step) + rng.normal(0, 1.0, 2)
            for k in range(n_si):
                if rng.random() < p_hop:
                    near = [j for j in tree.query_ball_point(lattice[current[k]], 1.2 * BOND)
                            if j != current[k] and j not in current]
                    current[k] = rng.choice(near)
        for k in range(n_si):
            if rng.random() < miss:
                continue  # missed detection
            y, x = lattice[current[k]] + drift + rng.normal(0, 0.3, 2)
            rows.append((t, y, x, "atom", 1, k))
        for j in rng.choice(len(lattice), 40, replace=False):
            y, x = lattice[j] + drift
            rows.append((t, y, x, "atom", 0, -1))
    return pd.DataFrame(rows, columns=["frame", "y", "x", "kind", "class", "true"])


def purity(tracked):
    linked = tracked[tracked["track_id"] >= 0]
    majority = linked.groupby("track_id")["true"].agg(lambda s: s.value_counts().iloc[0]).sum()
    return majority / len(linked)


@pytest.mark.parametrize("max_gap", [0, 2])
def test_si_tracks_are_pure_with_drift(max_gap):
    sites = hopping_dopants()
    tracked = link_tracks(sites, r_max=1.5 * BOND, classes=1, max_gap=max_gap, min_length=3)
    si = tracked[tracked["class"] == 1]
    assert purity(si) >= 0.95
    assert (si["track_id"] >= 0).mean() > 0.9
    assert (tracked.loc[tracked["class"] == 0, "track_id"] == -1).all()


def test_gap_closing_bridges_missed_detections():
    sites = hopping_dopants(seed=2, miss=0.1, p_hop=0.0)
    without = link_tracks(sites, r_max=1.5 * BOND, classes=1, max_gap=0, min_length=1)
    with_gaps = link_tracks(sites, r_max=1.5 * BOND, classes=1, max_gap=2, min_length=1)
    n_without = without.loc[without["class"] == 1, "track_id"].nunique()
    n_with = with_gaps.loc[with_gaps["class"] == 1, "track_id"].nunique()
    assert n_with < n_without
    assert n_with <= 12 + 2  # close to the 12 true dopants
    assert purity(with_gaps[with_gaps["class"] == 1]) >= 0.95


def test_drift_correction_rescues_large_drift():
    sites = hopping_dopants(seed=3, drift_step=(5.0, 3.0), p_hop=0.1)
    # drift of ~6 px per frame: without correction hops + drift exceed r_max more often
    tracked = link_tracks(sites, r_max=1.5 * BOND, classes=1, max_gap=1, min_length=3, drift="auto")
    plain = link_tracks(sites, r_max=1.5 * BOND, classes=1, max_gap=1, min_length=3, drift=None)
    assert purity(tracked[tracked["class"] == 1]) >= 0.95
    n_auto = tracked.loc[tracked["class"] == 1, "track_id"].nunique()
    n_plain = plain.loc[plain["class"] == 1, "track_id"].nunique()
    assert n_auto <= 12 + 3 < n_plain  # 12 true dopants: without correction tracks break up


def test_min_length_and_napari_tracks_data():
    sites = hopping_dopants(seed=4, frames=8)
    tracked = link_tracks(sites, r_max=1.5 * BOND, classes=1, min_length=8)
    lengths = tracked[tracked["track_id"] >= 0].groupby("track_id").size()
    assert (lengths >= 8).all()
    data = tracks_layer_data(tracked)
    assert data.shape[1] == 4 and len(data) == (tracked["track_id"] >= 0).sum()
    order = np.lexsort((data[:, 1], data[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(data)))


def test_track_input_validation():
    sites = hopping_dopants(frames=3)
    with pytest.raises(ValueError, match="r_max"):
        link_tracks(sites, r_max=0)
    with pytest.raises(ValueError, match="drift"):
        link_tracks(sites, r_max=5, drift="yes")
    with pytest.raises(ValueError, match="track_id"):
        tracks_layer_data(sites)
    empty = link_tracks(sites, r_max=5, classes=7)
    assert (empty["track_id"] == -1).all()
