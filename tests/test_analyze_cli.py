"""`napari-rvae analyze`: the whole pipeline headless writes a project that reopens in napari."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.cli import main


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze")
    assert main(["sample", "domain-movie", "-o", str(folder / "dm.npz"), "--frames", "6", "--size", "160"]) == 0
    code = main(["analyze", str(folder / "dm.npz"), "-o", str(folder / "project"), "--grid", "8", "--window", "16",
                 "--epochs", "2", "--clusters", "3"])
    assert code == 0
    return folder


def test_analyze_writes_a_complete_project(project):
    out = project / "project"
    for name in ("sites.csv", "results.npz", "run.json", "project.json", "model/model.safetensors"):
        assert (out / name).is_file(), name
    sites = pd.read_csv(out / "sites.csv")
    assert {"frame", "y", "x", "angle", "dx", "dy", "z0", "z1", "cluster"} <= set(sites.columns)
    assert set(sites["kind"]) == {"grid"}
    assert set(sites["cluster"].dropna().astype(int)) <= {-1, 0, 1, 2}
    assert sorted(sites["frame"].unique()) == list(range(6))
    with np.load(out / "results.npz", allow_pickle=False) as results:
        assert results["nmf_loadings"].shape[0] == 6  # one loading row per frame
    # the sample's own bias was picked up: the loadings-vs-bias figure exists
    assert (out / "figures" / "nmf_loadings_vs_bias.png").stat().st_size > 1000


def test_analyze_rejects_a_bad_channel(project, capsys):
    assert main(["analyze", str(project / "dm.npz"), "-o", str(project / "x"), "--channel", "3"]) == 2
    assert "channel" in capsys.readouterr().err


@pytest.mark.gui
def test_project_reopens_in_napari(project, make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open(project / "project" / "project.json", plugin="napari-rvae")
    kinds = [layer._type_string for layer in layers]
    assert kinds[0] == "image" and "points" in kinds
    points = layers[kinds.index("points")]
    assert {"z0", "z1", "cluster", "angle"} <= set(points.features.columns)
    assert points.data.shape[1] == 3 and len(points.data) == len(pd.read_csv(project / "project" / "sites.csv"))


def test_analyze_pfm_walls_with_bias_when_some_frames_have_no_wall(tmp_path):
    assert main(["sample", "pfm-switching", "-o", str(tmp_path / "pfm.npz"), "--frames", "10", "--size", "96"]) == 0
    with np.load(tmp_path / "pfm.npz") as sample:
        empty_frames = int((sample["walls"].reshape(10, -1).sum(1) == 0).sum())
    assert empty_frames > 0  # the sweep starts unswitched: frames without walls
    code = main(["analyze", str(tmp_path / "pfm.npz"), "-o", str(tmp_path / "p"), "--walls", "--walls-per-frame", "60",
                 "--window", "12", "--epochs", "3", "--clusters", "2"])  # 1 epoch learns nothing: no NMF
    assert code == 0
    sites = pd.read_csv(tmp_path / "p" / "sites.csv")
    assert set(sites["kind"]) == {"wall"} and sites["frame"].nunique() < 10  # frames without walls are absent
    assert (tmp_path / "p" / "figures" / "nmf_loadings_vs_bias.png").is_file()
