"""The train / encode / decode commands, end to end on tiny data."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_rvae.cli import main

FAST = ["--threads", "1", "--encoder-widths", "32", "--decoder-widths", "16,16"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "windows.npy", rng.uniform(0, 1, (200, 10, 10)).astype(np.float32))
    np.save(tmp_path / "movie.npy", rng.uniform(0, 5, (2, 40, 40)).astype(np.float32))
    pd.DataFrame({"frame": [0, 0, 1, 1], "y": [10.0, 20.0, 30.0, 1.0], "x": [10.0, 20.0, 15.0, 1.0]}).to_csv(
        tmp_path / "sites.csv", index=False)
    return tmp_path


def test_train_encode_decode_windows(files, capsys):
    model = files / "model"
    assert main(["train", str(files / "windows.npy"), "-o", str(model), "--epochs", "2", *FAST]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch ") == 2 and "model saved" in out
    meta = json.loads((model / "model.json").read_text())
    assert meta["kind"] == "vae" and meta["window"] == [10, 10] and len(meta["history"]) == 2
    assert meta["normalisation"]["mode"] == "global" and meta["priors"]["rotation_prior"] == 0.1
    assert main(["encode", str(model), str(files / "windows.npy"), "-o", str(files / "lat.csv")]) == 0
    table = pd.read_csv(files / "lat.csv")
    assert len(table) == 200 and {"angle", "dx", "dy", "z0", "z1"} <= set(table.columns)
    assert main(["decode", str(model), "--grid", "4", "-o", str(files / "m.png")]) == 0
    assert (files / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["train", str(files / "windows.npy"), "-o", str(model), "--epochs", "1", "--resume", *FAST]) == 0
    assert len(json.loads((model / "model.json").read_text())["history"]) == 3


def test_train_and_encode_on_movie_sites(files, capsys):
    model = files / "model"
    args = ["train", str(files / "movie.npy"), "--sites", str(files / "sites.csv"), "--window", "8", "-o", str(model),
            "--epochs", "1", "--test-fraction", "0", "--arch", "shift-vae", *FAST]
    assert main(args) == 0
    assert "1 dropped at border" in capsys.readouterr().out
    assert main(["encode", str(model), str(files / "movie.npy"), "--sites", str(files / "sites.csv"),
                 "-o", str(files / "lat.csv")]) == 0
    table = pd.read_csv(files / "lat.csv")
    assert len(table) == 4 and table["dx"].isna().sum() == 1 and "angle" not in table


def test_bad_input_gives_one_line_error(files, capsys):
    assert main(["train", str(files / "missing.npy"), "-o", str(files / "m")]) == 2
    assert "file not found" in capsys.readouterr().err
    # without --window the window is two atom spacings, measured on the sites; one site cannot be measured
    pd.DataFrame({"frame": [0], "y": [10.0], "x": [10.0]}).to_csv(files / "one.csv", index=False)
    assert main(["train", str(files / "movie.npy"), "--sites", str(files / "one.csv"), "-o", str(files / "m")]) == 2
    assert "--window" in capsys.readouterr().err


def test_subpixel_centring_is_kept_with_the_model_and_repeated_by_encode(files):
    """train --centring subpixel records the recipe; encode cuts new windows the same way."""
    from napari_rvae.patches import cut_windows
    from napari_rvae.vae import encode, load_model

    sites = pd.DataFrame({"frame": [0, 0, 1], "y": [10.3, 20.7, 30.5], "x": [10.6, 20.2, 15.1]})
    sites.to_csv(files / "sub.csv", index=False)
    model_dir = files / "model"
    assert main(["train", str(files / "movie.npy"), "--sites", str(files / "sub.csv"), "--window", "8",
                 "--centring", "subpixel", "-o", str(model_dir), "--epochs", "1", "--test-fraction", "0", *FAST]) == 0
    assert json.loads((model_dir / "model.json").read_text())["normalisation"]["centring"] == "subpixel"
    assert main(["encode", str(model_dir), str(files / "movie.npy"), "--sites", str(files / "sub.csv"),
                 "-o", str(files / "lat.csv")]) == 0
    model = load_model(model_dir)
    norm = model.normalisation
    cut = cut_windows(np.load(files / "movie.npy"), sites, 8, normalisation="global", lo=norm["lo"], hi=norm["hi"],
                      centring="subpixel")
    np.testing.assert_allclose(pd.read_csv(files / "lat.csv")["z0"], encode(model, cut.windows)["z0"], rtol=1e-5, atol=1e-6)


def test_round_columns_is_kept_with_the_model_and_repeated_by_encode(tmp_path, capsys):
    """train --round-columns on a movie of elliptical columns records the measured correction;
    encode repeats it (same latents as windows cut with the stored recipe)."""
    from napari_rvae.patches import cut_windows, recipe_options
    from napari_rvae.synth.render import render_spots
    from napari_rvae.vae import encode, load_model

    rng = np.random.default_rng(0)
    g = np.arange(10.0, 90.0, 12.0)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    pos = np.c_[yy.ravel(), xx.ravel()]
    movie = np.stack([render_spots((100, 100), pos + rng.normal(0, 0.3, pos.shape), 1.0, 2.0, ellipticity=0.25,
                                   orientation=0.8) + rng.normal(0, 0.02, (100, 100)) for _ in range(2)])
    np.save(tmp_path / "movie.npy", movie.astype(np.float32))
    sites = pd.DataFrame({"frame": np.repeat([0, 1], len(pos)), "y": np.tile(pos[:, 0], 2), "x": np.tile(pos[:, 1], 2)})
    sites.to_csv(tmp_path / "sites.csv", index=False)
    model_dir = tmp_path / "model"
    assert main(["train", str(tmp_path / "movie.npy"), "--sites", str(tmp_path / "sites.csv"), "--window", "10",
                 "--round-columns", "-o", str(model_dir), "--epochs", "1", "--test-fraction", "0", *FAST]) == 0
    rounded = json.loads((model_dir / "model.json").read_text())["normalisation"]["round_columns"]
    assert rounded["applied"] and abs(rounded["ellipticity"] - 0.25) < 0.03
    assert abs((rounded["orientation"] - 0.8 + np.pi / 2) % np.pi - np.pi / 2) < 0.05
    assert main(["encode", str(model_dir), str(tmp_path / "movie.npy"), "--sites", str(tmp_path / "sites.csv"),
                 "-o", str(tmp_path / "lat.csv")]) == 0
    model = load_model(model_dir)
    cut = cut_windows(movie, sites, 10, **recipe_options(model.normalisation))
    np.testing.assert_allclose(pd.read_csv(tmp_path / "lat.csv")["z0"].to_numpy()[cut.rows],
                               encode(model, cut.windows)["z0"], rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    assert main(["train", str(tmp_path / "movie.npy"), "--round-columns", "-o", str(tmp_path / "m2")]) == 2
    assert "--round-columns" in capsys.readouterr().err
