"""The standard latent analysis end to end on a synthetic encoded movie."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis import agreement, analyse_latents, save_npz, sweep_direction


def encoded_movie(T=40, n=200, seed=0):
    """Sites of a switching movie: population B (z ≈ (1.5, 0.5)) grows with a hysteretic
    bias loop; population A (z ≈ (−1.5, 0)). Every site has one of 4 angle variants π/2 apart."""
    rng = np.random.default_rng(seed)
    bias = np.interp(np.arange(T) / T, [0, 0.25, 0.75, 1.0], [0, 1, -1, 0])
    fraction = 1 / (1 + np.exp(-(bias - 0.4 * sweep_direction(bias)) / 0.1))
    frame = np.repeat(np.arange(T), n)
    in_b = rng.random(T * n) < np.repeat(fraction, n)
    variant = rng.integers(0, 4, T * n)
    sites = pd.DataFrame({
        "frame": frame, "y": rng.uniform(0, 100, T * n), "x": rng.uniform(0, 100, T * n),
        "angle": variant * np.pi / 2 + 0.3 + rng.normal(0, 0.1, T * n),
        "z0": np.where(in_b, 1.5, -1.5) + rng.normal(0, 0.4, T * n),
        "z1": np.where(in_b, 0.5, 0.0) + rng.normal(0, 0.4, T * n),
    })
    return sites, bias, fraction, in_b.astype(int), variant


def test_analyse_latents_finds_populations_variants_and_loop(tmp_path):
    sites, bias, fraction, population, variant = encoded_movie()
    windows = np.random.default_rng(1).normal(size=(300, 8, 8))
    index = np.arange(0, 3000, 10)
    result = analyse_latents(sites, tmp_path / "fig", columns=["z0", "z1"], n_clusters=2, bias=bias,
                             windows=windows, window_index=index)
    assert agreement(result.sites["cluster"], population) >= 0.95
    assert len(result.peaks) == 4 and np.all(np.abs(result.peaks["spacing"] - np.pi / 2) < 0.15)
    assert set(result.densities) == {"angle", "z0", "z1"}
    r = max(abs(np.corrcoef(result.nmf.loadings[:, k], fraction)[0, 1]) for k in range(2))
    assert r >= 0.9
    assert max(abs(a) for a in result.loop_areas) > 0.4
    assert result.cluster_means.shape == (2, 8, 8)
    assert np.allclose(result.fractions.sum(axis=1), 1)
    expected = {"angle_histogram", "angle_vs_frame", "z0_vs_frame", "z1_vs_frame", "latents_by_cluster",
                "latents_by_angle", "cluster_map", "cluster_fractions", "cluster_means", "nmf_loadings", "nmf_components",
                "nmf_loadings_vs_bias"}
    assert set(result.figures) == expected
    for path in result.figures.values():
        assert path.read_bytes()[:4] == b"\x89PNG"
    save_npz(tmp_path / "results.npz", result.arrays())  # all numeric, no pickle needed
    json.dumps(result.summary())
    assert len(result.summary()["angle_peaks_rad"]) == 4


def test_analyse_latents_with_one_latent_and_checks_bias(tmp_path):
    sites, bias, fraction, population, _ = encoded_movie(T=12, n=100, seed=2)
    sites = sites.drop(columns=["z1"])
    result = analyse_latents(sites, tmp_path, columns=["z0"], n_clusters=2)
    assert result.plane is None and result.nmf.components.ndim == 2
    assert result.figures["nmf_components"].exists() and "latents_by_cluster" not in result.figures
    with pytest.raises(ValueError, match="bias"):
        analyse_latents(sites, columns=["z0"], n_clusters=2, bias=bias[:5])
