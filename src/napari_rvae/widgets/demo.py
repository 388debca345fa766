"""``napari-rvae demo`` in napari: the graphene sample, the docks, and a Run pipeline button."""

from __future__ import annotations

import napari

from .analysis_dock import AnalysisDock
from .colour_atoms import ColourAtoms
from .detect_dock import Detect
from .latent_explorer import LatentExplorer
from .pipeline_dock import RunPipeline
from .segment_dock import SegmentLabel
from .train_vae import TrainVAE


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
    """Set up the demo in ``viewer`` (a new one by default); with ``run`` start the pipeline at once."""
    viewer = viewer or napari.Viewer(title="napari-rvae demo: graphene movie")
    image = load_graphene_sample(viewer)
    docks = {"pipeline": RunPipeline(viewer), "explorer": LatentExplorer(viewer),
             "colour": ColourAtoms(viewer), "train": TrainVAE(viewer), "detect": Detect(viewer),
             "segment": SegmentLabel(viewer), "analysis": AnalysisDock(viewer)}
    viewer.window.add_dock_widget(docks["pipeline"], name="Run pipeline", area="left")
    explorer_dock = viewer.window.add_dock_widget(docks["explorer"], name="Latent explorer", area="right")
    viewer.window.add_dock_widget(docks["colour"], name="Colour atoms", area="right", tabify=True)
    viewer.window.add_dock_widget(docks["train"], name="Train VAE", area="right", tabify=True)
    viewer.window.add_dock_widget(docks["detect"], name="Detect", area="right", tabify=True)
    viewer.window.add_dock_widget(docks["segment"], name="Segment & label", area="right", tabify=True)
    viewer.window.add_dock_widget(docks["analysis"], name="Analysis", area="right", tabify=True)
    explorer_dock.raise_()
    # when the pipeline is done, show the filled explorer
    docks["pipeline"].job.finished.connect(explorer_dock.raise_)
    for dock in ("pipeline", "train", "detect", "segment"):
        docks[dock].image_picker.set_layer(image)
    docks["explorer"].image_picker.set_layer(image)
    if run:
        docks["pipeline"].run()
    return viewer, docks


def run_demo_gui(run: bool = True) -> int:
    """Open the demo window and block until it is closed."""
    viewer, docks = open_demo(run=run)
    napari.run()
    return 0
