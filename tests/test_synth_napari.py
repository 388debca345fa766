"""Each synthetic sample opens through the plugin's sample-data contribution (File ▸ Open Sample)."""

import numpy as np
import pytest

from napari_rvae.synth.shipped import SHIPPED, shipped_path

pytestmark = pytest.mark.gui

MOVIES = ["graphene-movie", "ferroic", "pfm-switching", "domain-movie", "shift-lattice"]


@pytest.mark.parametrize("key", MOVIES)
def test_movie_sample_opens_with_scale_and_time_axis(make_napari_viewer, key):
    with np.load(shipped_path(key), allow_pickle=False) as archive:
        expected_scale = archive["scale"]
        expected_shape = archive["data"].shape
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-rvae", key)
    image = layers[0]
    assert image.data.shape == expected_shape and image.data.ndim == 3
    assert tuple(image.scale) == pytest.approx(tuple(expected_scale))
    assert image.axis_labels == ("t", "y", "x")
    # ground-truth layers come along, hidden
    assert len(layers) >= 2
    assert all(not layer.visible for layer in layers[1:])
    assert all(tuple(layer.scale)[-2:] == pytest.approx(tuple(expected_scale)[-2:]) for layer in layers[1:])
    if "frames" in SHIPPED[key]:
        assert viewer.dims.nsteps[0] == SHIPPED[key]["frames"]


def test_full_size_sample_is_generated_on_open(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-rvae", "pfm-switching-full")
    assert layers[0].data.shape == (40, 256, 256)
    assert layers[0].axis_labels == ("t", "y", "x")
    assert str(layers[0].units[1]) == "micrometer"
    assert len(layers[0].metadata["bias"]) == 40


def test_graphene_sample_has_points_tracks_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-rvae", "graphene-movie")
    kinds = {type(layer).__name__ for layer in layers}
    assert {"Image", "Points", "Labels", "Tracks", "Vectors"} <= kinds
    atoms = next(layer for layer in layers if layer.name.startswith("atoms"))
    for column in ("frame", "y", "x", "kind", "class", "intensity", "n5", "n6", "n7", "track_id"):
        assert column in atoms.features.columns
    # point coordinates are (frame, y, x) and agree with the features table
    np.testing.assert_allclose(atoms.data[:, 1], atoms.features["y"].to_numpy())
    np.testing.assert_array_equal(atoms.data[:, 0], atoms.features["frame"].to_numpy())


def test_sines_sample_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-rvae", "sines-1d")
    image = layers[0]
    assert image.data.shape == (5000, 100)
    meta = image.metadata
    with np.load(shipped_path("sines-1d"), allow_pickle=False) as archive:
        np.testing.assert_array_equal(image.data, archive["data"][meta["row"]])
        np.testing.assert_array_equal(meta["mu"], archive["mu"][meta["row"]])
    assert np.all(np.diff(meta["sigma"]) >= 0)
