"""Screenshots of every synthetic sample opened through File ▸ Open Sample (run under Xvfb).

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/scripts/sample_screenshots.py docs/images
"""

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

import napari
from napari_rvae.synth import make_sample

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
OUT.mkdir(parents=True, exist_ok=True)


def open_sample(key):
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1300, 850)
    viewer.open_sample("napari-rvae", key)
    viewer.layers.selection.active = viewer.layers[0]
    viewer.reset_view()
    return viewer


def shot(viewer, name, canvas_only=False):
    path = OUT / f"sample_{name}.png"
    viewer.screenshot(str(path), canvas_only=canvas_only, flash=False)
    print(path)


def montage(viewer, frames, name):
    tiles = []
    for t in frames:
        viewer.dims.set_point(0, t)
        tiles.append(viewer.screenshot(canvas_only=True, flash=False)[..., :3])
    h = min(t.shape[0] for t in tiles)
    w = min(t.shape[1] for t in tiles)
    strip = np.concatenate([t[:h, :w] for t in tiles], axis=1)
    path = OUT / f"sample_{name}.png"
    iio.imwrite(path, strip[::3, ::3])
    print(path)


def layer(viewer, prefix):
    return next(lay for lay in viewer.layers if lay.name.startswith(prefix))


def zoom_on(viewer, t, y, x, factor):
    image = viewer.layers[0]
    viewer.dims.set_point(0, t * image.scale[0])
    viewer.camera.center = (t * image.scale[0], y * image.scale[1], x * image.scale[2])
    viewer.camera.zoom = viewer.camera.zoom * factor


# graphene: last frame of the full movie (holes, bright Si, grain boundary)
viewer = open_sample("graphene-movie-full")
viewer.dims.set_point(0, 19)
shot(viewer, "graphene-movie")
# zoom on a Stone-Wales defect with the ground-truth bonds and ring centres
truth = make_sample("graphene-movie")
d = truth["stone_wales"][0]
t = 19
centre = np.array([d["y"], d["x"]]) + truth["drift"][t] - truth["drift"][d["frame"]]
for prefix in ("bonds", "ring centres"):
    layer(viewer, prefix).visible = True
zoom_on(viewer, t, centre[0], centre[1], 3.0)
shot(viewer, "graphene-movie_defect", canvas_only=True)
viewer.close()

viewer = open_sample("ferroic")
layer(viewer, "B-sites").visible = True
shot(viewer, "ferroic")
layer(viewer, "B-sites").visible = False
layer(viewer, "polarisation").visible = True
b = make_sample("ferroic")["bsites"]
walls = b[(b["variant"] < 4) & (np.abs(np.angle(np.exp(4j * b["angle"]) * np.exp(-1j * np.pi))) > 0.5)]
zoom_on(viewer, 0, float(np.median(walls["y"])), float(np.median(walls["x"])), 3.0)
shot(viewer, "ferroic_polarisation", canvas_only=True)
viewer.close()

viewer = open_sample("pfm-switching-full")
viewer.dims.set_point(0, 12)
shot(viewer, "pfm-switching")
montage(viewer, [0, 6, 9, 12, 20, 26, 29, 34], "pfm-switching_frames")
viewer.close()

viewer = open_sample("domain-movie-full")
viewer.dims.set_point(0, 7)
shot(viewer, "domain-movie")
montage(viewer, [0, 4, 8, 15, 22], "domain-movie_frames")
viewer.close()

viewer = open_sample("shift-lattice")
layer(viewer, "order parameter").visible = True
shot(viewer, "shift-lattice")
viewer.close()

viewer = open_sample("sines-1d")
shot(viewer, "sines-1d")
viewer.close()
