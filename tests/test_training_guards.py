"""Training guards: a loss that stops being finite (or explodes) ends training at the last good
epoch, meaningless hyper-parameters are refused before any work, and --resume continues
exactly (optimizer and generator restored) or refuses a different architecture."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from napari_rvae.cli import main
from napari_rvae.vae import BetaSchedule, Trainer, TrainingDiverged, VAEConfig, build_model, load_model, save_model

FAST = ["--threads", "1", "--encoder-widths", "32", "--decoder-widths", "16,16"]


def small_model(seed=0):
    return build_model(VAEConfig(arch="rvae", window=(10, 10), latent=2, encoder_widths=(32,), decoder_widths=(16, 16)),
                       seed=seed)


def windows(n=200, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 10, 10)).astype(np.float32)


def _poison_after(monkeypatch, calls: int):
    """Make the loss NaN from the ``calls``-th batch on (a divergence at a known point)."""
    original = Trainer._loss
    count = {"n": 0}

    def loss(self, *args, **kwargs):
        total, r, k = original(self, *args, **kwargs)
        if self.model.training:
            count["n"] += 1
            if count["n"] >= calls:
                total = total * float("nan")
        return total, r, k

    monkeypatch.setattr(Trainer, "_loss", loss)


def test_nan_loss_stops_at_the_last_finite_epoch(monkeypatch, one_torch_thread):
    model = small_model()
    trainer = Trainer(model, windows(), batch_size=50, seed=0, threads=1, test_fraction=0.15)
    seen = list(trainer.run(2))  # 2 good epochs (4 batches each: 170 train windows)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    _poison_after(monkeypatch, calls=2)  # the 2nd batch of epoch 3 is NaN
    with pytest.raises(TrainingDiverged, match="epoch 3: the loss became nan") as info:
        list(trainer.run(3))
    assert info.value.epoch == 2 and "model of epoch 2 was kept" in str(info.value)
    assert "\n" not in str(info.value)
    for name, value in model.state_dict().items():  # the first batch of epoch 3 was undone
        assert torch.equal(value, good[name]), name
    assert trainer.state.status == "diverged" and trainer.state.epoch == 2 and len(trainer.state.history) == 2
    assert [s["epoch"] for s in seen] == [1, 2]


def test_exploding_loss_counts_as_diverged(one_torch_thread):
    model = small_model()
    trainer = Trainer(model, windows(), batch_size=50, seed=0, threads=1)
    list(trainer.run(2))
    good = {k: v.clone() for k, v in model.state_dict().items()}
    for group in trainer.optimizer.param_groups:
        group["lr"] = 1e9  # what --resume --lr 1e9 does: a finite but absurd loss (1e22) next epoch
    with pytest.raises(TrainingDiverged, match="exploded|became"):
        list(trainer.run(2))
    assert all(torch.equal(v, good[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kwargs,message", [
    ({"lr": float("nan")}, "lr"), ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"), ({"lr": float("inf")}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"test_fraction": float("nan")}, "test_fraction"),
    ({"test_fraction": 1.0}, "test_fraction"), ({"pixel_fraction": 0.0}, "pixel_fraction"),
    ({"pixel_fraction": float("nan")}, "pixel_fraction"),
])
def test_meaningless_trainer_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Trainer(small_model(), windows(20), **kwargs)


@pytest.mark.parametrize("kwargs", [{"start": float("nan")}, {"end": float("inf")}, {"start": -1.0},
                                    {"capacity_end": float("nan")}])
def test_meaningless_beta_schedules_are_refused(kwargs):
    with pytest.raises(ValueError, match="β|beta"):
        BetaSchedule(**kwargs)


@pytest.mark.parametrize("config", [dict(noise_sigma=float("nan")), dict(noise_sigma=float("inf")),
                                    dict(rotation_prior=float("nan")), dict(decoder_widths=(100_000, 100_000)),
                                    dict(encoder_widths=(8192,) * 3, window=(512, 512)), dict(latent=10_000),
                                    dict(window=(4096, 4096))])
def test_configs_that_are_meaningless_or_huge_are_refused(config):
    with pytest.raises(ValueError):
        VAEConfig(**config)


@pytest.fixture
def data(tmp_path):
    np.save(tmp_path / "w.npy", windows(200))
    return tmp_path


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "0"], "--epochs must be at least 1"), (["--beta", "nan"], "--beta"), (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--noise-sigma", "-1"], "--noise-sigma"), (["--batch", "0"], "--batch"),
    (["--test-fraction", "1.5"], "--test-fraction"), (["--pixel-fraction", "0"], "--pixel-fraction"),
    (["--capacity", "inf"], "--capacity"),
])
def test_cli_refuses_meaningless_hyper_parameters_before_reading_anything(data, capsys, flags, message):
    out = data / "model"
    # the input does not even exist: the options are refused first
    assert main(["train", str(data / "missing.npy"), "-o", str(out), *flags, *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_empty_or_corrupt_windows_are_one_line_errors(data, capsys):
    (data / "empty.npy").write_bytes(b"")
    np.save(data / "zero.npy", np.zeros((0, 10, 10), np.float32))
    (data / "cut.npy").write_bytes((data / "w.npy").read_bytes()[:300])
    for name, message in (("empty.npy", "empty"), ("zero.npy", "expected windows"), ("cut.npy", "truncated")):
        assert main(["train", str(data / name), "-o", str(data / f"m_{name}"), "--epochs", "1", *FAST]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    model = data / "model"
    assert main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "1", *FAST]) == 0
    for name in ("empty.npy", "cut.npy"):
        assert main(["encode", str(model), str(data / name), "-o", str(data / "lat.csv")]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (data / "lat.csv").exists()


def test_divergence_in_the_cli_keeps_the_saved_model_and_exits_2(data, capsys):
    model = data / "model"
    assert main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "2", *FAST]) == 0
    before = {name: (model / name).read_bytes() for name in ("model.safetensors", "model.json", "training.safetensors")}
    code = main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "3", "--resume", "--lr", "1e9", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "diverged" in err and f"the model of epoch 2 is in {model}" in err
    after = {name: (model / name).read_bytes() for name in before}
    assert after == before  # the good model is untouched
    assert main(["train", str(data / "w.npy"), "-o", str(data / "fresh"), "--epochs", "2", "--lr", "1e9", *FAST]) == 2
    assert "nothing was saved" in capsys.readouterr().err and not (data / "fresh").exists()


def test_resume_continues_exactly_like_one_run(data, capsys):
    """Optimizer moments and the shuffling generator are restored: 2 + 2 epochs == 4 epochs, bit for bit."""
    one, two = data / "one", data / "two"
    assert main(["train", str(data / "w.npy"), "-o", str(one), "--epochs", "4", *FAST]) == 0
    assert main(["train", str(data / "w.npy"), "-o", str(two), "--epochs", "2", *FAST]) == 0
    assert main(["train", str(data / "w.npy"), "-o", str(two), "--epochs", "2", "--resume", "--threads", "1"]) == 0
    assert "with its optimizer state" in capsys.readouterr().out
    a, b = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    losses = [[h["train_loss"] for h in json.loads((f / "model.json").read_text())["history"]] for f in (one, two)]
    assert losses[0] == losses[1] and len(losses[0]) == 4
    meta = json.loads((two / "model.json").read_text())["optimizer"]
    assert meta["file"] == "training.safetensors" and meta["optimizer"] == "Adam"


def test_resume_refuses_other_architecture_flags_and_missing_models(data, capsys):
    model = data / "model"
    assert main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "1", *FAST]) == 0
    before = (model / "model.safetensors").read_bytes()
    capsys.readouterr()
    for flags in (["--arch", "vae"], ["--latent", "4"], ["--decoder-widths", "32,32"], ["--normalisation", "window"]):
        assert main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "1", "--resume", *flags]) == 2
        err = capsys.readouterr().err
        assert "--resume continues" in err and flags[0] in err, err
    assert (model / "model.safetensors").read_bytes() == before
    # the same values as the model's are fine
    assert main(["train", str(data / "w.npy"), "-o", str(model), "--epochs", "1", "--resume", "--arch", "rvae",
                 "--latent", "2", *FAST]) == 0
    assert main(["train", str(data / "w.npy"), "-o", str(data / "none"), "--epochs", "1", "--resume"]) == 2


def test_models_with_nan_weights_are_refused_by_encode(data, capsys):
    model = small_model()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_model(model, data / "bad")
    with pytest.raises(ValueError, match="NaN"):
        load_model(data / "bad")
    assert main(["encode", str(data / "bad"), str(data / "w.npy"), "-o", str(data / "lat.csv")]) == 2
    assert "diverged" in capsys.readouterr().err and not (data / "lat.csv").exists()


def test_analyze_keeps_sites_and_model_when_training_diverges(tmp_path, capsys, monkeypatch):
    from napari_rvae.synth import make_sample

    sample = make_sample("graphene-movie", seed=0, frames=2, size=128)
    np.save(tmp_path / "movie.npy", sample["data"].astype(np.float32))
    _poison_after(monkeypatch, calls=1)
    out = tmp_path / "project"
    code = main(["analyze", str(tmp_path / "movie.npy"), "-o", str(out), "--epochs", "2", "--window", "12"])
    err = capsys.readouterr().err
    assert code == 2 and "diverged" in err and err.count("\n") == 1
    assert not out.exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("project.rescued-")]
    assert len(kept) == 1 and str(kept[0]) in err
    assert len(pd.read_csv(kept[0] / "sites.csv")) > 10
    assert all(math.isfinite(float(v.abs().sum())) for v in load_model(kept[0] / "model").state_dict().values())


def test_a_diverging_beta_search_point_is_skipped_not_fatal(monkeypatch, one_torch_thread):
    from napari_rvae.analysis.beta_search import BetaSearch
    from napari_rvae.synth import shift_lattice

    original = Trainer._loss

    def loss(self, *args, **kwargs):
        total, r, k = original(self, *args, **kwargs)
        if self.model.training and self.model.config.beta.start == 2.0:
            total = total * float("nan")
        return total, r, k

    monkeypatch.setattr(Trainer, "_loss", loss)
    img = shift_lattice(0, size=64, a=8.0)["data"][0]
    search = BetaSearch(img, starts=(0.1, 2.0), ends=(1.0,), window=12, n_windows=120, epochs=1, step=4,
                        warmup_epochs=0, train_options={"threads": 1}, model_options={"decoder_widths": (16, 16)},
                        attempts=1)
    results = list(search.run())
    assert search.status == "finished" and len(results) == 2
    assert "diverged" in results[1] and not math.isfinite(results[1]["score"])
    assert math.isfinite(search.scores[0, 0]) and search.best["beta_start"] == 0.1
