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
