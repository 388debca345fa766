"""CLI: chemistry-map and beta-search write what they promise (tiny models, bad input exits 2)."""

import numpy as np

from napari_rvae.cli import main
from napari_rvae.synth import save_sample, shift_lattice
from napari_rvae.vae import Trainer, VAEConfig, build_model, save_model


def test_chemistry_map_cli_writes_npz_and_png(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((60, 12, 12)).astype(np.float32)
    model = build_model(VAEConfig(arch="skip-rvae", window=(12, 12), latent=2, encoder_widths=(16,),
                                  decoder_widths=(8, 8)), seed=0)
    Trainer(model, x, threads=1, batch_size=30).fit(1)
    save_model(model, tmp_path / "m")
    assert main(["chemistry-map", str(tmp_path / "m"), "-o", str(tmp_path / "map.npz"), "--grid", "8",
                 "--bond-length", "2.5"]) == 0
    with np.load(tmp_path / "map.npz", allow_pickle=False) as f:
        assert f["counts"].shape == (8, 8, 4) and f["physical"].shape == (8, 8) and f["rgb"].shape == (8, 8, 3)
        assert (f["n5"][~f["physical"]] == -1).all()
    assert main(["chemistry-map", str(tmp_path / "m"), "-o", str(tmp_path / "map.png"), "--grid", "8",
                 "--bond-length", "2.5"]) == 0
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["chemistry-map", str(tmp_path / "m"), "-o", str(tmp_path / "map.txt")]) == 2
    assert "npz or .png" in capsys.readouterr().err


def test_beta_search_cli(tmp_path, capsys):
    path = save_sample(shift_lattice(0, size=64, a=8.0), tmp_path / "lattice.npz")
    out = tmp_path / "search"
    assert main(["beta-search", str(path), "-o", str(out), "--starts", "0.1,2", "--ends", "1", "--window", "12",
                 "--windows", "100", "--epochs", "1", "--warmup-epochs", "1", "--step", "4", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "[2/2]" in text and "best:" in text
    for name in ("beta_search.json", "ranking.csv", "scores.png", "best_z0.png", "best_model/model.json"):
        assert (out / name).exists(), name
    # the ranking is shown, best (highest smoothness score) first, and agrees with "best:"
    import pandas as pd

    ranking = pd.read_csv(out / "ranking.csv")
    assert list(ranking["rank"]) == [1, 2] and ranking["score"].is_monotonic_decreasing
    shown = text.split("ranking by smoothness score")[1].splitlines()[2].split()
    assert shown[0] == "1" and float(shown[1]) == ranking["beta_start"][0] and float(shown[3]) == ranking["score"][0].round(3)
    assert f"best: beta {ranking['beta_start'][0]:g} ->" in text
