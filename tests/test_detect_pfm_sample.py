"""Walls and switched fraction on the project's pfm-switching sample (synth), held-out seeds."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from skimage.morphology import remove_small_holes, remove_small_objects

from napari_rvae.detect import domain_map, find_walls, switched_fraction, wall_mask
from napari_rvae.synth import make_sample


@pytest.fixture(scope="module")
def sample():
    return make_sample("pfm-switching", seed=808, frames=24, size=160)


def _boundary(domains):
    edge = np.zeros_like(domains)
    step = domains[1:] != domains[:-1]
    edge[1:] |= step
    edge[:-1] |= step
    step = domains[:, 1:] != domains[:, :-1]
    edge[:, 1:] |= step
    edge[:, :-1] |= step
    return edge


def test_switched_fraction_within_0_02(sample):
    fraction = switched_fraction(domain_map(sample["data"]))
    np.testing.assert_allclose(fraction, sample["switched_fraction"], atol=0.02)


def _scores(found, truth):
    """Share of found wall pixels within 1.5 px of a true one (precision), and the converse (recall)."""
    f, t = np.argwhere(found), np.argwhere(truth)
    return (cKDTree(t).query(f)[0] <= 1.5).mean(), (cKDTree(f).query(t)[0] <= 1.5).mean()


def _clean(up):
    return remove_small_holes(remove_small_objects(up, max_size=3), max_size=3)


def test_walls_within_1_5_px_in_every_frame(sample):
    """Issue 5: P and R ≥ 0.9 in every frame (frames with ≥ 100 true wall pixels), walls of domains > 3 px.

    The generator's pinning field also makes 1–3 px specks; a one-pixel speck's phase signal after the
    tip blur (σ = 1 px) is ≈ 4 noise σ, so some are unrecoverable. Both truth and detection drop
    domains ≤ 3 px here (``min_size=3``); the full truth is scored in the next test.
    """
    walls = wall_mask(domain_map(sample["data"], min_size=3))
    n = 0
    for t, up in enumerate(sample["domains"] > 0):
        truth = _boundary(_clean(up))
        if truth.sum() < 100:
            continue
        precision, recall = _scores(walls[t], truth)
        assert precision >= 0.9 and recall >= 0.9, (t, precision, recall)
        n += 1
    assert n > 10


def test_walls_against_the_full_truth(sample):
    """Specks included (the generator's own wall mask): detected walls are real walls in every frame, and
    most true wall pixels are found."""
    walls = wall_mask(domain_map(sample["data"]))
    precision, recall = [], []
    for t in range(len(walls)):
        if _boundary(_clean(sample["domains"][t] > 0)).sum() < 100:
            continue
        p, r = _scores(walls[t], sample["walls"][t])
        precision.append(p)
        recall.append(r)
    assert min(precision) >= 0.9
    assert np.mean(recall) >= 0.9 and min(recall) >= 0.8


def test_fit_recovers_small_domains_that_threshold_misses():
    """A 5-pixel domain blurred by the tip (σ = 1 px) stays below the threshold; the model fit finds it."""
    rng = np.random.default_rng(3)
    truth = -np.ones((6, 48, 48))
    for t in range(6):
        y, x = 8 + 6 * t, 10 + 5 * t
        truth[t, y, x - 1:x + 2] = 1
        truth[t, y - 1:y + 2, x] = 1  # a plus: 5 px
        truth[t, :, 36:] = 1  # and a big domain
    from scipy import ndimage

    phase = 90 * ndimage.gaussian_filter(truth, (0, 1, 1)) + rng.normal(0, 12, truth.shape)
    plain = domain_map(phase, tip_sigma=None)
    fitted = domain_map(phase)
    up = truth > 0
    assert (fitted == up).mean() > 0.998
    assert (fitted[:, :, :30] & up[:, :, :30]).sum() >= 0.9 * up[:, :, :30].sum()
    assert (plain[:, :, :30] & up[:, :, :30]).sum() < 0.5 * up[:, :, :30].sum()  # why the fit is needed
    canny = wall_mask(fitted, method="canny")
    assert canny.shape == fitted.shape


def test_find_walls_on_the_sample(sample):
    sites = find_walls(sample["data"], n_per_frame=30, min_spacing=4)
    assert set(sites["kind"]) == {"wall"}
    assert sites.groupby("frame").size().max() <= 30
    frames = sites["frame"].to_numpy()
    np.testing.assert_allclose(sites["switched_fraction"], sample["switched_fraction"][frames], atol=0.02)
