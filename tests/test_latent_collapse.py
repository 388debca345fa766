"""Collapse is detected and said: models that learned nothing are flagged (known truth: pure-noise
and constant windows carry no structure), a model trained on the ferroic sample is not, the
analysis of uninformative latents reports no structure, and no post-training step crashes."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from napari_rvae.analysis import analyse_latents, density_vs_frame
from napari_rvae.analysis.collapse import ANGLE_SPREAD, check_latent_table, check_model
from napari_rvae.cli import main
from napari_rvae.patches import cut_windows
from napari_rvae.synth import make_sample
from napari_rvae.vae import Trainer, VAEConfig, build_model, encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_vae_ferroic import cell_centres  # noqa: E402  (the paper-003 cell-centred sites)

torch.set_num_threads(1)
W = 12


def trained(windows, epochs, **config):
    model = build_model(VAEConfig(arch="rvae", window=(W, W), **config), seed=0)
    Trainer(model, windows, seed=0, threads=1).fit(epochs)
    return model


@pytest.mark.parametrize("kind", ["noise", "constant"])
def test_model_on_structureless_windows_is_flagged_uninformative(kind):
    rng = np.random.default_rng(0)
    if kind == "noise":
        windows = rng.random((500, W, W)).astype(np.float32)
    else:
        windows = (0.5 + rng.normal(0, 1e-4, (500, W, W))).astype(np.float32)
    model = trained(windows, 4)
    check = check_model(model, windows)
    assert not check.informative
    assert check.gain < 0.05  # no better than the mean window
    # the content latents and shifts collapse; the equivariant angle follows each window's own
    # brightness pattern, so on structureless windows it may spread (at random) without meaning anything
    assert {"dx", "dy", "z0", "z1"} <= set(check.collapsed)
    assert check.warnings and "learned nothing" in check.warnings[0] and "--windows-from map" in check.warnings[0]
    # the analysis reports no structure in these latents: no clusters, angle peaks or NMF
    table = encode(model, windows)
    table["frame"] = np.arange(len(table)) % 5
    table["x"], table["y"] = rng.random(len(table)), rng.random(len(table))
    analysis = analyse_latents(table, n_clusters=5, check=check)
    assert "cluster" not in analysis.sites and analysis.peaks is None and analysis.nmf is None
    summary = analysis.summary()
    assert {"clusters", "angle peaks", "nmf"} <= set(summary["skipped"])
    assert summary["latent_check"]["informative"] is False and "cluster_sizes" not in summary


def test_model_on_ferroic_windows_is_not_flagged():
    """Rotation-only rVAE on cell-centred ferroic windows (two frames, 12 epochs): the angle learns the
    four polarisation variants (variant from the angle ≈ 0.97), so the check must call it informative
    (it cannot fire always). Measured: angle spread 1.41 rad, gain 0.23."""
    sample = make_sample("ferroic", seed=0, frames=2)
    sites, _ = cell_centres(sample)
    windows = cut_windows(sample["data"], sites, W, normalisation="global").windows
    model = trained(windows, 12, latent=1, translation=False)
    check = check_model(model, windows)
    assert check.informative, check.warnings
    assert check.spread["angle"] > 5 * ANGLE_SPREAD and check.gain > 0.1
    assert not check.warnings
    table = encode(model, windows)
    assert check_latent_table(table).informative


def test_collapsed_angle_beside_live_content_is_said_and_not_peaked(tmp_path):
    """The issue's crash: an angle with a spread of ~1e-7 rad made the density's kernel 'tiny' and the
    analysis crashed after training. Now the angle is reported as collapsed, its peaks and density
    are skipped, clustering uses the content latents, and the figures are written."""
    rng = np.random.default_rng(1)
    n = 600
    group = rng.integers(0, 2, n)
    table = pd.DataFrame({"frame": rng.integers(0, 6, n), "x": rng.random(n) * 100, "y": rng.random(n) * 100,
                          "angle": 0.3 + rng.normal(0, 1e-7, n),
                          "z0": np.where(group, 1.5, -1.5) + rng.normal(0, 0.3, n), "z1": rng.normal(0, 1, n)})
    check = check_latent_table(table)
    assert check.informative and check.angle_collapsed
    assert "rotation was not learned" in check.warnings[0]
    analysis = analyse_latents(table, tmp_path, n_clusters=2)
    assert analysis.peaks is None and "angle" not in analysis.densities
    assert "angle peaks" in analysis.skipped and not analysis.failed
    assert sorted(analysis.sites["cluster"].value_counts()) == sorted(np.bincount(group))  # the two groups
    assert (tmp_path / "cluster_map.png").is_file() and (tmp_path / "z0_vs_frame.png").is_file()


def test_density_of_an_all_but_constant_angle_does_not_crash():
    """Before: ValueError 'bandwidth: 7.5e-08 is tiny next to the grid spacing'."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 3, 2000)
    for spread in (1e-6, 1e-12, 0.0):
        density = density_vs_frame(frames, 0.5 + rng.normal(0, spread, 2000), circular=True)
        assert np.isfinite(density.density).all()
    big = density_vs_frame(frames, 1000.0 + rng.normal(0, 1e-11, 2000))  # spread below float resolution
    assert np.isfinite(big.density).all()


def test_a_failing_step_is_recorded_and_the_rest_still_runs(tmp_path):
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"frame": np.repeat([0, 1, 2, 3], 3), "x": rng.random(12), "y": rng.random(12),
                          "z0": rng.normal(0, 1, 12), "z1": rng.normal(0, 1, 12)})
    analysis = analyse_latents(table, tmp_path, n_clusters=50)  # more clusters than sites
    assert "clusters" in analysis.failed and "cluster" not in analysis.sites
    assert set(analysis.densities) == {"z0", "z1"} and analysis.nmf is not None
    assert (tmp_path / "z0_vs_frame.png").is_file() and (tmp_path / "nmf_loadings.png").is_file()
    assert "clusters" in analysis.summary()["failed"]


