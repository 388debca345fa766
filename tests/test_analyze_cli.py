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
