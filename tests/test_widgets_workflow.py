"""The plugin as a user meets it: docks from the Plugins menu on a sample with its hidden ground truth.

Every dock is opened through ``viewer.window.add_plugin_dock_widget`` (napari hands it the
public proxy of the viewer), and the whole workflow is walked with the docks' own
controls: detect → train → explore → colour → analyse → save project → reopen.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari_rvae.vae")
pytestmark = pytest.mark.gui

DOCKS = ("Run pipeline", "Segment & label", "Detect", "Train VAE", "Latent explorer", "Colour atoms", "Analysis")


def _open(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-rvae", name)
    return widget


def _wait(qtbot, job, timeout=300_000):
    if job.running:
        with qtbot.waitSignal(job.finished, timeout=timeout):
            pass
    assert job.last_error is None, job.last_error


def _truth_layers(viewer):
    return [layer for layer in viewer.layers if "ground truth" in layer.name]


def test_whole_workflow_from_the_plugins_menu(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_rvae.detect.lattice import scale_defaults
    from napari_rvae.widgets import _layers
    from napari_rvae.widgets._state import workflow

    monkeypatch.setenv("NAPARI_RVAE_AUTOSAVE", str(tmp_path / "autosave"))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-rvae", "graphene-movie")
    movie = viewer.layers["graphene-movie"]
    assert _truth_layers(viewer) and not any(layer.visible for layer in _truth_layers(viewer))
    docks = {name: _open(viewer, name) for name in DOCKS}
    qtbot.wait(50)

    # one workflow state whatever proxy each dock received; no picker defaults to a reference layer
    flows = {id(workflow(dock.viewer)) for dock in docks.values()}
    assert len(flows) == 1
    flow = workflow(viewer)
    assert flow.layer("movie") is movie
    for dock in docks.values():
        for picker in (getattr(dock, n, None) for n in ("image_picker", "points_picker", "labels_picker")):
            if picker is not None and picker.layer() is not None:
                assert "ground truth" not in picker.layer().name, (type(dock).__name__, picker.layer().name)

    # the docks opened from the menu share one tab stack: the window does not grow
    stacked = {dock.parentWidget() for dock in docks.values()}
    window = viewer.window._qt_window
    tabified = window.tabifiedDockWidgets(_dock_widget(docks["Detect"]))
    assert len(tabified) == len(DOCKS) - 1, [d.windowTitle() for d in tabified]
    assert window.height() <= 1080 and stacked

    # Segment: "New labels layer" works through the proxy viewer (it failed before)
    segment = docks["Segment & label"]
    segment.new_button.click()
    assert segment.labels_picker.layer() is viewer.layers["painted labels"]
    assert flow.layer("labels") is viewer.layers["painted labels"]
    assert tuple(viewer.layers["painted labels"].units) == tuple(movie.units)

    # Detect: the lattice is estimated in the background, then atoms with the atom map
    detect = docks["Detect"]
    qtbot.waitUntil(lambda: flow.lattice is not None, timeout=60_000)
    assert flow.lattice.found and 9 < flow.lattice.spacing < 14  # graphene sample: C-C 12 px (cc = 0.142 nm)
    assert "honeycomb" in detect.lattice_label.text()
    assert detect.method_combo.currentText() == "auto"
    detect.detect_button.click()
    _wait(qtbot, detect.job)
    sites = viewer.layers["sites"]
    probability = viewer.layers["atom probability"]
    assert flow.layer("sites") is sites and flow.layer("map") is probability
    assert probability.data.shape == movie.data.shape and 0 <= probability.data.min() <= probability.data.max() <= 1
    truth = viewer.layers["atoms (ground truth)"].features
    assert abs(len(sites.data) - len(truth)) < 0.1 * len(truth)
    for layer in (sites, probability):  # every added layer shares the movie's calibration
        assert tuple(layer.scale) == pytest.approx(tuple(movie.scale))
        assert tuple(map(str, layer.units)) == tuple(map(str, movie.units))
    assert flow.record["detect"]["n_sites"] == len(sites.data)

    # Train: windows from the atom probability, window from the lattice; every dock follows
    train = docks["Train VAE"]
    assert train.points_picker.layer() is sites
    assert train.source_combo.currentText() == "atom probability"
    assert train.window_spin.value() == scale_defaults(flow.lattice.spacing)["window"]
    train.epochs_spin.setValue(2)
    train.per_frame_spin.setValue(150)
    train.pixel_fraction.setValue(0.25)
    train.train_button.click()
    _wait(qtbot, train.job)
    assert {"angle", "z0", "z1"} <= set(sites.features.columns)
    assert train.model is flow.model and [h["epoch"] for h in flow.model.history] == [1, 2]
    assert flow.model.normalisation["source"] == "map"  # recorded as the CLI does
    # the model can always be saved, with its history (also from another dock's button)
    saved = train.save_model_to(tmp_path / "model")
    from napari_rvae.vae import load_model

    assert [h["epoch"] for h in load_model(saved).history] == [1, 2]

    # Explore: the explorer follows the sites (not a ground-truth layer), axes are latents
    explorer = docks["Latent explorer"]
    assert explorer.layer is sites
    assert (explorer.x_combo.currentText(), explorer.y_combo.currentText()) == ("z0", "z1")
    (x0, x1), (y0, y1) = explorer.plot.box.viewRange()
    spot = (x1 - 0.02 * (x1 - x0), y1 - 0.02 * (y1 - y0))  # a corner: no site within reach
    explorer.plot.handle_click(*spot)
    qtbot.waitUntil(lambda: explorer.decoded_layer is not None, timeout=5000)
    decoded = explorer.decoded_layer
    window_px = train.window_spin.value()
    assert decoded.data.shape == (window_px, window_px)
    assert tuple(map(str, decoded.units)) == tuple(map(str, movie.units))[-2:]
    _assert_in_view(viewer, decoded)
    explorer.plot.handle_click(float(explorer.plot.x[10]), float(explorer.plot.y[10]))  # a site
    assert explorer.panel.images["window"] is not None and explorer.panel.images["reconstruction"] is not None
    lasso = np.array([[x0, y0], [0.5 * (x0 + x1), y0], [0.5 * (x0 + x1), y1], [x0, y1]])
    explorer.plot.box.sigPolygon.emit(lasso)
    chosen = int(sites.features["selected"].sum())
    assert 0 < chosen < len(sites.data)
    ring = explorer.selection_layer  # the selected sites of the frame on screen, ringed on top
    frame = viewer.dims.current_step[0]
    on_screen = int((sites.features["selected"] & (np.asarray(sites.data)[:, 0] == frame)).sum())
    assert ring is not None and len(ring.data) == on_screen > 0 and viewer.layers[-1] is ring
    viewer.dims.set_current_step(0, frame + 1)  # it follows the frame
    assert len(ring.data) == int((sites.features["selected"] & (np.asarray(sites.data)[:, 0] == frame + 1)).sum())
    explorer.assign_button.click()
    assert (sites.features["cluster"] == 0).sum() == chosen

    # Colour: by angle, one scale for all frames
    colour = docks["Colour atoms"]
    assert colour.points_picker.layer() is sites
    colour.column_combo.setCurrentText("angle")
    colour.colour_button.click()
    assert colour.scale is not None and colour.scale.kind == "cyclic"

    # Analyse: clusters on the latents
    analysis = docks["Analysis"]
    assert analysis.layer() is sites
    analysis.n_clusters.setValue(2)
    # two epochs teach the model nothing yet: the latent check after training says so, and the dock
    # refuses to report clusters of noise instead of colouring the sites by them
    assert flow.model.training_settings["latent_check"]["informative"] is False
    before = sites.features["cluster"].to_numpy().copy()
    with pytest.raises(ValueError, match="learned nothing"):  # the button shows this as an error notification
        analysis.run_clusters()
    analysis.cluster_button.click()
    np.testing.assert_array_equal(sites.features["cluster"].to_numpy(), before)

    # Run pipeline never deletes the sites layer without asking: "Keep both" keeps it
    monkeypatch.setattr(_layers, "ask", lambda *a, **k: "keep")
    pipeline = docks["Run pipeline"]
    pipeline.epochs_spin.setValue(1)
    pipeline.run_button.click()
    _wait(qtbot, pipeline.job)
    assert sites in viewer.layers and "cluster" in sites.features
    assert "sites [2]" in viewer.layers and flow.layer("sites") is viewer.layers["sites [2]"]
    assert [h["epoch"] for h in flow.model.history] == [1]  # Run pipeline's model is the current one
    assert "atom probability [2]" in viewer.layers  # its map too was kept beside the first
    flow.set_layer("sites", sites)  # back to the hand-assigned clusters
    map_name = flow.layer("map").name

    # every layer the plugin added shares the movie's units: napari finds them consistent
    assert viewer.layers.extent.units is not None

    # Save the project from the Workflow panel, then reopen it in a new viewer
    panel = _open(viewer, "Workflow")
    train.window_spin.setValue(window_px + 2)  # a dock setting that must come back
    folder = tmp_path / "project"
    panel.save_project_to(folder)
    _wait(qtbot, panel.save_job, 120_000)
    assert (folder / "project.json").is_file() and (folder / "sites.csv").is_file()

    other = make_napari_viewer()
    reopened = _open(other, "Workflow")
    layers = reopened.open_project(folder)
    names = {layer.name for layer in layers}
    assert {"graphene-movie", "sites", map_name, "painted labels"} <= names
    flow2 = workflow(other)
    qtbot.waitUntil(lambda: flow2.model is not None, timeout=60_000)
    sites2 = flow2.layer("sites")
    assert sites2 is not None and sites2.name == "sites"
    np.testing.assert_allclose(sites2.features["z0"], sites.features["z0"], rtol=1e-6)
    assert (sites2.features["cluster"].to_numpy() == sites.features["cluster"].to_numpy()).all()
    assert flow2.layer("map") is other.layers[map_name] and flow2.layer("movie") is other.layers["graphene-movie"]
    np.testing.assert_allclose(flow2.layer("map").data, flow.layer("map").data)
    assert tuple(map(str, sites2.units)) == tuple(map(str, movie.units))
    assert len(flow2.model.history) == 1
    qtbot.waitUntil(lambda: reopened.dock("train").window_spin.value() == window_px + 2, timeout=5000)
    assert reopened.dock("explore").layer is sites2
    assert flow2.lattice is not None and flow2.lattice.spacing == pytest.approx(flow.lattice.spacing, abs=1e-3)
    assert other.layers.extent.units is not None


def _dock_widget(widget):
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def _assert_in_view(viewer, layer):
    """The layer's extent lies inside the part of the world the canvas shows."""
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    height, width = viewer.canvas.size
    centre = np.asarray(camera.center)[-2:]
    half = np.array([height, width]) / (2 * camera.zoom)
    lo, hi = centre - half, centre + half
    extent = np.asarray(layer.extent.world)[:, -2:]
    assert (extent[0] >= lo - 1e-9).all() and (extent[1] <= hi + 1e-9).all(), (extent, lo, hi)


