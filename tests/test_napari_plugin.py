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


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sites_round_trip_through_writer_and_reader(make_napari_viewer, tmp_path, suffix):
    """A calibrated sites layer saved by the plugin reopens with the same points, features and scale."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 64, 64), np.float32), scale=(1, 0.05, 0.05), units=("", "nm", "nm"), name="movie")
    coords = np.array([[0, 5.5, 6.25], [2, 10.0, 3.0], [2, 40.75, 50.5]])
    features = pd.DataFrame({"kind": ["atom", "atom", "hollow"], "class": [0, 1, 0], "angle": [0.1, -0.2, 3.0],
                             "z0": [1.5, -0.5, 0.0]})
    layer = viewer.add_points(coords, features=features, name="sites", scale=(1, 0.05, 0.05), units=("", "nm", "nm"))
    layer.data = layer.data + np.array([0, 1.0, 0])  # the user moved the points: positions come from the layer
    path = tmp_path / f"sites{suffix}"
    layer.save(str(path), plugin="napari-rvae")
    viewer.layers.remove(layer)
    reopened = viewer.open(path, plugin="napari-rvae")
    assert len(reopened) == 1
    points = reopened[0]
    assert points._type_string == "points"
    np.testing.assert_allclose(points.data, coords + np.array([0, 1.0, 0]))
    assert points.features["angle"].tolist() == pytest.approx([0.1, -0.2, 3.0])
    assert points.features["kind"].tolist() == ["atom", "atom", "hollow"]
    np.testing.assert_allclose(points.features["y_nm"], (coords[:, 1] + 1.0) * 0.05)
    assert tuple(points.scale) == pytest.approx((1.0, 0.05, 0.05))  # on the movie, not 20× too large
    assert [str(u) for u in points.units[1:]] == ["nanometer", "nanometer"]


def test_sites_with_tracks_open_as_points_and_tracks(make_napari_viewer, tmp_path):
    table = pd.DataFrame({"frame": [0, 1, 2, 0, 1], "y": [5.0, 5.5, 6.0, 20.0, 21.0], "x": [5.0, 5.0, 5.5, 9.0, 9.0],
                          "kind": "atom", "class": 1, "track_id": [0, 0, 0, 1, -1]})
    table.to_csv(tmp_path / "tracked.csv", index=False)
    viewer = make_napari_viewer()
    layers = viewer.open(tmp_path / "tracked.csv", plugin="napari-rvae")
    kinds = [layer._type_string for layer in layers]
    assert kinds == ["points", "tracks"]
    tracks = layers[1]
    np.testing.assert_allclose(tracks.data, [[0, 0, 5.0, 5.0], [0, 1, 5.5, 5.0], [0, 2, 6.0, 5.5], [1, 0, 20.0, 9.0]])
    assert str(tracks.units[1]) == "pixel"


def test_sites_reader_leaves_other_tables_to_other_readers(tmp_path):
    from napari_rvae._napari_sites import get_sites_reader

    pd.DataFrame({"index": [0], "axis-0": [1.0], "axis-1": [2.0]}).to_csv(tmp_path / "napari_points.csv", index=False)
    (tmp_path / "broken.csv").write_bytes(b"\x00\xff\xfe garbage")
    pd.DataFrame({"frame": [0], "y": [1.0], "x": [2.0]}).to_csv(tmp_path / "sites.csv", index=False)
    assert get_sites_reader(str(tmp_path / "napari_points.csv")) is None
    assert get_sites_reader(str(tmp_path / "broken.csv")) is None
    assert get_sites_reader(str(tmp_path / "sites.csv")) is not None


def test_docks_sit_in_napari_layers_menus_and_open_from_there(make_napari_viewer):
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    app = get_app_model()
    expected = {"napari/layers/segment": {"napari-rvae.segment", "napari-rvae.detect"},
                "napari/layers/measure": {"napari-rvae.train_vae", "napari-rvae.analysis"},
                "napari/layers/track": {"napari-rvae.detect"},
                "napari/layers/visualize": {"napari-rvae.latent_explorer", "napari-rvae.colour_atoms"}}
    for menu, commands in expected.items():
        present = {getattr(item, "command", None) and item.command.id for item in app.menus.get_menu(menu)}
        assert commands <= present, f"{menu} lacks {commands - present}"
    app.commands.execute_command("napari-rvae.detect").result()  # what clicking the menu item does
    assert any("Detect" in name for name in viewer.window.dock_widgets)
