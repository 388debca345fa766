"""Clusters on latents against synthetic ground truth."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis import (
    agreement,
    cluster_features,
    cluster_fractions,
    cluster_mean_windows,
    cluster_sites,
    latent_features,
    match_clusters,
)
from napari_rvae.analysis.angles import wrap_angle
from napari_rvae.io.sites import make_sites


def ferroic_latents(n_per=300, seed=0, spread=0.15):
    """4 polar variants (angles π/2 apart, one at ±π) + a non-polar substrate with other z.

    Variant k has angle k·π/2 + π (so variant 0 straddles the ±π wrap) and
    z ≈ (0, 0); the substrate has a random angle and z ≈ (3, 3).
    """
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(5), n_per)
    angle = np.where(truth < 4, truth * np.pi / 2 + np.pi, rng.uniform(-np.pi, np.pi, truth.size))
    angle = wrap_angle(angle + np.where(truth < 4, rng.normal(0, spread, truth.size), 0))
    z0 = np.where(truth < 4, 0.0, 3.0) + rng.normal(0, 0.3, truth.size)
    z1 = np.where(truth < 4, 0.0, 3.0) + rng.normal(0, 0.3, truth.size)
    frame = rng.integers(0, 4, truth.size)
    sites = make_sites(frame, rng.uniform(0, 100, truth.size), rng.uniform(0, 100, truth.size),
                       angle=angle, z0=z0, z1=z1)
    return sites, truth


def test_plus_and_minus_pi_embed_to_the_same_point():
    table = pd.DataFrame({"angle": [np.pi - 1e-6, -np.pi + 1e-6, 0.0, np.pi / 2]})
    feats, valid = latent_features(table, ["angle"])
    assert valid.all() and feats.shape == (4, 2)
    assert np.linalg.norm(feats[0] - feats[1]) < 1e-4
    assert np.linalg.norm(feats[0] - feats[2]) > 1.0


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_angles_near_pi_land_in_one_cluster(method):
    rng = np.random.default_rng(1)
    n = 400
    near_pi = wrap_angle(np.pi + rng.normal(0, 0.2, n))  # half just below +π, half just above −π
    near_zero = rng.normal(0, 0.2, n)
    assert (near_pi > 0).mean() > 0.3 and (near_pi < 0).mean() > 0.3  # truly straddles the wrap
    sites = pd.DataFrame({"frame": 0, "y": 0.0, "x": 0.0,
                          "angle": np.concatenate([near_pi, near_zero]), "z0": rng.normal(0, 1, 2 * n)})
    out = cluster_sites(sites, ["angle", "z0"], n_clusters=2, method=method, covariance="diag", seed=0)
    labels = out["cluster"].to_numpy()
    assert len(np.unique(labels[:n])) == 1
    assert agreement(labels, np.repeat([0, 1], n)) >= 0.99


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gmm_recovers_variants_and_substrate(covariance):
    sites, truth = ferroic_latents()
    out = cluster_sites(sites, ["angle", "z0", "z1"], n_clusters=5, covariance=covariance, seed=0)
    score = agreement(out["cluster"].to_numpy(), truth)
    assert score >= 0.90, score


def test_kmeans_recovers_variants():
    sites, truth = ferroic_latents(seed=3)
    out = cluster_sites(sites, ["angle", "z0", "z1"], n_clusters=5, method="kmeans", seed=0)
    assert agreement(out["cluster"].to_numpy(), truth) >= 0.90


def test_same_seed_same_labels_and_largest_cluster_is_zero():
    sites, _ = ferroic_latents(n_per=100, seed=4)
    sites = sites.iloc[50:]  # make cluster sizes unequal
    a = cluster_sites(sites, n_clusters=5, seed=7)["cluster"].to_numpy()
    b = cluster_sites(sites, n_clusters=5, seed=7)["cluster"].to_numpy()
    assert np.array_equal(a, b)
    counts = np.bincount(a)
    assert counts[0] == counts.max() and np.all(np.diff(counts) <= 0)


def test_missing_latents_get_minus_one_and_bad_columns_raise():
    sites, _ = ferroic_latents(n_per=50)
    sites.loc[sites.index[:7], "z0"] = np.nan
    out = cluster_sites(sites, ["angle", "z0"], n_clusters=3)
    assert (out["cluster"].to_numpy()[:7] == -1).all() and (out["cluster"].to_numpy()[7:] >= 0).all()
    with pytest.raises(ValueError, match="z9"):
        cluster_sites(sites, ["angle", "z9"])
    with pytest.raises(ValueError, match="method"):
        cluster_features(np.zeros((10, 2)), 2, method="dbscan")
    with pytest.raises(ValueError, match="no latent columns"):
        cluster_sites(make_sites(0, [1.0], [2.0]))


def test_hungarian_matching_of_permuted_labels():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 500)
    perm = np.array([2, 0, 3, 1])
    labels = perm[truth]
    assert match_clusters(labels, truth) == {2: 0, 0: 1, 3: 2, 1: 3}
    assert agreement(labels, truth) == 1.0
    noisy = labels.copy()
    noisy[:50] = 9  # an extra cluster: unmatched, counts as wrong
    assert agreement(noisy, truth) == pytest.approx(0.9)


def test_cluster_mean_windows_show_the_cluster_difference():
    rng = np.random.default_rng(0)
    pattern = np.zeros((8, 8))
    pattern[2:4, 5:7] = 1.0
    labels = np.repeat([0, 1], 200)
    windows = rng.normal(0, 0.05, (400, 8, 8)) + labels[:, None, None] * pattern
    ids, means = cluster_mean_windows(windows, labels)
    assert list(ids) == [0, 1]
    # mean(cluster 1) − global mean = pattern / 2 ; cluster 0 gets − pattern / 2
    assert np.abs(means[1] - pattern / 2).max() < 0.03
    assert np.abs(means[0] + pattern / 2).max() < 0.03
    # windows indexed into a larger table, in shuffled order
    table_labels = np.concatenate([[-1] * 10, labels])
    order = rng.permutation(400)
    ids2, means2 = cluster_mean_windows(windows[order], table_labels, index=order + 10)
    assert np.allclose(means2, means)
    with pytest.raises(ValueError, match="index"):
        cluster_mean_windows(windows, table_labels, index=np.arange(3))


def test_cluster_fractions_follow_truth():
    frames = np.repeat(np.arange(4), 100)
    truth_fraction = np.array([0.1, 0.4, 0.7, 1.0])
    cluster = np.concatenate([(np.arange(100) < f * 100).astype(int) for f in truth_fraction])
    sites = pd.DataFrame({"frame": frames, "cluster": cluster})
    table = cluster_fractions(sites, frames=range(5))
    assert np.allclose(table[1].to_numpy()[:4], truth_fraction)
    assert np.allclose(table.sum(axis=1).to_numpy()[:4], 1.0)
    assert table.loc[4].sum() == 0  # frame without sites


def test_fitting_on_a_subset_labels_every_site():
    sites, truth = ferroic_latents(n_per=1000, seed=5)
    out = cluster_sites(sites, n_clusters=5, method="gmm", max_fit=1000, seed=0)
    assert (out["cluster"] >= 0).all()
    assert agreement(out["cluster"].to_numpy(), truth) >= 0.9