def test_pfm_sample_detects_walls_and_measures_switching(make_napari_viewer, qtbot):
    """On the PFM sample the phase (shown) is the movie, not the hidden amplitude; the lattice
    estimate finds none and Detect switches to walls; the PFM tab follows the true switching."""
    from napari_rvae.widgets._state import workflow

    viewer = make_napari_viewer()
    viewer.open_sample("napari-rvae", "pfm-switching")
    phase = viewer.layers["pfm-switching phase (deg)"]
    detect = _open(viewer, "Detect")
    analysis = _open(viewer, "Analysis")
    assert detect.image_picker.layer() is phase and workflow(viewer).layer("movie") is phase
    qtbot.waitUntil(lambda: detect.method_combo.currentText() == "walls (PFM)", timeout=60_000)
    detect.walls_per_frame.setValue(60)
    detect.detect_button.click()
    _wait(qtbot, detect.job)
    walls = viewer.layers["walls"]
    assert analysis.layer() is walls and len(walls.data) > 0

    pfm = analysis.pfm
    analysis.tabs.setCurrentWidget(pfm)
    pfm.frames_button.click()
    _wait(qtbot, pfm.frames_job, 120_000)
    table = pfm.frames_table
    truth = np.asarray(phase.metadata["switched_fraction"], dtype=float)
    assert len(table) == len(truth)
    # the switched fraction of whole frames follows the generator's truth
    assert np.nanmax(np.abs(table["switched_fraction"].to_numpy() - truth)) < 0.08
    mixed = (truth > 0.02) & (truth < 0.98)  # frames holding both domains have walls, the others none
    assert (table["wall_count"][mixed] >= 1).all() and (table["wall_length"][mixed] > 0).all()
    assert (table["wall_count"][truth == 0] == 0).all()
    pfm.axis_combo.setCurrentText("bias")  # the sample's own bias
    assert pfm.plot.getAxis("bottom").labelText == "bias"
    # per latent region: wall windows grouped by the sites' cluster column
    features = walls.features.copy()
    features["cluster"] = (np.asarray(walls.data)[:, 2] > phase.data.shape[-1] / 2).astype(int)
    walls.features = features
    pfm.window.setValue(24)
    pfm.regions_button.click()
    _wait(qtbot, pfm.regions_job, 120_000)
    assert set(pfm.regions_table["region"]) == {0, 1}
    assert pfm.plot.legend.isVisible()
