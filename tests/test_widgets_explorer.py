"""The latent explorer driven the way a user drives it: pick columns, click, drag, press buttons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import QEvent, QPointF, Qt
from qtpy.QtGui import QMouseEvent
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication

from napari_rvae.widgets import _workers
from napari_rvae.widgets.latent_explorer import DECODED_LAYER, LatentExplorer

pytestmark = pytest.mark.gui

T, SIZE, W = 6, 120, 9


def _sites(n=600, seed=0):
    """Sites on a ring in the (z0, z1) plane (radius 2), so the plane's centre is empty."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-np.pi, np.pi, n)
    return pd.DataFrame({
        "frame": rng.integers(0, T, n),
        "y": rng.uniform(10, SIZE - 10, n),
        "x": rng.uniform(10, SIZE - 10, n),
        "class": rng.integers(0, 2, n),
        "angle": phi + 2 * np.pi * rng.integers(-2, 3, n),  # unwrapped, as an rVAE gives it
        "dx": rng.normal(0, 0.5, n),
        "dy": rng.normal(0, 0.5, n),
        "z0": 2 * np.cos(phi),
        "z1": 2 * np.sin(phi),
    })


def code_decoder(z, angle, dx, dy):
    """A stand-in model whose window spells out its inputs: row 0 = (z0, z1, angle, dx, dy)."""
    window = np.zeros((W, W), dtype=np.float32)
    window[0, :5] = [z[0], z[1], angle, dx, dy]
    return window


@pytest.fixture
def explorer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    sites = _sites()
    frames, ys, xs = np.meshgrid(np.arange(T), np.arange(SIZE), np.arange(SIZE), indexing="ij")
    movie = (frames * 1e6 + ys * 1e3 + xs).astype(np.float64)  # every pixel says where it is
    viewer.add_image(movie, name="movie", scale=(1, 0.5, 0.5))
    viewer.add_points(sites[["frame", "y", "x"]].to_numpy(), features=sites, name="sites", scale=(1, 0.5, 0.5))
    widget = LatentExplorer(viewer, decode=code_decoder)
    viewer.window.add_dock_widget(widget)
    widget.image_picker.set_layer(viewer.layers["movie"])
    return viewer, widget, sites


def test_defaults_pick_latents_and_cyclic_angle(explorer):
    viewer, widget, sites = explorer
    assert (widget.x_combo.currentText(), widget.y_combo.currentText(), widget.colour_combo.currentText()) == ("z0", "z1", "angle")
    np.testing.assert_allclose(widget.plot.x, sites["z0"])
    widget.x_combo.setCurrentText("angle")
    # the plotted angle is wrapped to [-pi, pi) and equals the true ring angle up to 2*pi
    assert widget.plot.x.min() >= -np.pi and widget.plot.x.max() < np.pi
    np.testing.assert_allclose(np.cos(widget.plot.x), np.cos(sites["angle"]), atol=1e-9)


def test_click_empty_spot_decodes_there(explorer, qtbot):
    viewer, widget, _ = explorer
    widget.angle_slider.setValue(0.5)
    widget.dx_slider.setValue(-1.0)
    widget.plot.handle_click(0.3, -0.4)  # inside the ring: no site within reach
    qtbot.waitUntil(lambda: DECODED_LAYER in viewer.layers, timeout=2000)
    layer = viewer.layers[DECODED_LAYER]
    np.testing.assert_allclose(layer.data[0, :5], [0.3, -0.4, 0.5, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(widget.panel.images["decoded"][0, :2], [0.3, -0.4], atol=1e-6)
    # moving the angle slider re-decodes the same latent point
    widget.angle_slider.setValue(-1.0)
    assert widget.panel.images["decoded"][0, 2] == pytest.approx(-1.0)


def test_click_point_shows_window_and_jumps(explorer):
    viewer, widget, sites = explorer
    i = int(np.argmax(sites["frame"].to_numpy() == T - 2))
    widget.plot.handle_click(float(sites["z0"][i]) + 1e-3, float(sites["z1"][i]))
    site = sites.iloc[i]
    assert viewer.dims.current_step[0] == site["frame"]
    np.testing.assert_allclose((viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera).center[-2:], [site["y"] * 0.5, site["x"] * 0.5], atol=1e-6)
    assert set(viewer.layers["sites"].selected_data) == {i}
    real = widget.panel.images["window"]
    centre = real[W // 2, W // 2] if real.shape[0] == W else None
    expected = site["frame"] * 1e6 + round(site["y"]) * 1e3 + round(site["x"])
    assert centre == pytest.approx(expected)
    # the reconstruction is decoded from the site's own latents
    np.testing.assert_allclose(widget.panel.images["reconstruction"][0, :5],
                               site[["z0", "z1", "angle", "dx", "dy"]].to_numpy(dtype=float), atol=1e-5)


def _drag(widget, start, end, steps=6):
    """Left-drag on the plot from one data point to another with real mouse events."""
    view = widget.plot
    app = QApplication.instance()

    def to_widget(point):
        scene = view.box.mapViewToScene(QPointF(*point))
        return QPointF(view.mapFromScene(scene))

    p0, p1 = to_widget(start), to_widget(end)
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    viewport = view.viewport()
    app.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseButtonPress, p0, p0, left, left, Qt.KeyboardModifier.NoModifier))
    for t in np.linspace(0, 1, steps):
        p = p0 + (p1 - p0) * float(t)
        QTest.qWait(25)  # pyqtgraph ignores moves that come faster than its frame rate
        app.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, p, p, none, left, Qt.KeyboardModifier.NoModifier))
    app.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseButtonRelease, p1, p1, left, none, Qt.KeyboardModifier.NoModifier))


