"""The npe2 plugin: manifest validates, the reader opens files in a real viewer, the writer saves sites."""

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.gui


def test_manifest_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-rvae")
    assert manifest.name == "napari-rvae"
    assert manifest.contributions.readers


def test_open_tiff_through_plugin(make_napari_viewer, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    movie = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32)
    tifffile.imwrite(tmp_path / "m.tif", movie, imagej=True, resolution=(10, 10), metadata={"unit": "nm", "axes": "TYX"})
    viewer = make_napari_viewer()
    layers = viewer.open(tmp_path / "m.tif", plugin="napari-rvae")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.data.shape == (3, 40, 50)
    assert tuple(layer.scale) == pytest.approx((1.0, 0.1, 0.1))
    assert layer.axis_labels == ("t", "y", "x")
    assert str(layer.units[1]) == "nanometer"


def test_corrupt_file_raises_clear_error_and_viewer_survives(make_napari_viewer, tmp_path):
    (tmp_path / "bad.dm4").write_bytes(b"nonsense" * 20)
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="corrupt"):
        viewer.open(tmp_path / "bad.dm4", plugin="napari-rvae")
    viewer.add_image(np.zeros((8, 8)))  # still alive
    assert len(viewer.layers) == 1


def test_writer_saves_points_with_features(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    features = pd.DataFrame({"class": [0, 1], "angle": [0.1, -0.2]})
    layer = viewer.add_points(np.array([[0, 5.5, 6.25], [2, 10.0, 3.0]]), features=features, name="sites")
    path = tmp_path / "sites.csv"
    layer.save(str(path), plugin="napari-rvae")
    table = pd.read_csv(path)
    assert list(table.columns[:3]) == ["frame", "y", "x"]
    assert table["frame"].tolist() == [0, 2]
    assert table["x"].tolist() == [6.25, 3.0]
    assert table["angle"].tolist() == pytest.approx([0.1, -0.2])
