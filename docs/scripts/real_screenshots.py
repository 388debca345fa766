"""A real image in napari with the defaults only: screenshots for the user guide.

The TMD image ``re05.tiff`` of ``../shared/real`` (pycroscopy/SciFiDatasets, MIT licence, copyright
the pycroscopy contributors) opened through the plugin, then Detect and Train VAE pressed with every
setting left as it is; the sites are coloured by the encoded angle modulo 120° (the sublattices).

Run from the repository root under Xvfb (a 1920 × 1080 screen)::

    PYTHONPATH=src xvfb-run -a -s "-screen 0 1920x1080x24" python docs/scripts/real_screenshots.py

Writes docs/images/real_re05_2_trained_angle.png; does nothing without ../shared/real.
"""

import sys
from pathlib import Path

import napari
from _window import settle, wait

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / ".." / "shared" / "real" / "stem" / "re05.tiff"
OUT = ROOT / "docs" / "images"


def shot(viewer, name):
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1920, 1080)
    settle()
    window.grab().save(str(OUT / f"real_re05_{name}.png"))
    print("wrote", name)


if not REAL.is_file():
    print(f"{REAL} is absent: nothing to do")
    sys.exit(0)
viewer = napari.Viewer(title="napari-rvae")
viewer.window._qt_window.resize(1920, 1080)
viewer.open(str(REAL), plugin="napari-rvae")
_, panel = viewer.window.add_plugin_dock_widget("napari-rvae", "Workflow")
detect = panel.dock("detect")
while panel.flow.lattice is None or detect.lattice_job.running:
    settle(0.2)
detect.detect_button.click()
wait(detect.job)
train = panel.dock("train")
panel.show_step(train.dock_name)
settle()
train.train_button.click()
wait(train.job)
colour = panel.dock("colour")
panel.show_step(colour.dock_name)
colour.column_combo.setCurrentText("angle")
colour.colour_button.click()
wait(colour.job)
settle(1.0)
viewer.layers["sites"].size = 9  # larger points over the raw image, to see their colours
viewer.layers["atom probability"].visible = False
viewer.camera.zoom *= 2.5  # a corner of the image: the checkerboard of the two sublattices
shot(viewer, "2_trained_angle")
viewer.close()
