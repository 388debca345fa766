"""``napari-rvae detect`` end to end on small files."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.cli import main
from napari_rvae.detect.scenes import graphene_scene
from napari_rvae.io.sites import read_sites


@pytest.fixture(scope="module")
def movie_file(tmp_path_factory):
    scenes = [graphene_scene((128, 128), 8.0, seed=s, n_si=4, stone_wales_defects=1, margin=24) for s in range(2)]
    path = tmp_path_factory.mktemp("detect") / "movie.npy"
    np.save(path, np.stack([sc["image"] for sc in scenes]).astype(np.float32))
    return path, scenes


def test_detect_writes_atoms_with_rings(movie_file, tmp_path, capsys):
    path, scenes = movie_file
    out = tmp_path / "sites.csv"
    assert main(["detect", str(path), "-o", str(out), "--rings", "--tracks"]) == 0
    sites = read_sites(out)
    for column in ("frame", "y", "x", "kind", "class", "intensity", "n5", "n6", "n7", "n8", "ring_size", "track_id"):
        assert column in sites.columns
    atoms = sites[sites["kind"] == "atom"]
    assert set(sites["kind"]) == {"atom", "hollow"}
    for t, sc in enumerate(scenes):
        frame = atoms[atoms["frame"] == t]
        dist, idx = cKDTree(sc["yx"]).query(frame[["y", "x"]].to_numpy())
        assert (dist < 2).mean() > 0.99
        assert (frame["class"].to_numpy() == sc["is_si"][idx]).mean() > 0.98
    assert (sites.loc[sites["kind"] == "hollow", "ring_size"] == 7).sum() == 2 * len(scenes)
    assert "atom" in capsys.readouterr().out


def test_detect_walls_mode(tmp_path):
    yy, xx = np.mgrid[:64, :64]
    phase = np.where(xx > 30, 1.0, -1.0) + np.random.default_rng(0).normal(0, 0.3, (64, 64))
    movie = tmp_path / "pfm.npy"
    np.save(movie, phase[None].astype(np.float32))
    out = tmp_path / "walls.csv"
    assert main(["detect", str(movie), "-o", str(out), "--walls", "--n-walls", "15", "--wall-spacing", "3"]) == 0
    sites = read_sites(out)
    assert len(sites) == 15 and set(sites["kind"]) == {"wall"}
    assert np.abs(sites["x"] - 30.5).max() <= 2.0
    # the old route (threshold only, Canny edges) stays available and finds the same wall
    old = tmp_path / "walls_canny.csv"
    assert main(["detect", str(movie), "-o", str(old), "--walls", "--tip-sigma", "0", "--wall-method", "canny"]) == 0
    canny = read_sites(old)
    assert len(canny) >= 40 and np.abs(canny["x"] - 30.5).max() <= 2.0


def test_detect_bad_input_exits_with_one_clear_line(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "s.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "missing.csv").exists()


@pytest.mark.parametrize("name, data", [
    ("constant", np.ones((2, 64, 64), np.float32)),
    ("noise", np.random.default_rng(1).normal(size=(256, 256)).astype(np.float32)),
    ("smooth noise (no lattice)", __import__("scipy.ndimage").ndimage.gaussian_filter(
        np.random.default_rng(2).normal(size=(256, 256)), 3).astype(np.float32)),
    ("one pixel", np.ones((1, 1), np.float32)),
    ("4-D", np.zeros((2, 2, 2, 2, 2), np.float32)),
])
def test_detect_refuses_frames_without_a_lattice_in_one_line_and_writes_nothing(tmp_path, capsys, name, data):
    movie = tmp_path / "movie.npy"
    np.save(movie, data)
    out = tmp_path / "s.csv"
    assert main(["detect", str(movie), "-o", str(out), "--save-map"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("napari-rvae detect: error:") and "\n" not in err, err
    assert not any(p.name.startswith("s") for p in tmp_path.iterdir()), list(tmp_path.iterdir())


def test_detect_with_defaults_on_low_dose_graphene_writes_sites_record_and_map(tmp_path, capsys):
    """Defaults only: the lattice is estimated, the sites are plausible, the run is recorded."""
    import json

    from napari_rvae.io.maps import read_atom_probability
    from napari_rvae.synth.instrument import low_dose_graphene

    scene = low_dose_graphene(2, size=256)
    movie = tmp_path / "frame.npy"
    np.save(movie, scene["image"])
    out = tmp_path / "sites.csv"
    assert main(["detect", str(movie), "-o", str(out), "--save-map"]) == 0
    printed = capsys.readouterr()
    assert "honeycomb lattice, atom spacing" in printed.out and "warning" not in printed.err
    sites = read_sites(out)
    record = json.loads((tmp_path / "sites_detection.json").read_text())
    assert abs(record["lattice"]["spacing"] / scene["spacing"] - 1) < 0.05 and record["findings"] == []
    atoms = read_atom_probability(tmp_path / "sites_map.npz")
    assert atoms.shape == (1, 256, 256) and 0 <= atoms.min() and atoms.max() <= 1
    assert 0.8 * len(scene["positions"]) < len(sites) < 1.25 * len(scene["positions"])


def test_detect_walls_from_a_segmenter_wall_channel(tmp_path, monkeypatch):
    import sys
    import types

    import napari_rvae

    wall = np.zeros((1, 64, 64))
    wall[0, :, 31:33] = 0.9
    probs = np.stack([1 - wall, 0 * wall, wall], axis=1)  # background, domain, wall
    fake = types.ModuleType("napari_rvae.segment")
    fake.load_segmenter = lambda folder: ("net", {})
    fake.predict = lambda net, movie, rescale=1.0, precision="float32": probs
    monkeypatch.setitem(sys.modules, "napari_rvae.segment", fake)
    monkeypatch.setattr(napari_rvae, "segment", fake, raising=False)
    movie = tmp_path / "bf.npy"
    np.save(movie, np.random.default_rng(0).random((1, 64, 64)).astype(np.float32))
    out = tmp_path / "walls.csv"
    code = main(["detect", str(movie), "-o", str(out), "--walls", "--model", str(tmp_path), "--wall-channel", "2"])
    assert code == 0
    sites = read_sites(out)
    assert len(sites) > 40 and np.abs(sites["x"] - 31.5).max() <= 1.0
