"""npe2 hooks: reader and writer returning / taking napari LayerData tuples.

No Qt here: these functions only translate between the core and napari's
layer data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .io.formats import FOLDER_FORMATS, READERS
from .io.movie import find_channel, read_movie
from .io.validate import sample_range


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return :func:`read_layers` for a file napari-rvae reads, several such files (one movie,
    one frame per file) or a folder of them; else ``None``."""
    paths = path if isinstance(path, list) else [path]
    if not paths:
        return None
    for p in paths:
        p = Path(p)
        if p.is_dir() and p.suffix.lower() in FOLDER_FORMATS:
            continue  # a .zarr store
        if p.is_dir():
            if (p / "project.json").is_file() or not any(c.suffix.lower() in READERS for c in p.iterdir()):
                return None
        elif p.suffix.lower() not in READERS:
            return None
    return read_layers


def read_layers(path: str | list[str]) -> list[tuple]:
    """Read a movie as one Image layer per channel, named after the channel.

    Several files or a folder open as one movie (one frame per file, natural order). Files
    larger than :func:`~.io.lazy.lazy_bytes` reach napari as dask arrays (frames are read as
    they are shown), with contrast limits from their first, middle and last frames. The
    phase channel of a PFM file is shown, the others are added hidden; all share the file's
    calibration. Raises ``ValueError`` with one clear line for an empty, corrupt or
    unsupported file; napari shows it as a notification and stays up.
    """
    source: Any = path
    if isinstance(path, list):
        source = path[0] if len(path) == 1 else [str(p) for p in path]
    movies = read_movie(source)
    shown = find_channel(movies, None, prefer="phase")
    layers = []
    for index, movie in enumerate(movies):
        kwargs = movie.layer_kwargs()
        kwargs["visible"] = index == shown
        data = movie.data
        if movie.lazy:  # napari gets the dask array; contrast from a few frames, not the whole movie
            limits = sample_range(data)
            if limits is not None:
                kwargs["contrast_limits"] = limits
        else:
            finite = np.isfinite(data)
            if finite.any() and not finite.all():
                lo, hi = float(np.min(data[finite])), float(np.max(data[finite]))
                kwargs["contrast_limits"] = (lo, hi if hi > lo else lo + 1.0)
        layers.append((data, kwargs, "image"))
    return layers


def get_project_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return :func:`read_project` for a napari-rvae project folder or its ``project.json``."""
    from .analysis.project import PROJECT_FILE

    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    if path.is_dir():
        return read_project if (path / PROJECT_FILE).is_file() else None
    return read_project if path.name == PROJECT_FILE else None


def read_project(path: str | list[str]) -> list[tuple]:
    """Reopen a project written by ``napari-rvae analyze``, the demo or the GUI's Save project:
    the movie (its file when it is still where it was, else the pixels the project kept), the
    sites with every feature column, and the stored layers (atom probability map, painted
    labels), all with the movie's scale and units. Each layer's metadata names its workflow
    role and the project folder, so the docks pick them up (and the model) by themselves."""
    from .analysis.project import load_project

    if isinstance(path, list):
        path = path[0]
    project = load_project(path)
    folder = str(Path(project.folder).resolve())
    gui = (project.record or {}).get("napari") or {}
    roles = gui.get("layers") or {}
    info = project.movie or {}
    geometry = {}
    if info.get("scale") and info.get("units") and len(info["scale"]) == len(info["units"]):
        geometry = {"scale": tuple(float(s) for s in info["scale"]), "units": tuple(str(u) for u in info["units"])}

    def tagged(kwargs: dict, role: str | None, name: str) -> dict:
        display = roles.get(name) or {}
        metadata = dict(kwargs.get("metadata") or {})
        metadata["napari_rvae_project"] = folder
        if role:
            metadata["napari_rvae_role"] = role
        if role == "map":
            metadata["napari_rvae"] = "map"
        if role == "labels" and display.get("classes"):
            metadata["classes"] = {int(k): str(v) for k, v in display["classes"].items()}
        out = {**kwargs, "metadata": metadata}
        for key in ("visible", "opacity", "blending", "colormap", "contrast_limits", "size"):
            if key in display:
                out[key] = display[key]
        return out

    layers: list[tuple] = []
    if project.movie_path is not None:
        movie_layers = read_layers(str(project.movie_path))
        channel = info.get("channel")
        pick = next((m for m in movie_layers if channel and (m[1].get("metadata") or {}).get("channel") == channel),
                    movie_layers[0] if movie_layers else None)
        if pick is not None:
            data, kwargs, kind = pick
            geometry = {"scale": kwargs["scale"], "units": kwargs["units"]}
            layers.append((data, tagged({**kwargs, "visible": True}, "movie", kwargs.get("name", "")), kind))
    for name, (data, kind) in project.layers.items():
        role = (roles.get(name) or {}).get("role")
        if role is None and kind == "image" and name == info.get("name"):
            role = "movie"
        if role == "movie" and any(layer[2] == "image" and layer[1]["metadata"].get("napari_rvae_role") == "movie"
                                   for layer in layers):
            continue  # the movie's own file was found: it wins over the stored copy
        kwargs = {"name": name}
        if geometry and np.ndim(data) == len(geometry["scale"]):
            kwargs.update(geometry, axis_labels=("t", "y", "x")[-np.ndim(data):])
        layers.append((data, tagged(kwargs, role, name), kind))
    if project.sites is not None:
        table = project.sites.reset_index(drop=True)
        name = gui.get("sites_layer") or "sites"
        coords = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        kwargs = {"name": name, "features": table, "size": 3, "border_width": 0}
        if geometry and len(geometry["scale"]) == 3:
            kwargs.update(geometry, axis_labels=("t", "y", "x"))
        layers.append((coords, tagged(kwargs, "sites", name), "points"))
    if not layers:
        raise ValueError(f"{path}: the project holds no sites and its movie was not found")
    return layers


def write_image_zarr(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer: an Image layer ``(T, Y, X)`` or ``(Y, X)`` as an OME-Zarr store (NGFF 0.4,
    one frame per chunk, written without loading a lazy layer whole; see :mod:`.io.zarr_store`),
    with the layer's scale and units as its calibration. Returns the written path."""
    from .io.units import normalise_unit
    from .io.zarr_store import write_movie

    if meta.get("rgb"):
        raise ValueError("an RGB image layer cannot be saved as a movie; convert it to grey first")
    ndim = len(getattr(data, "shape", ()))
    if ndim not in (2, 3):
        raise ValueError(f"only (T, Y, X) or (Y, X) image layers are saved as .zarr movies, this one has {ndim} dimensions")
    path = str(path) if str(path).lower().endswith(".zarr") else f"{path}.zarr"
    scale = [float(s) for s in (meta.get("scale") or [1.0] * ndim)][-ndim:]
    units = [str(u) for u in (meta.get("units") or ["pixel"] * ndim)][-ndim:]
    units = [_time_unit(units[0])] + [normalise_unit(u) for u in units[1:]] if ndim == 3 else \
        [""] + [normalise_unit(u) for u in units]
    scale = scale if ndim == 3 else [1.0] + scale
    write_movie(path, data, scale=scale, units=units, name=meta.get("name"), metadata=meta.get("metadata") or {})
    return [path]


def _time_unit(unit: str) -> str:
    return {"s": "s", "second": "s", "ms": "ms", "millisecond": "ms"}.get(unit.strip().lower(), "")