def test_rectangle_drag_selects_and_assigns_cluster(explorer, qtbot):
    viewer, widget, sites = explorer
    widget.plot.setRange(xRange=(-2.5, 2.5), yRange=(-2.5, 2.5), padding=0)
    widget.mode_group.button(2).click()  # Rectangle
    drawn = []
    widget.plot.box.sigPolygon.connect(drawn.append)
    _drag(widget, (0.5, 0.5), (2.3, 2.3))
    assert len(drawn) == 1
    # the rectangle the user drew, within a few screen pixels of the intended corners
    pw, ph = widget.plot.box.viewPixelSize()
    (x0, y0), (x1, y1) = drawn[0].min(0), drawn[0].max(0)
    np.testing.assert_allclose([x0, x1], [0.5, 2.3], atol=10 * pw)
    np.testing.assert_allclose([y0, y1], [0.5, 2.3], atol=10 * ph)
    z0, z1 = sites["z0"].to_numpy(), sites["z1"].to_numpy()
    truth = (z0 >= x0) & (z0 <= x1) & (z1 >= y0) & (z1 <= y1)
    selected = viewer.layers["sites"].features["selected"].to_numpy()
    assert truth.sum() > 20
    assert np.array_equal(selected, truth)
    assert widget.plot.selection_overlay.x.size == selected.sum()
    # the viewer highlights the selected sites of the frame on screen, frame after frame
    frames = sites["frame"].to_numpy()
    for frame in (0, 2):
        viewer.dims.set_point(0, frame)
        assert set(viewer.layers["sites"].selected_data) == set(np.flatnonzero(selected & (frames == frame)))
    assert widget.plot.selection_overlay.x.size == selected.sum()  # the plot keeps all frames

    widget.cluster_spin.setValue(3)
    widget.assign_button.click()
    cluster = viewer.layers["sites"].features["cluster"].to_numpy()
    assert np.all(cluster[selected] == 3) and np.all(cluster[~selected] == -1)
    assert widget.cluster_spin.value() == 4
    assert widget.colour_combo.findText("cluster") >= 0


def test_lasso_polygon_matches_point_in_triangle(explorer):
    viewer, widget, sites = explorer
    widget.mode_group.button(1).click()  # Lasso
    triangle = np.array([[-2.5, -2.5], [2.5, -2.5], [0.0, 2.5]])
    widget.plot.box.sigPolygon.emit(triangle)  # what a finished lasso drag emits
    z0, z1 = sites["z0"].to_numpy(), sites["z1"].to_numpy()
    # inside the triangle: above the base and below both slanted edges (independent half-plane test)
    inside = (z1 >= -2.5) & (z1 <= 2 * z0 + 2.5) & (z1 <= -2 * z0 + 2.5)
    selected = viewer.layers["sites"].features["selected"].to_numpy()
    assert 0 < inside.sum() < len(sites)
    assert np.array_equal(selected, inside)


