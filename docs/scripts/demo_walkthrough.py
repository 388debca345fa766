"""The README's demo as a new user meets it, scripted: open, Run pipeline, click the latent plot.

Run under Xvfb: xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/scripts/demo_walkthrough.py
Writes docs/images/demo_*.png (after the run, after clicking an empty latent point, after clicking a site).
"""

import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

from _window import settle
from napari_rvae.widgets.demo import open_demo

OUT = Path(__file__).resolve().parents[1] / "images"


def wait(condition, timeout=600.0):
    app, start = QApplication.instance(), time.perf_counter()
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the demo did not finish in time")
    return time.perf_counter() - start


viewer, docks = open_demo(run=False)
viewer.window._qt_window.resize(1600, 1000)
viewer.window._qt_window.show()
pipeline, explorer = docks["pipeline"], docks["explorer"]
done = []
pipeline.job.finished.connect(lambda: done.append(True))
pipeline.run_button.click()  # what the user clicks
seconds = wait(lambda: bool(done))
print(f"Run pipeline finished in {seconds:.1f} s; status: {pipeline.status.text()}")
assert pipeline.job.last_error is None, pipeline.job.last_error
settle()
viewer.screenshot(str(OUT / "demo_after_run.png"), canvas_only=False, flash=False)

sites = viewer.layers["sites"].features
z0, z1 = sites["z0"].to_numpy(), sites["z1"].to_numpy()
# an empty spot: the corner of the data's bounding box, away from every point
x, y = float(np.nanmax(z0)), float(np.nanmin(z1))
explorer.plot.handle_click(x, y)
settle()
viewer.screenshot(str(OUT / "demo_decoded_point.png"), canvas_only=False, flash=False)

i = int(np.nanargmin(np.hypot(z0 - np.nanmedian(z0), z1 - np.nanmedian(z1))))
explorer.plot.handle_click(float(z0[i]), float(z1[i]))
settle()
viewer.screenshot(str(OUT / "demo_clicked_site.png"), canvas_only=False, flash=False)
print("frame", viewer.dims.current_step[0], "site", i, "decoded layer:", "decoded window" in viewer.layers)
viewer.close()
