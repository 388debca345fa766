"""The napari window as a user meets it, at 1920 × 1080 and 1366 × 768: screenshots for the user guide.

Run from the repository root under Xvfb (a 1920 × 1080 screen):

    PYTHONPATH=src xvfb-run -a -s "-screen 0 1920x1080x24" python docs/scripts/workflow_screenshots.py

Writes docs/images/workflow_*.png: the graphene sample with the Workflow panel after Detect, Train,
a click in the latent explorer and a lasso; the docks opened one by one from the Plugins menu
(one tab stack); the window at 1366 × 768; the PFM tab on the pfm-switching sample; the segmenter's
held-out quality.
"""

from pathlib import Path

import numpy as np

import napari
from _window import settle, wait

OUT = Path(__file__).resolve().parents[1] / "images"


def shot(viewer, name, size=(1920, 1080)):
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(*size)
    settle()
    window.grab().save(str(OUT / f"workflow_{name}.png"))
    print("wrote", name, window.width(), window.height())


# 1. graphene sample + the Workflow panel: detect, train, explore, colour
viewer = napari.Viewer(title="napari-rvae")
viewer.window._qt_window.resize(1920, 1080)
viewer.open_sample("napari-rvae", "graphene-movie")
_, panel = viewer.window.add_plugin_dock_widget("napari-rvae", "Workflow")
settle(2.0)
detect = panel.dock("detect")
while panel.flow.lattice is None:
    settle(0.2)
shot(viewer, "1_detect_lattice")
detect.detect_button.click()
wait(detect.job)
shot(viewer, "2_detected")

train = panel.dock("train")
panel.show_step(train.dock_name)
train.epochs_spin.setValue(8)
train.pixel_fraction.setValue(0.25)
train.train_button.click()
wait(train.job)
shot(viewer, "3_trained")

explorer = panel.dock("explore")
panel.show_step(explorer.dock_name)
settle()
(x0, x1), (y0, y1) = explorer.plot.box.viewRange()
spots = [(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)) for fy in np.linspace(0.1, 0.9, 9) for fx in np.linspace(0.9, 0.1, 9)]
explorer.plot.handle_click(*next(s for s in spots if explorer.plot.nearest_point(*s) < 0))  # an empty spot
settle()
shot(viewer, "4_decoded")
z0 = explorer.plot.x
lasso = np.array([[x0, y0], [np.nanmedian(z0), y0], [np.nanmedian(z0), y1], [x0, y1]])
explorer.plot.box.sigPolygon.emit(lasso)
viewer.layers.selection.active = viewer.layers["graphene-movie"]  # the ring shows whatever layer is active
settle()
shot(viewer, "5_selected")

colour = panel.dock("colour")
panel.show_step(colour.dock_name)
colour.column_combo.setCurrentText("angle")
colour.colour_button.click()
analysis = panel.dock("analysis")
panel.show_step(analysis.dock_name)
analysis.n_clusters.setValue(2)
analysis.cluster_button.click()
wait(analysis.cluster_job)
shot(viewer, "6_clusters")
shot(viewer, "7_small_screen", size=(1366, 768))
viewer.close()

# 2. every dock opened one by one from the Plugins menu: one tab stack, the window does not grow
viewer = napari.Viewer(title="napari-rvae")
viewer.window._qt_window.resize(1920, 1080)
viewer.open_sample("napari-rvae", "graphene-movie")
for name in ("Run pipeline", "Segment & label", "Detect", "Train VAE", "Latent explorer", "Colour atoms", "Analysis"):
    viewer.window.add_plugin_dock_widget("napari-rvae", name)
settle(2.0)
shot(viewer, "8_menu_docks")
viewer.close()

# 3. PFM: walls, whole-frame metrics against the bias
viewer = napari.Viewer(title="napari-rvae")
viewer.open_sample("napari-rvae", "pfm-switching")
_, panel = viewer.window.add_plugin_dock_widget("napari-rvae", "Workflow")
detect = panel.dock("detect")
while detect.method_combo.currentText() != "walls (PFM)":
    settle(0.2)
detect.detect_button.click()
wait(detect.job)
analysis = panel.dock("analysis")
panel.show_step(analysis.dock_name)
analysis.tabs.setCurrentWidget(analysis.pfm)
analysis.pfm.frames_button.click()
wait(analysis.pfm.frames_job)
analysis.pfm.axis_combo.setCurrentText("bias")
shot(viewer, "9_pfm")

# 4. the segmenter's quality on held-out strokes
segment = panel.dock("segment")
panel.show_step(segment.dock_name)
truth = viewer.layers["1 as grown / 2 switched / 3 wall (ground truth)"].data
segment.classes_edit.setText("switched")
labels = segment.new_labels()
painted = np.zeros_like(labels.data)
rows = np.zeros(truth.shape[1:], bool)
rows[::9, :] = True
painted[0][rows] = np.minimum(truth[0][rows], 2)
painted[10][rows] = np.minimum(truth[10][rows], 2)
labels.data = painted
segment.epochs_spin.setValue(6)
segment.train_button.click()
wait(segment.train_jobs)
shot(viewer, "10_segment_quality")
viewer.close()
