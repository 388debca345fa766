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
for i in range(w.columns_list.count()):
    it = w.columns_list.item(i); it.setSelected(it.text() in ("z0", "z1"))
w.run_clusters(); wait(w.cluster_job)
w.variable_combo.setCurrentText("z0"); w.bias_path.setText(str(TMP / "bias.csv"))
w.run_dynamics(); wait(w.dynamics_job)
w.run_angles()
for i, name in enumerate(["clusters", "dynamics", "angles"]):
    w.tabs.setCurrentIndex(i)
    for _ in range(20): app.processEvents()
    w.grab().save(str(OUT / ("dock_analysis.png" if name == "dynamics" else f"dock_analysis_{name}.png")))
viewer.window._qt_window.grab().save(str(OUT / "dock_analysis_viewer.png"))
print(w.status.text(), w.peaks_label.text())
