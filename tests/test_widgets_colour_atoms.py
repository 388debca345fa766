"""Colour atoms dock driven like a user: choose a column, limits, make a latent map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_rvae.widgets.colour_atoms import ColourAtoms

pytestmark = pytest.mark.gui
T, SIZE = 4, 48


@pytest.fixture
def dock(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    n = 200
    frame = np.repeat(np.arange(T), n)
    y, x = rng.uniform(0, SIZE - 1, T * n), rng.uniform(0, SIZE - 1, T * n)
    sites = pd.DataFrame({
        "frame": frame, "y": y, "x": x, "class": rng.integers(0, 3, T * n),
        "angle": rng.uniform(-np.pi, np.pi, T * n),
        "z0": 0.1 * x + frame,  # a plane that rises by 1 per frame
    })
    viewer.add_image(np.zeros((T, SIZE, SIZE), dtype=np.float32), name="movie")
    viewer.add_points(sites[["frame", "y", "x"]].to_numpy(), features=sites, name="sites")
    widget = ColourAtoms(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget, sites


def test_angle_is_cyclic_and_wrapped(dock):
    viewer, widget, sites = dock
    layer = viewer.layers["sites"]
    assert widget.column_combo.currentText() == "angle" and widget.scale.kind == "cyclic"
    table = layer.features.copy()
    table.loc[0:3, "angle"] = [0.3, 0.3 + 2 * np.pi, np.pi - 1e-3, -np.pi + 1e-3]
    table.loc[4, "angle"] = 0.0
    layer.features = table
    widget.apply()
    c = np.asarray(layer.face_color)
    np.testing.assert_allclose(c[0], c[1], atol=1e-6)  # same angle modulo 2π → same colour
    assert np.abs(c[2] - c[3]).max() < 0.05  # the two ends of the circle meet
    assert np.abs(c[2] - c[4]).max() > 0.3  # π and 0 are far apart in colour
    assert widget.bar_low.text() == "−π" and widget.bar.pixmap() is not None


def test_honeycomb_angle_is_coloured_modulo_120_degrees(dock):
    # a honeycomb's atom sites are 3-fold: θ and θ + 120° are one orientation, one colour, and the
    # two sublattices (60° apart) are the furthest apart on the colour circle
    from napari_rvae.detect.lattice import Lattice

    viewer, widget, sites = dock
    layer = viewer.layers["sites"]
    table = layer.features.copy()
    table.loc[0:3, "angle"] = [0.2, 0.2 + 2 * np.pi / 3, 0.2 - 2 * np.pi / 3, 0.2 + np.pi / 3]
    layer.features = table
    widget.apply()
    c = np.asarray(layer.face_color)
    assert np.abs(c[0] - c[1]).max() > 0.1  # without a lattice: the plain angle
    widget.flow.set_lattice(Lattice(spacing=12.0, kind="honeycomb", found=True))
    widget.apply()
    c = np.asarray(layer.face_color)
    np.testing.assert_allclose(c[0], c[1], atol=0.02)
    np.testing.assert_allclose(c[0], c[2], atol=0.02)
    assert np.abs(c[0] - c[3]).max() > 0.3  # the other sublattice
    assert widget.bar_low.text() == "−60°" and "120°" in widget.status.text()


def test_limits_are_shared_by_all_frames(dock):
    viewer, widget, sites = dock
    layer = viewer.layers["sites"]
    widget.column_combo.setCurrentText("z0")
    lo, hi = np.percentile(sites["z0"], [1, 99])
    assert (widget.low.value(), widget.high.value()) == pytest.approx((lo, hi), abs=1e-3)
    # one value, two frames: one colour
    table = layer.features.copy()
    i0, i3 = np.flatnonzero(sites.frame == 0)[0], np.flatnonzero(sites.frame == 3)[0]
    table.loc[[i0, i3], "z0"] = 2.5
    layer.features = table
    widget.apply()
    c = np.asarray(layer.face_color)
    np.testing.assert_allclose(c[i0], c[i3])
    # typed limits: everything below the low limit gets the first colour
    widget.auto_limits.setChecked(False)
    widget.low.setValue(3.0)
    widget.high.setValue(4.0)
    widget.apply()
    c = np.asarray(layer.face_color)
    below = layer.features["z0"].to_numpy() <= 3.0
    assert below.sum() > 10 and np.allclose(c[below], c[below][0])
    assert widget.bar_low.text() == "3"


def test_classes_get_one_colour_each(dock):
    viewer, widget, sites = dock
    widget.column_combo.setCurrentText("class")
    c = np.asarray(viewer.layers["sites"].face_color)
    per_class = [np.unique(c[sites["class"] == k], axis=0) for k in range(3)]
    assert all(len(p) == 1 for p in per_class)
    assert len(np.unique(np.vstack(per_class), axis=0)) == 3


def test_latent_map_layer(dock, qtbot):
    viewer, widget, sites = dock
    widget.column_combo.setCurrentText("z0")
    widget.step_spin.setValue(2)
    with qtbot.waitSignal(widget.job.finished, timeout=30_000):
        widget.map_button.click()
    layer = viewer.layers["z0 map"]
    assert layer.data.shape == (T, SIZE // 2, SIZE // 2)
    np.testing.assert_allclose(layer.scale[-2:], [2, 2])
    gy, gx = np.meshgrid(np.arange(0, SIZE, 2), np.arange(0, SIZE, 2), indexing="ij")
    for f in range(T):
        inside = np.isfinite(layer.data[f])
        assert inside.mean() > 0.8
        np.testing.assert_allclose(layer.data[f][inside], (0.1 * gx + f)[inside], atol=1e-3)
    assert tuple(layer.contrast_limits) == pytest.approx((widget.low.value(), widget.high.value()), abs=1e-3)
