"""npe2 hooks: reader and writer returning / taking napari LayerData tuples.

No Qt here: these functions only translate between the core and napari's
layer data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .io.formats import READERS
from .io.movie import find_channel, read_movie


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return :func:`read_layers` for a file napari-rvae reads, several such files (one movie,
    one frame per file) or a folder of them; else ``None``."""
    paths = path if isinstance(path, list) else [path]
    if not paths:
        return None
    for p in paths:
        p = Path(p)
        if p.is_dir():
            if (p / "project.json").is_file() or not any(c.suffix.lower() in READERS for c in p.iterdir()):
                return None
        elif p.suffix.lower() not in READERS:
            return None
    return read_layers


def read_layers(path: str | list[str]) -> list[tuple]:
    """Read a movie as one Image layer per channel, named after the channel.

    Several files or a folder open as one movie (one frame per file, natural order). The
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
        if not movie.lazy:
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
    """Reopen a project written by ``napari-rvae analyze`` / the demo: the movie (when it is
    still where it was), the sites with every feature column, and any stored layers."""
    from .analysis.project import load_project, project_layer_data

    if isinstance(path, list):
        path = path[0]
    project = load_project(path)
    layers: list[tuple] = []
    scale = None
    if project.movie_path is not None:
        movie_layers = read_layers(str(project.movie_path))
        layers += movie_layers[:1]
        scale = movie_layers[0][1]["scale"] if movie_layers else None
    for data, kwargs, kind in project_layer_data(project):
        if scale is not None and kind == "points":
            kwargs = {**kwargs, "scale": scale}
        layers.append((data, kwargs, kind))
    if not layers:
        raise ValueError(f"{path}: the project holds no sites and its movie was not found")
    return layers
