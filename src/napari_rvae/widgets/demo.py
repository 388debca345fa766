"""``napari-rvae demo`` in napari: the graphene sample and the Workflow panel, Run all in front."""

from __future__ import annotations

import napari

from ..pipeline import DEMO_EPOCHS
from .workflow_panel import WorkflowPanel

#: the demo's names of the panel's steps
DEMO_NAMES = {"pipeline": "run pipeline", "segment": "segment", "detect": "detect", "train": "train",
              "explorer": "explore", "colour": "colour", "analysis": "analysis"}


def load_graphene_sample(viewer: napari.Viewer):
    """Add the small graphene movie (5 × 256²) and its ground-truth atoms (hidden); returns the image layer."""
    from .._samples import graphene_movie

    image = None
    for data, kwargs, kind in graphene_movie():
        name = kwargs.get("name", "")
        if kind == "image":
            image = viewer.add_image(data, **kwargs)
        elif kind == "points" and name.startswith("atoms"):
            kwargs = dict(kwargs, visible=False)
            viewer.add_points(data, **kwargs)
    return image


def open_demo(viewer: napari.Viewer | None = None, run: bool = False) -> tuple[napari.Viewer, dict]:
    """Set up the demo in ``viewer`` (a new one by default); with ``run`` start the pipeline at once.

    Returns the viewer and the panel's docks by their demo names (``pipeline``, ``explorer`` …)."""
    viewer = viewer or napari.Viewer(title="napari-rvae demo: graphene movie")
    load_graphene_sample(viewer)
    panel = WorkflowPanel(viewer)
    viewer.window.add_dock_widget(panel, name="napari-rvae workflow", area="right")
    docks = {name: panel.dock(step) for name, step in DEMO_NAMES.items()}
    docks["panel"] = panel
    panel.show_step("run pipeline")
    # when the pipeline is done, show the filled explorer
    docks["pipeline"].job.finished.connect(lambda: panel.show_step("explore"))
    if run:
        docks["pipeline"].epochs_spin.setValue(DEMO_EPOCHS)  # the quick demo; "auto" would train 28 on the sample
        docks["pipeline"].run()
    return viewer, docks


def run_demo_gui(run: bool = True) -> int:
    """Open the demo window and block until it is closed."""
    open_demo(run=run)
    napari.run()
    return 0