def test_viewer_selection_and_frame_are_overlaid(explorer):
    viewer, widget, sites = explorer
    layer = viewer.layers["sites"]
    layer.selected_data = {1, 2, 3}
    np.testing.assert_allclose(np.sort(widget.plot.selection_overlay.x), np.sort(sites["z0"][[1, 2, 3]]), rtol=1e-6)
    for frame in (0, 3):
        viewer.dims.set_point(0, frame)
        in_frame = sites["frame"].to_numpy() == frame
        overlay = widget.plot.frame_overlay
        assert overlay.x.size == in_frame.sum()
        np.testing.assert_allclose(np.sort(overlay.x), np.sort(sites["z0"][in_frame]), rtol=1e-6)


def test_picker_follows_layers_and_new_latents(explorer):
    viewer, widget, sites = explorer
    extra = viewer.add_points(np.zeros((3, 3)), features=pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]}), name="other")
    assert widget.points_picker.findText("other") >= 0
    extra.name = "renamed"
    assert widget.points_picker.findText("renamed") >= 0 and widget.points_picker.findText("other") < 0
    viewer.layers.remove(extra)
    assert widget.points_picker.findText("renamed") < 0
    widget.points_picker.set_layer(viewer.layers["sites"])
    # training writes new latents into the features: the explorer re-reads them
    table = viewer.layers["sites"].features.copy()
    table["z2"] = np.arange(len(table), dtype=float)
    viewer.layers["sites"].features = table
    assert widget.x_combo.findText("z2") >= 0


def test_errors_become_notifications(explorer, monkeypatch):
    viewer, widget, _ = explorer
    shown = []
    monkeypatch.setattr(_workers, "show_error", shown.append)
    widget.set_decoder(None)
    widget.plot.handle_click(0.0, 0.0)  # empty spot, but no model
    widget.x_combo.setCurrentText("class")
    widget.set_decoder(code_decoder)
    widget.plot.handle_click(0.5, 0.0)  # 'class' is not a latent: cannot decode
    assert len(shown) == 2 and "no model" in shown[0] and "not a latent" in shown[1]


def test_hover_decodes_throttled(explorer, qtbot):
    viewer, widget, _ = explorer
    widget.plot.hovered.emit(0.1, 0.2)
    np.testing.assert_allclose(widget.panel.images["decoded"][0, :2], [0.1, 0.2], atol=1e-6)
    assert DECODED_LAYER not in viewer.layers  # hovering never adds layers
    # a real mouse move reaches the decoder through the 30 ms throttle
    widget.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
    scene_pos = widget.plot.box.mapViewToScene(QPointF(0.25, -0.5))
    widget.plot.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(lambda: abs(widget.panel.images["decoded"][0, 0] - 0.25) < 0.02, timeout=2000)
    assert widget.panel.images["decoded"][0, 1] == pytest.approx(-0.5, abs=0.02)


def test_points_inside_is_exact_on_random_polygons():
    from skimage.measure import points_in_poly

    from napari_rvae.widgets._latent_plot import points_inside

    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 50_000), rng.normal(0, 1, 50_000)
    for k in range(20):
        n = int(rng.integers(3, 80))
        if k % 2:  # star-shaped with thin spikes
            r, phi = rng.uniform(0.02, 2.5, n), np.sort(rng.uniform(-np.pi, np.pi, n))
            polygon = np.column_stack([r * np.cos(phi), r * np.sin(phi)])
        else:  # self-intersecting scribble
            polygon = rng.normal(0, 1.2, (n, 2))
        expected = np.flatnonzero(points_in_poly(np.column_stack([x, y]), polygon))
        assert np.array_equal(np.sort(points_inside(x, y, polygon)), expected)


def test_manifold_background_decodes_the_visible_plane(explorer):
    viewer, widget, _ = explorer
    widget.plot.setRange(xRange=(-2, 2), yRange=(-1, 3), padding=0)
    widget.manifold_grid.setValue(4)
    widget.manifold_check.setChecked(True)
    mosaic = widget.plot.background_image
    assert mosaic.shape == (4 * W, 4 * W)
    (x0, x1), (y0, y1) = widget.plot.box.viewRange()
    # the tile at the top-left is decoded at the smallest z0 and the largest z1 of the view
    top_left = mosaic[:W, :W]
    assert top_left[0, 0] == pytest.approx(x0 + (x1 - x0) / 8, abs=1e-5)
    assert top_left[0, 1] == pytest.approx(y0 + 7 * (y1 - y0) / 8, abs=1e-5)
    widget.manifold_check.setChecked(False)
    assert widget.plot.background_image is None
