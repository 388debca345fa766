"""Detect dock driven like a user, on a lattice whose atom positions are known."""

import numpy as np
import pytest

pytest.importorskip("napari_rvae.detect")

from napari_rvae.synth.render import render_spots  # noqa: E402
from napari_rvae.widgets.detect_dock import Detect  # noqa: E402

pytestmark = pytest.mark.gui
SIZE, PITCH = 80, 10


def test_detect_finds_the_lattice_and_tracks(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    g = np.arange(PITCH // 2, SIZE, PITCH, dtype=float)  # the lattice fills the frame
    yy, xx = np.meshgrid(g, g, indexing="ij")
    truth = np.column_stack([yy.ravel(), xx.ravel()]) + rng.normal(0, 0.3, (yy.size, 2))
    movie = np.stack([render_spots((SIZE, SIZE), truth + [0.5 * t, 0.0], 1.0, 1.5) + rng.normal(0, 0.02, (SIZE, SIZE))
                      for t in range(3)]).astype(np.float32)  # the lattice drifts 0.5 px per frame
    viewer.add_image(movie, name="movie", scale=(1, 0.2, 0.2))
    dock = Detect(viewer)
    viewer.window.add_dock_widget(dock)
    dock.tracks_check.setChecked(True)
    dock.track_class.setValue(-1)
    with qtbot.waitSignal(dock.job.finished, timeout=300_000):
        dock.detect_button.click()
    assert dock.job.last_error is None, dock.job.last_error
    layer = dock.layer
    assert layer.name == "sites" and tuple(layer.scale) == pytest.approx((1, 0.2, 0.2))
    features = layer.features
    assert {"kind", "class", "intensity"} <= set(features.columns)
    for t in range(3):
        found = np.asarray(layer.data)[np.asarray(layer.data)[:, 0] == t, 1:]
        assert len(found) == len(truth)
        d = np.hypot(*(found[:, None, :] - (truth + [0.5 * t, 0.0])[None]).transpose(2, 0, 1)).min(axis=0)
        assert d.max() < 0.5  # pixels
    tracks = viewer.layers["tracks"].data
    assert len(np.unique(tracks[:, 0])) == len(truth)  # every atom is one track through the 3 frames
    # a second run replaces the dock's own layers and never touches other layers
    mine = viewer.add_points(np.zeros((1, 3)), name="sites [mine]")
    with qtbot.waitSignal(dock.job.finished, timeout=300_000):
        dock.detect_button.click()
    names = [lay.name for lay in viewer.layers]
    assert names.count("tracks") == 1 and mine in viewer.layers and layer not in viewer.layers


def test_detect_dock_model_method_in_int8(make_napari_viewer, qtbot):
    """Advanced → precision int8 reaches the segmenter: the shipped model finds the graphene atoms."""
    from scipy.spatial import cKDTree

    from napari_rvae.synth import make_sample

    sample = make_sample("graphene-movie", seed=5, frames=1, size=128)
    viewer = make_napari_viewer()
    viewer.add_image(sample["data"], name="movie")
    dock = Detect(viewer)
    viewer.window.add_dock_widget(dock)
    dock.method_combo.setCurrentText("model")
    dock.precision_combo.setCurrentText("int8")
    assert dock.settings()["precision"] == "int8"
    with qtbot.waitSignal(dock.job.finished, timeout=300_000):
        dock.detect_button.click()
    assert dock.job.last_error is None, dock.job.last_error
    found = np.asarray(dock.layer.data)[:, 1:]
    truth = np.column_stack([sample["atoms"]["y"], sample["atoms"]["x"]])
    inner = truth[((truth >= 4) & (truth <= 123)).all(1)]
    assert (cKDTree(found).query(inner)[0] <= 2).mean() >= 0.98  # atoms found
    assert (cKDTree(truth).query(found)[0] <= 2).all()  # and nothing else


def test_detect_dock_in_chunks_gives_the_same_sites(make_napari_viewer, qtbot):
    """Advanced → chunk frames runs detection chunk by chunk on local worker processes: same table."""
    pytest.importorskip("distributed")
    from napari_rvae.detect import detect_atoms
    from napari_rvae.synth import make_sample

    movie = make_sample("graphene-movie", seed=0, frames=6, size=128)["data"].astype(np.float32)
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="movie")
    dock = Detect(viewer)
    viewer.window.add_dock_widget(dock)
    dock.method_combo.setCurrentText("peaks")
    dock.chunk.setValue(4)
    assert dock.settings()["chunk"] == 4 and dock.settings()["dask_address"] is None
    with qtbot.waitSignal(dock.job.finished, timeout=300_000):
        dock.detect_button.click()
    assert dock.job.last_error is None, dock.job.last_error
    want = detect_atoms(movie, method="peaks")
    features = dock.layer.features
    np.testing.assert_array_equal(features[["frame", "y", "x", "class"]].to_numpy(),
                                  want[["frame", "y", "x", "class"]].to_numpy())
