"""Hostile and damaged files: every reader keeps the clean-error contract (a valid movie, or one
``ValueError`` line) on truncated, flipped and size-inflated files of every format, refuses
what would not fit before allocating it, and stays under 500 MB of memory on files < 5 MB.
Projects and models from disk are checked the same way."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _hostile
from napari_rvae.io import limits
from napari_rvae.io.movie import read_movie

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return _hostile.valid_files(tmp_path_factory.mktemp("valid"))


@pytest.fixture(scope="module")
def inflated(tmp_path_factory):
    return _hostile.inflated_files(tmp_path_factory.mktemp("inflated"))


def _contract(path: Path):
    """A list of valid movies, or None after one clean ValueError line."""
    try:
        movies = read_movie(path)
    except ValueError as err:
        message = str(err)
        assert message and "\n" not in message, message
        assert "MemoryError" not in message, message  # refused before allocating, not after failing to
        return None
    assert movies
    for m in movies:
        assert m.data.ndim == 3 and min(m.data.shape) >= 1 and np.dtype(m.data.dtype) == np.float32
        assert m.data.size * 5 <= max(limits.EXPANSION_FLOOR, limits.EXPANSION_RATIO * path.stat().st_size)
    return movies


def test_the_valid_files_read(valid):
    for name, path in valid.items():
        movies = _contract(path)
        assert movies is not None, name
    wave = read_movie(valid["ibw"])[0]  # the hand-written Igor wave round-trips, orientation included
    np.testing.assert_array_equal(wave.data[0], _hostile.MOVIE[0])
    np.testing.assert_array_equal(read_movie(valid["mrc"])[0].data, _hostile.MOVIE)
    ser = read_movie(valid["ser"])[0]
    np.testing.assert_array_equal(ser.data, _hostile.MOVIE)
    assert ser.scale[1:] == pytest.approx((0.1, 0.1)) and ser.units[1] == "nm"


@pytest.mark.parametrize("name", ["npy-declares-1.6GB", "npz-declares-1.6GB", "npz-deflated-400MB-zeros",
                                  "h5-unwritten-1.6GB", "h5-gzip-256MB-zeros", "nsid-unwritten-1.6GB",
                                  "hspy-unwritten-1.6GB", "tif-zlib-400MB-zeros", "tif-size-tags-lie",
                                  "ibw-declares-1.6GB", "ibw-note-2GB", "mrc-declares-1.6GB",
                                  "ser-declares-2G-images"])
def test_files_declaring_huge_images_are_refused_before_allocating(inflated, name):
    if name not in inflated:
        pytest.skip(f"{name}: its writer (rosettasciio) is not installed")
    with pytest.raises(ValueError) as info:
        read_movie(inflated[name])
    message = str(info.value)
    assert "\n" not in message and "MemoryError" not in message
    assert any(word in message for word in ("truncated", "expansion", "corrupt")), message


def test_trusted_highly_compressed_files_can_be_read(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "zeros.npz", data=np.zeros((8, 256, 256), np.float32))  # 2 MB of zeros, ~2 kB
    monkeypatch.setattr(limits, "EXPANSION_FLOOR", 2**20)
    with pytest.raises(ValueError, match="expansion"):
        read_movie(tmp_path / "zeros.npz")
    monkeypatch.setenv(limits.TRUST_ENV, "1")
    assert read_movie(tmp_path / "zeros.npz")[0].data.shape == (8, 256, 256)


def test_memory_check_refuses_what_does_not_fit(tmp_path, monkeypatch):
    np.save(tmp_path / "m.npy", np.zeros((4, 64, 64), np.float32))
    monkeypatch.setattr(limits, "available_memory", lambda: 10_000)
    with pytest.raises(ValueError, match="memory"):
        read_movie(tmp_path / "m.npy")


@pytest.mark.parametrize("fmt", ["npy", "npy-u16", "npz", "npz-deflate", "tif", "tif-zlib", "tif-rgb", "h5",
                                 "h5-gzip", "nsid", "hspy", "emd", "ibw", "mrc", "ser", "real-dm3", "real-ibw",
                                 "real-nsid", "real-tiff"])
def test_mutated_files_of_every_format_keep_the_contract(valid, tmp_path, fmt):
    """Truncated anywhere, bytes flipped, header integers inflated: a movie or one clean line."""
    if fmt not in valid:
        pytest.skip(f"{fmt}: needs ../shared/real (real instrument files) or rosettasciio")
    path = valid[fmt]
    content = path.read_bytes()
    outcomes = {"ok": 0, "refused": 0}
    for i, (kind, data) in enumerate(_hostile.mutations(content, seed=len(fmt), n=24)):
        target = tmp_path / f"m{i}{path.suffix}"
        target.write_bytes(data)
        outcomes["ok" if _contract(target) is not None else "refused"] += 1
    assert outcomes["refused"] >= 3  # truncations at least are noticed


def test_peak_memory_under_500_mb_on_small_hostile_files(inflated, valid, tmp_path):
    """Each file is read (and described, as ``info`` does) in a child whose address space is capped at
    500 MB above its start; every one must give a movie or a clean refusal, none may hit the cap."""
    files = [p for p in inflated.values() if p.stat().st_size < 5e6]
    for name, path in valid.items():
        for i, (_, data) in enumerate(_hostile.mutations(path.read_bytes(), seed=3, n=8)):
            target = tmp_path / f"{name}-{i}{path.suffix}"
            target.write_bytes(data)
            files.append(target)
    done = subprocess.run([sys.executable, str(HERE / "_memcap.py"), "500", "60", *map(str, files)],
                          capture_output=True, text=True, timeout=900)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(files), done.stderr[-3000:]
    bad = [r for r in rows if r["outcome"] not in ("ok", "clean")]
    assert not bad, bad[:5]
    assert max(r["peak_mb"] for r in rows) < 500


def test_a_float_image_with_four_values_per_pixel_is_four_channels(tmp_path):
    np.save(tmp_path / "rgba.npy", np.random.default_rng(0).random((64, 48, 4)).astype(np.float32))
    movies = read_movie(tmp_path / "rgba.npy")
    assert len(movies) == 4 and all(m.data.shape == (1, 64, 48) for m in movies)
    np.save(tmp_path / "movie.npy", np.zeros((4, 64, 48), np.float32))  # 4 frames stay frames
    assert read_movie(tmp_path / "movie.npy")[0].data.shape == (4, 64, 48)


# ------------------------------------------------------------------ projects
@pytest.fixture
def project(tmp_path):
    from napari_rvae.analysis.project import save_project

    fig = tmp_path / "f.png"
    fig.write_bytes(b"\x89PNG")
    np.save(tmp_path / "movie.npy", np.zeros((2, 16, 16), np.float32))
    sites = pd.DataFrame({"frame": [0, 1], "y": [3.0, 4.0], "x": [5.0, 6.0], "kind": "atom", "class": 0,
                          "intensity": 1.0})
    return save_project(tmp_path / "p", sites=sites, movie_path=tmp_path / "movie.npy",
                        movie_info={"shape": [2, 16, 16]}, layers={"mask": (np.zeros((16, 16), np.uint8), "labels")},
                        figures={"f": fig}, record={"a": 1})


BAD_INDEX = [
    ("version", "2.5"), ("version", True), ("version", None), ("movie", []), ("movie", {"shape": [2, "x", 16]}),
    ("movie", {"scale": [float("nan"), 1, 1]}), ("movie", {"scale": [1e309, 1, 1]}), ("movie", {"path": 7}),
    ("sites", 5), ("sites", "../../etc/passwd"), ("sites", "/etc/passwd"), ("figures", "figures/f.png"),
    ("figures", [3]), ("layers", {"file": "layers.npz", "kinds": {"mask": "volume"}}),
    ("layers", {"file": "layers.npz", "kinds": ["labels"]}), ("layers", {"kinds": {}}), ("models", ["x"]),
    ("models", {"m": None}), ("record", {"nested": 1}), ("surprise", 1), ("saved", 12),
]


@pytest.mark.parametrize("key,value", BAD_INDEX)
def test_malformed_project_files_are_one_line_errors(project, key, value):
    from napari_rvae.analysis.project import load_project

    index = json.loads((project / "project.json").read_text())
    index[key] = value
    (project / "project.json").write_text(json.dumps(index))
    with pytest.raises(ValueError) as info:
        load_project(project)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"format": "napari-rvae-project", "version": 1, '
                                  '"movie": ' + "[" * 50_000 + "]" * 50_000 + "}", "\x00\x01", "{}", "null"])
def test_absurd_project_json_is_refused(project, text):
    from napari_rvae._napari import read_project

    (project / "project.json").write_text(text)
    with pytest.raises(ValueError) as info:
        read_project(str(project))
    assert "\n" not in str(info.value)


def test_project_layers_of_the_wrong_shape_are_refused(project):
    from napari_rvae.analysis.export import save_npz
    from napari_rvae.analysis.project import load_project

    save_npz(project / "layers.npz", {"mask": np.zeros((3,), np.float32)})
    with pytest.raises(ValueError, match="dimensions"):
        load_project(project)


def _nested(inner):
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8), _nested,
                           max_leaves=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["version", "movie", "sites", "windows", "results", "layers", "models", "figures",
                            "record", "saved", "format"]), value=json_values)
def test_any_project_entry_is_valid_or_one_line(project, key, value):
    from napari_rvae._napari import read_project

    path = project / "project.json"
    original = path.read_text()
    index = json.loads(original)
    index[key] = value
    path.write_text(json.dumps(index))
    try:
        layers = read_project(str(project))
    except ValueError as err:
        assert "\n" not in str(err)
    else:
        for data, kwargs, kind in layers:
            assert kind in ("image", "labels", "points")
    finally:
        path.write_text(original)


# -------------------------------------------------------------------- models
@pytest.mark.parametrize("change", [
    {"decoder_widths": [10**7, 10**7]}, {"encoder_widths": [10**6] * 40}, {"window": [10**5, 10**5]},
    {"latent": 10**6}, {"noise_sigma": float("nan")}, {"beta": {"kind": "constant", "start": float("inf")}},
])
def test_hostile_model_json_is_refused_before_building(tmp_path, change):
    from napari_rvae.vae import VAEConfig, build_model, load_model, save_model

    save_model(build_model(VAEConfig(window=(8, 8), encoder_widths=(8,), decoder_widths=(8, 8))), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["config"].update(change)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError) as info:
        load_model(tmp_path / "m")
    assert "\n" not in str(info.value)


def test_hostile_segmenter_json_is_refused_before_building(tmp_path):
    from napari_rvae.segment import load_segmenter
    from napari_rvae.segment.default_model import DEFAULT_ATOM_MODEL_DIR

    folder = tmp_path / "seg"
    folder.mkdir()
    for name in ("model.safetensors", "model.json"):
        (folder / name).write_bytes((DEFAULT_ATOM_MODEL_DIR / name).read_bytes())
    meta = json.loads((folder / "model.json").read_text())
    meta["unet"]["filters"] = 10**6
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="too large"):
        load_segmenter(folder)


def test_shipped_files_are_present_and_load():
    """A missing or corrupt shipped model or sample is a failure, not a skip."""
    from napari_rvae.segment import load_default_atom_model
    from napari_rvae.synth import SAMPLES
    from napari_rvae.synth.shipped import shipped_path

    model, config = load_default_atom_model(with_config=True)
    assert config["kind"] == "segmenter" and sum(p.numel() for p in model.parameters()) > 1000
    for name in SAMPLES:
        path = shipped_path(name)
        assert path is not None and path.exists(), name
        movies = read_movie(path)
        assert movies[0].data.ndim == 3 and math.isfinite(float(np.asarray(movies[0].data).sum()))
