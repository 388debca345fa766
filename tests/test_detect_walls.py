"""Domain walls and switched fraction on synthetic two-domain PFM phase images."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import (
    domain_map,
    find_walls,
    switched_fraction,
    wall_mask,
    wall_sites,
    walls_from_probabilities,
)

Y = X = 128


def two_domains(radius=30.0, noise=60.0, seed=0):
    """A wavy vertical wall plus a round domain: phase ±90° with Gaussian noise; truth mask and wall pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:Y, :X]
    truth = (xx > 70 + 12 * np.sin(yy / 11.0)) | (np.hypot(yy - 45, xx - 32) < radius * 0.5)
    phase = np.where(truth, 90.0, -90.0) + rng.normal(0, noise, (Y, X))
    return phase, truth


def true_wall_pixels(truth):
    """Pixels with a 4-neighbour in the other domain (both sides of the wall)."""
    edge = np.zeros_like(truth)
    dv = truth[:-1] != truth[1:]
    dh = truth[:, :-1] != truth[:, 1:]
    edge[:-1] |= dv
    edge[1:] |= dv
    edge[:, :-1] |= dh
    edge[:, 1:] |= dh
    return np.argwhere(edge)


def precision_recall(found, truth_pixels, tol=1.5):
    d_found, _ = cKDTree(truth_pixels).query(found)
    d_true, _ = cKDTree(found).query(truth_pixels)
    return (d_found <= tol).mean(), (d_true <= tol).mean()


@pytest.mark.parametrize("noise", [30.0, 90.0])
def test_walls_within_1_5_px_precision_and_recall(noise):
    phase, truth = two_domains(noise=noise)
    walls = wall_mask(domain_map(phase, smooth=1.5))[0]
    precision, recall = precision_recall(np.argwhere(walls), true_wall_pixels(truth))
    assert precision >= 0.9 and recall >= 0.9


def test_switched_fraction_follows_a_growing_domain():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:Y, :X]
    radii = np.linspace(0, 70, 8)
    truths = np.stack([np.hypot(yy - 64, xx - 64) < r for r in radii])  # frame 0: nothing switched
    phase = np.where(truths, 170.0, -10.0) + rng.normal(0, 50, truths.shape)
    fraction = switched_fraction(domain_map(phase, smooth=1.0))
    np.testing.assert_allclose(fraction, truths.mean((1, 2)), atol=0.02)


def test_given_threshold_and_low_domain():
    phase, truth = two_domains(noise=20.0)
    domains = domain_map(phase, threshold=0.0)
    assert (domains[0] == truth).mean() > 0.98
    np.testing.assert_allclose(switched_fraction(domains, switched=False), 1 - truth.mean(), atol=0.02)


def test_wall_sites_all_or_spaced_subset():
    phase, truth = two_domains(noise=30.0)
    mask = wall_mask(domain_map(phase))
    every = wall_sites(mask)
    assert len(every) == mask.sum() and set(every["kind"]) == {"wall"}
    spaced = wall_sites(mask, n_per_frame=25, min_spacing=6.0, seed=3)
    assert len(spaced) == 25
    yx = spaced[["y", "x"]].to_numpy()
    d, _ = cKDTree(yx).query(yx, k=2)
    assert d[:, 1].min() >= 6.0
    assert mask[0][yx[:, 0].astype(int), yx[:, 1].astype(int)].all()
    inner = wall_sites(mask, edge_margin=20)
    assert inner[["y", "x"]].to_numpy().min() >= 20


def test_find_walls_table_and_fraction_column():
    phase, truth = two_domains(noise=30.0)
    sites = find_walls(np.stack([phase, phase]), n_per_frame=10)
    assert set(sites["frame"]) == {0, 1} and len(sites) == 20
    np.testing.assert_allclose(sites["switched_fraction"], truth.mean(), atol=0.02)


def test_walls_from_a_segmenter_wall_class():
    phase, truth = two_domains(noise=0.0)
    wall = np.zeros((Y, X))
    px = true_wall_pixels(truth)
    wall[px[:, 0], px[:, 1]] = 0.9
    probs = np.stack([1 - wall, wall])[None]
    mask = walls_from_probabilities(probs, wall_channel=1)
    precision, recall = precision_recall(np.argwhere(mask[0]), px)
    assert precision >= 0.9 and recall >= 0.9
    with pytest.raises(ValueError, match="wall_channel"):
        walls_from_probabilities(probs, wall_channel=0)


def test_bad_phase_input():
    with pytest.warns(UserWarning, match="constant"):
        assert wall_mask(domain_map(np.ones((20, 20)))).sum() == 0
    with pytest.raises(ValueError, match="NaN"):
        domain_map(np.full((20, 20), np.nan))
    with pytest.raises(ValueError, match="phase"):
        domain_map(np.zeros(10))
    with pytest.raises(ValueError, match="threshold"):
        domain_map(np.zeros((5, 5)), threshold="median")
    with pytest.warns(UserWarning):
        assert len(find_walls(np.ones((2, 20, 20)))) == 0
