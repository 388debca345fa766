"""Latent trajectories: jumps found exactly where the (known) environment of a track changes."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis.trajectories import latent_trajectories, track_summary, tracks_layer


@pytest.fixture
def tracked():
    """Three tracks over 30 frames; the latent sits at the centre of its environment's cluster
    (plus small noise) and the environment changes at known frames."""
    rng = np.random.default_rng(0)
    centres = {0: (0.0, 0.0), 1: (2.0, -1.0), 2: (-1.5, 1.5)}
    changes = {0: [10, 20], 1: [], 2: [5]}
    rows = []
    for tid, at in changes.items():
        env = tid % 3
        for f in range(30):
            if f in at:
                env = (env + 1) % 3
            z = np.array(centres[env]) + rng.normal(0, 0.05, 2)
            rows.append(dict(frame=f, y=10.0 * tid, x=f + 0.5, track_id=tid, z0=z[0], z1=z[1], env=env))
    rows.append(dict(frame=3, y=99.0, x=9.0, track_id=-1, z0=5.0, z1=5.0, env=0))  # untracked site
    sites = pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)  # shuffled rows
    return sites, changes


def test_jumps_are_the_environment_changes(tracked):
    sites, changes = tracked
    traj = latent_trajectories(sites)
    assert (traj.track_id >= 0).all() and len(traj) == 90
    assert (traj.groupby("track_id")["frame"].apply(lambda f: (np.diff(f) > 0).all())).all()
    found = {t: sorted(g.loc[g.jump, "frame"]) for t, g in traj.groupby("track_id")}
    assert found == {t: sorted(f) for t, f in changes.items()}
    # rows point back into the sites table
    np.testing.assert_allclose(sites.loc[traj.row, "z0"].to_numpy(), traj.z0)
    np.testing.assert_allclose(traj.radius, np.hypot(traj.z0, traj.z1))
    summary = track_summary(traj).set_index("track_id")
    assert list(summary.n_jumps) == [2, 0, 1] and (summary.n == 30).all()


def test_frame_range_filter(tracked):
    sites, _ = tracked
    traj = latent_trajectories(sites, frame_range=(8, 15), threshold=1.0)
    assert traj.frame.between(8, 15).all()
    assert sorted(traj.loc[traj.jump, "frame"]) == [10]
    assert np.isnan(traj.groupby("track_id").head(1).step).all()


def test_tracks_layer_coloured_by_a_latent(tracked):
    sites, _ = tracked
    data, props = tracks_layer(sites, colour_by="z0", frame_range=(0, 9))
    assert data.shape == (30, 4) and len(props["z0"]) == 30
    np.testing.assert_array_equal(data[:, 0], props["track_id"])
    np.testing.assert_array_equal(data[:, 1], props["frame"])
    lookup = sites.set_index(["track_id", "frame"])["z0"]
    np.testing.assert_allclose(props["z0"], [lookup[(t, f)] for t, f in zip(props["track_id"], props["frame"])])


def test_missing_columns():
    with pytest.raises(ValueError, match="track_id"):
        latent_trajectories(pd.DataFrame({"frame": [0], "z0": [0.0], "z1": [0.0]}))
