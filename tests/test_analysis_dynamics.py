"""Per-frame KDE, NMF and hysteresis against synthetic ground truth."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis import (
    density_nmf,
    density_vs_frame,
    hysteresis_loop,
    latent_density_2d,
    latents_vs_frame,
    loop_area,
    read_bias,
    sweep_direction,
)


def test_linear_kde_integrates_to_one_and_matches_direct_kde():
    rng = np.random.default_rng(0)
    frames = np.repeat(np.arange(6), 500)
    values = rng.normal(0.3 * frames, 1.0)
    d = density_vs_frame(frames, values, n_grid=200, bandwidth=0.075)
    step = d.grid[1] - d.grid[0]
    assert d.density.shape == (6, 200)
    assert np.allclose(d.density.sum(axis=1) * step, 1.0, atol=0.01)
    # the direct Gaussian KDE at the grid points (same bandwidth)
    h = d.bandwidth[0]
    assert h == pytest.approx(0.075 * values.std())
    v = values[frames == 2]
    direct = np.exp(-0.5 * ((d.grid[:, None] - v[None]) / h) ** 2).sum(1) / (len(v) * h * np.sqrt(2 * np.pi))
    assert np.abs(d.density[2] - direct).max() < 0.03 * direct.max()
    # each frame's density peaks near its true mean (0.3 · frame)
    means = (d.density * d.grid).sum(1) / d.density.sum(1)
    assert np.allclose(means, 0.3 * np.arange(6), atol=0.15)


def test_circular_kde_wraps_and_integrates_to_one():
    rng = np.random.default_rng(1)
    angle = np.pi + rng.normal(0, 0.2, 3000)  # straddles ±π, some beyond
    d = density_vs_frame(np.zeros(3000, int), angle, circular=True, n_grid=180)
    step = 2 * np.pi / 180
    assert d.density.sum() * step == pytest.approx(1.0, abs=1e-3)
    # both ends of the grid carry the peak, the middle (0 rad) is empty
    assert d.density[0, 0] > 0.5 * d.density.max() and d.density[0, -1] > 0.5 * d.density.max()
    assert d.density[0, 90] < 1e-6
    # matches a wrapped-normal KDE evaluated directly
    h = d.bandwidth[0]
    diff = d.grid[:, None] - angle[None]
    direct = sum(np.exp(-0.5 * ((diff + k * 2 * np.pi) / h) ** 2) for k in (-2, -1, 0, 1, 2))
    direct = direct.sum(1) / (len(angle) * h * np.sqrt(2 * np.pi))
    assert np.abs(d.density[0] - direct).max() < 0.03 * direct.max()


def test_2d_kde_integrates_to_one_and_empty_frames_are_zero():
    rng = np.random.default_rng(2)
    frames = np.repeat([0, 2], 800)
    x, y = rng.normal(size=1600), rng.normal(2, 0.5, size=1600)
    d = latent_density_2d(frames, x, y, n_grid=48, frame_ids=[0, 1, 2])
    cell = (d.grids[0][1] - d.grids[0][0]) * (d.grids[1][1] - d.grids[1][0])
    assert d.density.shape == (3, 48, 48)
    mass = d.density.sum(axis=(1, 2)) * cell
    assert mass[0] == pytest.approx(1, abs=0.01) and mass[2] == pytest.approx(1, abs=0.01) and mass[1] == 0
    # rows are y: the mean of y from the density is ≈ 2
    ybar = (d.density[0].sum(1) * d.grids[0]).sum() / d.density[0].sum()
    assert ybar == pytest.approx(2.0, abs=0.1)
    assert d.matrix().shape == (3, 48 * 48)


def test_latents_vs_frame_uses_a_circular_angle():
    sites = pd.DataFrame({"frame": [0, 0, 1, 1], "y": 0.0, "x": 0.0,
                          "angle": [3.1, -3.1, 0.1, 0.2], "z0": [0.0, 1.0, 2.0, 3.0]})
    out = latents_vs_frame(sites)
    assert set(out) == {"angle", "z0"}
    assert out["angle"].grid[0] == pytest.approx(-np.pi)
    with pytest.raises(ValueError, match="z5"):
        latents_vs_frame(sites, ["z5"])


def switching_movie(hysteresis: float, T=80, n=300, seed=0):
    """Two latent populations whose mixing fraction follows a triangular bias.

    The fraction of population B switches at bias +c on the up-sweep and −c on
    the down-sweep (c = ``hysteresis``), like a ferroelectric loop.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    bias = np.interp(t / T, [0, 0.25, 0.75, 1.0], [0, 1, -1, 0])
    fraction = 1 / (1 + np.exp(-(bias - hysteresis * sweep_direction(bias)) / 0.1))
    frames = np.repeat(t, n)
    in_b = rng.random(T * n) < np.repeat(fraction, n)
    z0 = np.where(in_b, 1.5, -1.5) + rng.normal(0, 0.5, T * n)
    z1 = np.where(in_b, 0.5, 0.0) + rng.normal(0, 0.5, T * n)
    return frames, z0, z1, bias, fraction


