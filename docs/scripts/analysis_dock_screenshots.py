"""Screenshots of the Analysis dock on the synthetic sites of its test (run under xvfb-run from the repo root).

PYTHONPATH=src xvfb-run -a -s "-screen 0 1600x1000x24" python docs/scripts/analysis_dock_screenshots.py
Writes docs/images/dock_analysis.png (Dynamics tab) and dock_analysis_{clusters,angles,viewer}.png.
"""
import sys, tempfile
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "tests")
OUT = Path("docs/images")
TMP = Path(tempfile.mkdtemp())
import napari
from qtpy.QtWidgets import QApplication
from test_widgets_analysis import synthetic_sites, T
from napari_rvae.widgets.analysis_dock import AnalysisDock

sites, truth, bias = synthetic_sites()
pd.DataFrame({"frame": np.arange(T), "bias": bias}).to_csv(str(TMP / "bias.csv"), index=False)
viewer = napari.Viewer(show=True)
viewer.add_points(sites[["frame", "y", "x"]].to_numpy(), features=sites, name="sites", size=2)
w = AnalysisDock(viewer)
dock = viewer.window.add_dock_widget(w, name="Analysis", area="right")
viewer.window._qt_window.resize(1500, 980)
app = QApplication.instance()
def wait(job):
    while job.running:
        app.processEvents()
def grab(i, name):  # right after the tab's action, so the status line belongs to it
    w.tabs.setCurrentIndex(i)
    for _ in range(20): app.processEvents()
    w.grab().save(str(OUT / ("dock_analysis.png" if name == "dynamics" else f"dock_analysis_{name}.png")))
for i in range(w.columns_list.count()):
    it = w.columns_list.item(i); it.setSelected(it.text() in ("z0", "z1"))
w.run_clusters(); wait(w.cluster_job); grab(0, "clusters")
w.variable_combo.setCurrentText("z0"); w.bias_path.setText(str(TMP / "bias.csv"))
w.run_dynamics(); wait(w.dynamics_job); grab(1, "dynamics")
w.run_angles(); grab(2, "angles")
viewer.window._qt_window.grab().save(str(OUT / "dock_analysis_viewer.png"))

# Chemistry tab: a hand-made decoder (z0, z1) -> the window of the nearest of a few anchors, each anchor a
# window cut from the noiseless graphene-movie mask at a known atom (pristine or next to a 5/7 ring)
from napari_rvae.io.sites import make_sites
from napari_rvae.patches import cut_windows
from napari_rvae.synth import graphene_movie
from napari_rvae.widgets._model_link import model_link
s = graphene_movie(0, frames=3, size=192, cc=7.0, noise=False, n_holes=0, grain=False, n_stone_wales=3)
mask = (s["labels"] >= 2).astype(np.float32)
a = s["atoms"][s["atoms"]["frame"] == 2]
cut = cut_windows(mask, make_sites(a["frame"], a["y"], a["x"], "atom", 0), 40)
n5, n6, n7 = (np.asarray(a[k])[cut.rows] for k in ("n5", "n6", "n7"))
chosen = np.concatenate([np.flatnonzero(n5 > 0)[:4], np.flatnonzero(n7 > 0)[:4], np.flatnonzero(n6 == 3)[:4]])
windows = cut.windows[chosen]
anchors = np.random.default_rng(1).uniform(-2.5, 2.5, (len(windows), 2))
def hand_made_decoder(z):
    z = np.asarray(z, float)
    return windows[np.argmin(((z[:, None] - anchors[None]) ** 2).sum(-1), 1)]
model_link(viewer).set_model(hand_made_decoder)
w.grid_d.setValue(100)
w.run_chemistry(); wait(w.chemistry_job)
grab(3, "chemistry")
print(w.status.text(), w.peaks_label.text())
