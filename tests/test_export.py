"""Exports to peers' formats: AtomAI coordinates and windows, HyperSpy signals, a decoder other tools load.

The decoder test loads the exported file in a separate Python that cannot import napari_rvae
and compares it with :func:`napari_rvae.vae.decode` to 1e-5.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_rvae.cli import main
from napari_rvae.io.sites import make_sites, write_sites

# A child Python in isolated mode (-I: no PYTHONPATH, no current folder on sys.path) whose import
# system refuses napari_rvae, so whatever it loads cannot lean on the package.
_BLOCK = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'napari_rvae':\n"
    "            raise ImportError('napari_rvae is blocked in this check')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def _run_clean(code: str) -> dict:
    done = subprocess.run([sys.executable, "-I", "-c", _BLOCK + code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _latents(n=16, k=2, seed=3):
    rng = np.random.default_rng(seed)
    return {"z": rng.normal(size=(n, k)).astype(np.float32), "angle": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
            "dx": rng.normal(0, 1.5, n).astype(np.float32), "dy": rng.normal(0, 1.5, n).astype(np.float32),
            "classes": rng.integers(0, 2, n).astype(np.int64)}


def _model_folder(tmp_path, **config):
    from napari_rvae.vae import VAEConfig, build_model, save_model

    model = build_model(VAEConfig(**config), seed=1)
    folder = tmp_path / "model"
    save_model(model, folder, normalisation={"mode": "global", "lo": -1.0, "hi": 2.0})
    return folder


@pytest.mark.parametrize("config", [
    dict(arch="rvae", window=(20, 20), latent=2),
    dict(arch="skip-rvae", window=(16, 16), latent=3, n_classes=2, likelihood="bernoulli"),
    dict(arch="shift-vae", window=(24,), latent=1),
    dict(arch="vae", window=(12, 12), latent=2),
])
def test_torchscript_decoder_loads_without_napari_rvae_and_matches_decode(tmp_path, config):
    from napari_rvae.vae import decode, load_model

    folder = _model_folder(tmp_path, **config)
    out = tmp_path / "decoder.pt"
    assert main(["export", "decoder", str(folder), "-o", str(out)]) == 0
    spec = json.loads((tmp_path / "decoder.pt.json").read_text())
    model = load_model(folder)
    values = _latents(k=config["latent"])
    names = [s["name"] for s in spec["inputs"]]
    assert names[0] == "z" and ("angle" in names) == model.config.has_angle
    assert spec["normalisation"] == {"mode": "global", "lo": -1.0, "hi": 2.0}
    expected = decode(model, values["z"], angle=values["angle"], dx=values["dx"], dy=values["dy"],
                      classes=values["classes"] if model.config.n_classes else None)
    for name in names:
        np.save(tmp_path / f"{name}.npy", values[name])
    got = _run_clean(
        "import json, numpy as np, torch\n"
        f"folder = {str(tmp_path)!r}\n"
        "spec = json.load(open(folder + '/decoder.pt.json'))\n"
        "decoder = torch.jit.load(folder + '/decoder.pt')\n"
        "inputs = [torch.from_numpy(np.load(f\"{folder}/{s['name']}.npy\")) for s in spec['inputs']]\n"
        "windows = decoder(*inputs).numpy()\n"
        "np.save(folder + '/got.npy', windows)\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.startswith('napari_rvae'))}))\n"
    )
    assert got["loaded"] == []
    windows = np.load(tmp_path / "got.npy")
    assert windows.shape == expected.shape == (16, *config["window"])
    np.testing.assert_allclose(windows, expected, atol=1e-5, rtol=0)


def test_onnx_decoder_runs_in_onnxruntime_without_napari_rvae(tmp_path):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from napari_rvae.vae import decode, load_model

    folder = _model_folder(tmp_path, arch="rvae", window=(18, 18), latent=2)
    assert main(["export", "decoder", str(folder), "-o", str(tmp_path / "decoder.onnx")]) == 0
    values = _latents(n=9)
    for name, array in values.items():
        np.save(tmp_path / f"{name}.npy", array)
    _run_clean(
        "import json, numpy as np, onnxruntime\n"
        f"folder = {str(tmp_path)!r}\n"
        "spec = json.load(open(folder + '/decoder.onnx.json'))\n"
        "session = onnxruntime.InferenceSession(folder + '/decoder.onnx')\n"
        "feeds = {s['name']: np.load(f\"{folder}/{s['name']}.npy\") for s in spec['inputs']}\n"
        "np.save(folder + '/got.npy', session.run(None, feeds)[0])\n"
        "print(json.dumps({'ok': True}))\n"
    )
    model = load_model(folder)
    expected = decode(model, values["z"], angle=values["angle"], dx=values["dx"], dy=values["dy"])
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), expected, atol=1e-5, rtol=0)


def test_decoder_export_refuses_unknown_extension(tmp_path):
    folder = _model_folder(tmp_path, arch="vae", window=(8, 8), latent=1)
    assert main(["export", "decoder", str(folder), "-o", str(tmp_path / "decoder.bin")]) == 2


def test_atomai_coordinates_and_windows_match_the_sites(tmp_path):
    # a movie whose pixel value encodes its own (frame, row, column): windows can be checked exactly
    t, h, w = 3, 40, 50
    frame, row, col = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    movie = (frame * 10000 + row * 100 + col).astype(np.float32)
    sites = make_sites([0, 0, 2, 2, 2], [10.2, 20.0, 5.0, 30.6, 1.0], [12.0, 25.4, 40.0, 8.0, 1.0], cls=[0, 1, 1, 0, 0])
    write_sites(sites, tmp_path / "sites.csv")
    np.save(tmp_path / "movie.npy", movie)
    assert main(["export", "atomai", str(tmp_path / "sites.csv"), "-o", str(tmp_path / "out"),
                 "--movie", str(tmp_path / "movie.npy"), "--window", "8"]) == 0
    with np.load(tmp_path / "out" / "coordinates.npz", allow_pickle=False) as archive:
        coordinates = {int(k): archive[k] for k in archive.files}
    assert sorted(coordinates) == [0, 1, 2]  # one entry per image, frame 1 empty
    assert coordinates[1].shape == (0, 3)
    np.testing.assert_allclose(coordinates[0], [[10.2, 12.0, 0], [20.0, 25.4, 1]])
    np.testing.assert_allclose(coordinates[2][:, :2], [[5.0, 40.0], [30.6, 8.0], [1.0, 1.0]])
    windows = np.load(tmp_path / "out" / "windows.npy", allow_pickle=False)
    com = np.load(tmp_path / "out" / "windows_com.npy")
    frames = np.load(tmp_path / "out" / "windows_frames.npy")
    rows = np.load(tmp_path / "out" / "windows_rows.npy")
    assert windows.shape == (4, 8, 8) and windows.dtype == np.float32  # the corner site (1, 1) is dropped
    assert 4 not in rows.tolist()
    for window, (cy, cx), f, r in zip(windows, com, frames, rows):
        assert f == sites["frame"].iloc[r]
        assert (cy, cx) == (np.floor(sites["y"].iloc[r] + 0.5), np.floor(sites["x"].iloc[r] + 0.5))
        assert window[4, 4] == f * 10000 + cy * 100 + cx  # [c − w//2, c − w//2 + w): the centre is index w//2


def test_hyperspy_latent_maps_and_sites_round_trip(tmp_path):
    pytest.importorskip("rsciio")
    pytest.importorskip("h5py")
    from napari_rvae.io.movie import read_movie
    from rsciio.hspy import file_reader

    rng = np.random.default_rng(0)
    n = 400
    sites = make_sites(rng.integers(0, 2, n), rng.uniform(0, 47, n), rng.uniform(0, 63, n), kind="atom")
    sites["z0"] = 0.1 * sites["x"] - 0.05 * sites["y"]  # a plane: linear interpolation is exact inside the hull
    sites["angle"] = 0.4
    sites.loc[sites.index[:5], "kind"] = "hollow"
    sites["y_nm"], sites["x_nm"] = sites["y"] * 0.02, sites["x"] * 0.02
    write_sites(sites, tmp_path / "sites.csv")
    assert main(["export", "hyperspy", str(tmp_path / "sites.csv"), "-o", str(tmp_path / "hs"),
                 "--shape", "48", "64", "--columns", "z0,angle"]) == 0
    z0 = file_reader(str(tmp_path / "hs" / "latent_map_z0.hspy"))[0]
    assert z0["data"].shape == (2, 48, 64)
    assert [(a["name"], a["units"], a["navigate"]) for a in z0["axes"]] == [("t", "frame", True), ("y", "nm", False),
                                                                              ("x", "nm", False)]
    assert z0["axes"][1]["scale"] == pytest.approx(0.02)
    yy, xx = np.mgrid[0:48, 0:64]
    inner = (slice(8, 40), slice(8, 56))
    np.testing.assert_allclose(z0["data"][0][inner], (0.1 * xx - 0.05 * yy)[inner], atol=1e-5)
    angle = file_reader(str(tmp_path / "hs" / "latent_map_angle.hspy"))[0]
    np.testing.assert_allclose(angle["data"][1][inner], 0.4, atol=1e-5)
    movie = read_movie(tmp_path / "hs" / "latent_map_z0.hspy")[0]  # our own reader opens it on the movie's scale
    assert movie.data.shape == (2, 48, 64) and movie.pixel_size_nm == pytest.approx((0.02, 0.02))
    table = file_reader(str(tmp_path / "hs" / "sites.hspy"))[0]
    columns = list(table["original_metadata"]["columns"])
    assert table["data"].shape == (n, len(columns))
    np.testing.assert_allclose(table["data"][:, columns.index("x")], sites["x"])
    kinds = list(table["original_metadata"]["kinds"])
    codes = table["data"][:, columns.index("kind_code")].astype(int)
    assert [kinds[c] for c in codes] == sites["kind"].tolist()


def test_export_needs_a_frame_size(tmp_path):
    write_sites(make_sites([0], [1.0], [1.0], z0=0.5), tmp_path / "s.csv")
    assert main(["export", "hyperspy", str(tmp_path / "s.csv"), "-o", str(tmp_path / "hs")]) == 2
    assert not (tmp_path / "hs").exists()  # refused before anything is written


def test_exports_never_write_over_inputs_or_models_without_overwrite(tmp_path, capsys):
    folder = _model_folder(tmp_path, arch="vae", window=(8, 8), latent=1)
    assert main(["export", "decoder", str(folder), "-o", str(folder / "decoder.pt")]) == 2  # inside the model
    assert "model folder" in capsys.readouterr().err and not (folder / "decoder.pt").exists()
    sites = make_sites([0, 0], [5.0, 9.0], [5.0, 9.0], z0=[0.1, 0.2])
    write_sites(sites, tmp_path / "sites.csv")
    movie = np.zeros((1, 20, 20), np.float32)
    np.save(tmp_path / "movie.npy", movie)
    out = tmp_path / "atomai"
    args = ["export", "atomai", str(tmp_path / "sites.csv"), "-o", str(out)]
    assert main(args + ["--movie", str(tmp_path / "movie.npy"), "--window", "6"]) == 0
    assert (out / "windows.npy").exists() and (out / "export.json").exists()
    assert main(args) == 2  # an earlier export is not replaced silently
    assert main(args + ["--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["coordinates.npz", "export.json"]  # replaced as a whole
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["export", "atomai", str(tmp_path / "sites.csv"), "-o", str(tmp_path / "other"), "--overwrite"]) == 2
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"  # someone else's folder is never replaced