def _best_loading(result, fraction):
    r = [np.corrcoef(result.loadings[:, k], fraction)[0, 1] for k in range(result.loadings.shape[1])]
    k = int(np.argmax(np.abs(r)))
    return k, r[k]


def test_nmf_loading_follows_fraction_and_encloses_a_loop():
    frames, z0, z1, bias, fraction = switching_movie(hysteresis=0.4)
    result = density_nmf(latent_density_2d(frames, z0, z1, n_grid=48), 2, seed=0)
    k, r = _best_loading(result, fraction)
    assert abs(r) >= 0.9, r
    assert result.components.shape == (2, 48, 48)
    assert np.allclose(result.loadings.sum(1), 1, atol=0.15)  # loadings ≈ population fractions
    true_area = loop_area(bias, fraction)
    area = loop_area(bias, result.loadings[:, k])
    assert abs(true_area) > 0.5  # the synthetic loop itself is wide
    assert abs(area) > 0.5 * abs(true_area)
    assert loop_area(bias, result.loadings[:, k], kind="absolute") > 0.5 * abs(true_area)
    # the loading-vs-bias table splits into up and down sweeps
    table = hysteresis_loop(result.loadings, bias)
    assert set(table["sweep"]) == {"up", "down"} and list(table.columns[-2:]) == ["loading0", "loading1"]


def test_no_hysteresis_control_gives_no_area():
    frames, z0, z1, bias, fraction = switching_movie(hysteresis=0.0, seed=1)
    result = density_nmf(latent_density_2d(frames, z0, z1, n_grid=48), 2, seed=0)
    k, r = _best_loading(result, fraction)
    assert abs(r) >= 0.9
    assert abs(loop_area(bias, result.loadings[:, k])) < 0.1


def test_nmf_on_one_dimensional_densities():
    frames, z0, _, bias, fraction = switching_movie(hysteresis=0.3, seed=2)
    result = density_nmf(density_vs_frame(frames, z0), 2)
    assert abs(_best_loading(result, fraction)[1]) >= 0.9


def test_loop_area_of_known_shapes():
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    assert loop_area(np.cos(t), np.sin(t)) == pytest.approx(np.pi, rel=1e-3)  # counter-clockwise
    assert loop_area(np.cos(t), -np.sin(t)) == pytest.approx(-np.pi, rel=1e-3)
    # up-sweep at 0, down-sweep at 1 over bias 0..1: |area| = 1
    bias = np.concatenate([np.linspace(0, 1, 50), np.linspace(1, 0, 50)])
    values = np.concatenate([np.zeros(50), np.ones(50)])
    assert loop_area(bias, values, kind="absolute") == pytest.approx(1.0, abs=0.05)
    assert abs(loop_area(bias, values)) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="kind"):
        loop_area(bias, values, kind="area")


def test_sweep_direction_and_bias_csv(tmp_path):
    bias = np.array([0, 1, 2, 2, 1, 0, -1, -1, 0])
    assert list(sweep_direction(bias)) == [1, 1, 1, 1, -1, -1, -1, -1, 1]
    pd.DataFrame({"frame": [2, 0, 1], "bias": [0.5, -1.0, 0.0]}).to_csv(tmp_path / "bias.csv", index=False)
    assert list(read_bias(tmp_path / "bias.csv")) == [-1.0, 0.0, 0.5]
    assert list(read_bias(tmp_path / "bias.csv", frames=[2, 0])) == [0.5, -1.0]
    with pytest.raises(ValueError, match="frame"):
        read_bias(tmp_path / "bias.csv", frames=[7])
    np.savez(tmp_path / "sample.npz", movie=np.zeros((3, 4, 4)), bias=np.array([0.0, 1.0, -1.0]))
    assert list(read_bias(tmp_path / "sample.npz", frames=[2, 1])) == [-1.0, 1.0]
    np.savez(tmp_path / "nobias.npz", movie=np.zeros(3))
    with pytest.raises(ValueError, match="bias"):
        read_bias(tmp_path / "nobias.npz")