def test_cli_says_and_records_a_model_that_learned_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "noise.npy", rng.random((300, W, W)).astype(np.float32))
    assert main(["train", str(tmp_path / "noise.npy"), "-o", str(tmp_path / "model"), "--epochs", "3",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("warning: the model learned nothing") for line in out) == 1
    stored = json.loads((tmp_path / "model" / "model.json").read_text())["training"]["latent_check"]
    assert stored["informative"] is False and stored["gain"] < 0.05
    # analyze on a pure-noise movie: the project is written, the run record says why nothing is reported
    np.save(tmp_path / "movie.npy", rng.random((3, 64, 64)).astype(np.float32))
    assert main(["analyze", str(tmp_path / "movie.npy"), "-o", str(tmp_path / "project"), "--grid", "4",
                 "--window", str(W), "--epochs", "3", "--clusters", "5"]) == 0
    out = capsys.readouterr().out
    assert "warning: the model learned nothing" in out and "not reported: clusters" in out
    record = json.loads((tmp_path / "project" / "run.json").read_text())
    analysis = record.get("analysis") or record.get("record", {}).get("analysis")
    assert analysis["latent_check"]["informative"] is False
    assert {"clusters", "angle peaks", "nmf"} <= set(analysis["skipped"]) and "cluster_sizes" not in analysis
    sites = pd.read_csv(tmp_path / "project" / "sites.csv")
    assert "cluster" not in sites and {"z0", "z1", "angle"} <= set(sites.columns)  # latents are still written
    assert (tmp_path / "project" / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "project" / "figures" / "angle_histogram.png").exists()


def test_the_fix_leaves_out_what_the_model_already_does():
    from types import SimpleNamespace

    from napari_rvae.analysis.collapse import fixes

    everything = fixes()
    assert "--windows-from map" in everything and "--normalisation window" in everything and "--epochs" in everything
    model = SimpleNamespace(normalisation={"mode": "window", "source": "map"},
                            config=SimpleNamespace(likelihood="gaussian", noise_sigma=0.1))
    tailored = fixes(model)
    assert "--windows-from map" not in tailored and "--normalisation window" not in tailored
    assert "now 0.1" in tailored and "--noise-sigma" in tailored and "--epochs" in tailored


REAL_DM3 = Path(__file__).resolve().parents[1] / ".." / "shared" / "real" / "stem" / "DMReader_Image_SI-Survey.dm3"


@pytest.mark.skipif(not REAL_DM3.is_file(), reason="real data folder ../shared/real is absent")
def test_analyze_on_a_smoothed_real_image_writes_everything_and_reports_no_noise(tmp_path, capsys):
    """The issue's real case: a smoothed HAADF image (perovskite film, DM3). `analyze` must finish,
    write the model, the latents and the record, and report clusters / angle peaks only when the
    check calls the latents informative."""
    from scipy import ndimage

    from napari_rvae.io.movie import select_movie

    image = np.asarray(select_movie(REAL_DM3, None).data, np.float32)[:, :256, :256]
    np.save(tmp_path / "smooth.npy", ndimage.gaussian_filter(image, (0, 3, 3)).astype(np.float32))
    assert main(["analyze", str(tmp_path / "smooth.npy"), "-o", str(tmp_path / "p"), "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert "check:" in out
    for name in ("sites.csv", "run.json", "project.json", "model/model.safetensors"):
        assert (tmp_path / "p" / name).is_file(), name
    analysis = json.loads((tmp_path / "p" / "run.json").read_text())["analysis"]
    sites = pd.read_csv(tmp_path / "p" / "sites.csv")
    assert {"angle", "z0", "z1"} <= set(sites.columns)
    if not analysis["latent_check"]["informative"]:
        assert "cluster" not in sites and "angle_peaks_rad" not in analysis and "learned nothing" in out
    else:
        assert "cluster" in sites


def test_all_identical_latents_are_said_and_nothing_crashes(tmp_path):
    n = 200
    table = pd.DataFrame({"frame": np.arange(n) % 4, "x": np.arange(n) % 20, "y": np.arange(n) // 20,
                          "angle": np.full(n, 0.7), "dx": np.zeros(n), "dy": np.zeros(n),
                          "z0": np.full(n, 0.01), "z1": np.full(n, -0.02)})
    analysis = analyse_latents(table, tmp_path, n_clusters=5)
    assert not analysis.check.informative and "learned nothing" in analysis.check.warnings[0]
    assert not analysis.failed and {"clusters", "angle peaks", "nmf"} <= set(analysis.skipped)
    assert analysis.peaks is None and analysis.nmf is None and not analysis.densities


@pytest.mark.parametrize("arch", ["vae", "shift-vae", "skip-rvae"])
def test_check_runs_on_every_architecture(arch):
    windows = np.random.default_rng(3).random((120, W, W)).astype(np.float32)
    model = build_model(VAEConfig(arch=arch, window=(W, W), latent=2), seed=0)
    Trainer(model, windows, seed=0, threads=1).fit(1)
    check = check_model(model, windows)
    expected = {"vae": ["z0", "z1"], "shift-vae": ["dx", "dy", "z0", "z1"],
                "skip-rvae": ["angle", "dx", "dy", "z0", "z1"]}[arch]
    assert list(check.spread) == expected == list(check.kl)
    assert check.gain is not None and not check.informative  # noise: nothing to learn
