"""Save and reopen a project from the GUI: the same folder ``napari-rvae analyze`` writes.

Saving gathers the workflow's layers and model in the GUI thread (cheap references)
and writes them in the background with :func:`napari_rvae.analysis.export.save_project`:

* the movie, referenced by its file when it came from one (else stored in ``layers.npz``);
* the sites with every feature column (latents, clusters, selections) → ``sites.csv``;
* the current model with its training history → ``models/model``;
* the atom probability map and the painted labels → ``layers.npz``;
* the run record (what each step did) with the docks' settings and the layers' roles → ``run.json``.

Reopening goes through the plugin's project reader (File ▸ Open works the same): the
layers come back with their roles, and :func:`adopt_project` then loads the model in
the background and puts the docks' settings back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ._common import sites_from_layer
from ._state import unwrap

NAPARI_KEY = "napari"  # run.json entry with the GUI's part of the project


def load_vae_job(folder):
    """Background job: a saved VAE model."""
    from ..vae import load_model

    return load_model(folder)


def save_current_model(flow, folder, trainer=None) -> str:
    """Save the workflow's current model (with its training history, and the optimizer's state
    when its ``trainer`` is given) into ``folder``; returns the path."""
    from ..vae import save_model

    model = flow.model
    if model is None:
        raise ValueError("no model yet: train one (Train or Run all) or load one")
    return str(save_model(model, folder, history=list(getattr(model, "history", []) or []), trainer=trainer))


def movie_reference(layer) -> tuple[str | None, dict]:
    """``(path or None, movie_info)`` of a movie layer for ``project.json``."""
    metadata = getattr(layer, "metadata", None) or {}
    path = metadata.get("source") or getattr(getattr(layer, "source", None), "path", None)
    if isinstance(path, (list, tuple)):
        path = None
    if path is not None and not Path(str(path)).exists():
        path = None
    info = {"shape": [int(s) for s in np.shape(layer.data)], "scale": [float(s) for s in layer.scale],
            "units": [str(u) for u in getattr(layer, "units", ())], "name": str(layer.name),
            "axis_labels": [str(a) for a in getattr(layer, "axis_labels", ())]}
    if metadata.get("channel"):
        info["channel"] = str(metadata["channel"])
    return (str(path) if path is not None else None), info


def _display(layer) -> dict:
    out = {"visible": bool(layer.visible), "opacity": float(layer.opacity), "blending": str(layer.blending)}
    if type(layer).__name__ == "Image":  # labels keep napari's own label colours
        out["colormap"] = str(layer.colormap.name)
        out["contrast_limits"] = [float(v) for v in layer.contrast_limits]
    return out


def gather_project(flow) -> dict:
    """Everything a project save needs, read from the workflow in the GUI thread.

    Returns keyword arguments for :func:`write_project` (arrays are copies, so the
    user may keep working while it writes).
    """
    from ..analysis.export import run_record

    movie, sites, map_layer, labels = (flow.layer(r) for r in ("movie", "sites", "map", "labels"))
    if sites is None and movie is None:
        raise ValueError("nothing to save yet: open a movie and detect sites first")
    layers, roles = {}, {}
    movie_path, movie_info = (None, {})
    if movie is not None:
        movie_path, movie_info = movie_reference(movie)
        roles[movie.name] = {"role": "movie", **_display(movie)}
        if movie_path is None:  # a sample or an array made in Python: the project keeps the pixels
            layers[movie.name] = (np.array(movie.data, dtype=np.float32), "image")
    if map_layer is not None:
        layers[map_layer.name] = (np.array(map_layer.data, dtype=np.float32), "image")
        roles[map_layer.name] = {"role": "map", **_display(map_layer)}
    if labels is not None:
        layers[labels.name] = (np.array(labels.data), "labels")
        roles[labels.name] = {"role": "labels", **_display(labels),
                              "classes": {str(k): v for k, v in (labels.metadata.get("classes") or {}).items()}}
    table = None
    if sites is not None:
        table = sites_from_layer(sites)
        roles[sites.name] = {"role": "sites", "size": float(np.mean(sites.size)) if len(sites.data) else 3.0,
                             "visible": bool(sites.visible)}
    lattice = getattr(flow, "lattice", None)
    gui = {"docks": flow.dock_states(), "layers": roles, "sites_layer": None if sites is None else sites.name,
           "lattice": lattice.to_dict() if lattice is not None and hasattr(lattice, "to_dict") else None}
    record = run_record({"workflow": dict(flow.record)}, command="napari GUI: Save project")
    record[NAPARI_KEY] = gui
    return {"sites": table, "movie_path": movie_path, "movie_info": movie_info, "layers": layers,
            "model": flow.model, "record": record}


def write_project(folder, *, sites, movie_path, movie_info, layers, model, record) -> str:
    """Background job: write the project folder (the model through a temporary folder)."""
    import json

    from ..analysis.export import save_project

    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="napari-rvae-model-") as tmp:
        models = None
        if model is not None:
            from ..vae import save_model

            save_model(model, Path(tmp) / "model", history=list(getattr(model, "history", []) or []))
            models = {"model": Path(tmp) / "model"}
        record = json.loads(json.dumps(record, default=_plain))
        save_project(folder, sites=sites, movie_path=movie_path, movie_info=movie_info, layers=layers or None,
                     models=models, record=record)
    return str(folder)


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def check_target(folder) -> str:
    """``"new"`` (absent or empty), ``"project"`` (a project to replace) — else ValueError."""
    from ..analysis.export import PROJECT_FILE

    folder = Path(folder)
    if not folder.exists():
        return "new"
    if not folder.is_dir():
        raise ValueError(f"{folder} is a file; choose a folder for the project")
    if (folder / PROJECT_FILE).is_file():
        return "project"
    if any(folder.iterdir()):
        raise ValueError(f"{folder} holds other files; choose an empty folder or an existing project folder")
    return "new"


# ------------------------------------------------------------------ reopening
def adopt_project(flow, folder: str) -> None:
    """After the reader added a project's layers: restore the docks and the record, load the model."""
    from ..analysis.export import load_project
    from ..detect.lattice import Lattice
    from ._workers import BackgroundJob, call_safely

    project = call_safely("Reading the project", load_project, folder)
    if project is None:
        return
    record = project.record or {}
    gui = record.get(NAPARI_KEY) or {}
    flow.record = dict((record.get("parameters") or {}).get("workflow") or {})
    if gui.get("lattice"):
        flow.set_lattice(Lattice.from_dict(gui["lattice"]))
    flow.restore_docks(gui.get("docks") or {})
    model_folder = project.models.get("model") or next(iter(project.models.values()), None)
    if model_folder is None:
        return

    def loaded(model):
        flow.set_model(model, origin=f"project {folder}")

    job = BackgroundJob("Loading the project's model", on_return=loaded, parent=flow)
    flow._project_job = job  # kept alive while it runs
    job.start(load_vae_job, str(model_folder), total=0)


def open_project(viewer, folder) -> list:
    """Open a project folder in ``viewer`` through the plugin's project reader; returns the layers."""
    from ._state import workflow

    viewer = unwrap(viewer)
    flow = workflow(viewer)
    flow.project_folder = None  # reopening the same folder adopts it again
    return viewer.open(str(folder), plugin="napari-rvae")
