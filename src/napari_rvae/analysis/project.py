"""The project folder: everything one analysis produced, in plain files that reopen
without unpickling anything::

    my_project/
      project.json        # index: format version, movie reference, what is stored where
      sites.csv           # the sites table (frame, y, x, …, angle, z0, …, cluster)
      windows.npz         # windows (N, w, w) + index (row of the sites table per window)
      results.npz         # named result arrays (densities, NMF components, loadings, …)
      layers.npz          # extra napari layers as arrays (labels, images); kinds in project.json
      models/NAME/        # model.safetensors + model.json, one folder per model
      figures/*.png       # exported figures
      run.json            # the run record: parameters, seeds, versions, timings

The movie itself is referenced, not copied: ``project.json`` keeps its path
relative to the project folder (and the absolute path), its shape, scale and units.
The folder is written as a whole and swapped into place (:mod:`napari_rvae.io.folders`);
``project.json`` is checked against its schema when read.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..io.files import CONFIG_NAME, WEIGHTS_NAME, atomic_write, read_json, write_json
from ..io.sites import read_sites
from .export import export_sites, load_npz, save_npz, write_run_record

PROJECT_FILE = "project.json"
PROJECT_FORMAT = "napari-rvae-project"
PROJECT_VERSION = 1
LAYER_KINDS = ("image", "labels", "points")


@dataclass
class Project:
    """What :func:`load_project` returns; fields are ``None`` / empty when not stored."""

    folder: Path
    sites: pd.DataFrame | None = None
    movie_path: Path | None = None
    movie: dict = field(default_factory=dict)
    windows: np.ndarray | None = None
    window_index: np.ndarray | None = None
    results: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    record: dict = field(default_factory=dict)


def _copy_model(source: Path, target: Path) -> None:
    source = source.parent if source.is_file() else source
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (source / name).exists():
            raise ValueError(f"models: {source} is not a model folder (needs {WEIGHTS_NAME} and {CONFIG_NAME})")
    target.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if (source / name).resolve() != (target / name).resolve():
            atomic_write(target / name, lambda p, n=name: shutil.copyfile(source / n, p))


def save_project(
    folder: str | os.PathLike,
    *,
    sites: pd.DataFrame | None = None,
    movie_path: str | os.PathLike | None = None,
    movie_info: Mapping[str, Any] | None = None,
    windows: np.ndarray | None = None,
    window_index: np.ndarray | None = None,
    results: Mapping[str, Any] | None = None,
    layers: Mapping[str, tuple[np.ndarray, str]] | None = None,
    models: Mapping[str, str | os.PathLike] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    record: Mapping[str, Any] | None = None,
) -> Path:
    """Save an analysis into a project folder (layout in the module docstring).

    The folder is replaced as a whole (:func:`napari_rvae.io.folders.replaced_folder`):
    everything is written beside it and swapped in at the end, so a re-run leaves no
    file of the previous one behind, and a crash or a full disk leaves the previous
    project or the new one, never a mix.

    Parameters
    ----------
    folder : path
        Created if needed; a previous project there is replaced.
    sites : DataFrame, optional
    movie_path : path, optional
        The movie file, referenced (not copied).
    movie_info : dict, optional
        e.g. ``{"shape": [T, Y, X], "scale": [...], "units": [...], "name": ...}``.
    windows, window_index : (N, w, w) array and (N,) int, optional
        Windows and the sites row of each (default ``arange(N)``).
    results : mapping name → array, optional
        Numeric results (densities, loadings, …) → ``results.npz``.
    layers : mapping name → (array, kind), optional
        Extra napari layers, kind in ``image``, ``labels``, ``points``.
    models : mapping name → model folder, optional
        Copied to ``models/NAME/``; a model folder already inside the project
        keeps its place in it.
    figures : mapping name → PNG file, optional
        Copied to ``figures/NAME.png``.
    record : dict, optional
        The run record → ``run.json``.

    Returns
    -------
    Path of the project folder.
    """
    from ..io.folders import replaced_folder

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder: {folder} exists and is not a folder")
    _check_layers(layers)
    with replaced_folder(folder, markers=(PROJECT_FILE,)) as stage:
        write_project_files(stage, final=folder, sites=sites, movie_path=movie_path, movie_info=movie_info,
                            windows=windows, window_index=window_index, results=results, layers=layers,
                            models=models, figures=figures, record=record)
    return folder


def _check_layers(layers) -> None:
    for name, item in (layers or {}).items():
        if not (isinstance(item, tuple) and len(item) == 2 and item[1] in LAYER_KINDS):
            raise ValueError(f"layers[{name!r}]: expected (array, kind) with kind in {', '.join(LAYER_KINDS)}")


def write_project_files(
    folder: Path,
    *,
    final: Path | None = None,
    sites: pd.DataFrame | None = None,
    movie_path: str | os.PathLike | None = None,
    movie_info: Mapping[str, Any] | None = None,
    windows: np.ndarray | None = None,
    window_index: np.ndarray | None = None,
    results: Mapping[str, Any] | None = None,
    layers: Mapping[str, tuple[np.ndarray, str]] | None = None,
    models: Mapping[str, str | os.PathLike] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    record: Mapping[str, Any] | None = None,
) -> Path:
    """Write the project files into ``folder`` (a staging folder) for a project that will
    live at ``final`` (paths inside ``project.json`` are relative to it; default ``folder``).
    Used by :func:`save_project` and the pipeline, which add the model and figures first."""
    folder = Path(folder)
    final = Path(final) if final is not None else folder
    folder.mkdir(parents=True, exist_ok=True)
    _check_layers(layers)
    index: dict[str, Any] = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
                             "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if movie_path is not None:
        movie_path = Path(movie_path).resolve()
        try:
            relative = os.path.relpath(movie_path, final.resolve())
        except ValueError:  # another drive on Windows
            relative = None
        index["movie"] = {"path": relative, "absolute_path": str(movie_path), **dict(movie_info or {})}
    elif movie_info:
        index["movie"] = {"path": None, "absolute_path": None, **dict(movie_info)}
    if sites is not None:
        export_sites(sites, folder / "sites.csv")
        index["sites"] = "sites.csv"
    if windows is not None:
        windows = np.asarray(windows)
        if windows.ndim != 3:
            raise ValueError(f"windows: expected an (N, w, w) array, got shape {windows.shape}")
        idx = np.arange(len(windows)) if window_index is None else np.asarray(window_index).ravel()
        if len(idx) != len(windows):
            raise ValueError(f"window_index: {len(idx)} entries for {len(windows)} windows")
        save_npz(folder / "windows.npz", {"windows": windows, "index": idx.astype(np.int64)})
        index["windows"] = "windows.npz"
    if results:
        save_npz(folder / "results.npz", results)
        index["results"] = "results.npz"
    if layers:
        save_npz(folder / "layers.npz", {name: item[0] for name, item in layers.items()})
        index["layers"] = {"file": "layers.npz", "kinds": {name: item[1] for name, item in layers.items()}}

    def place(source: Path) -> Path | None:
        """Where a source inside the project goes in the staging folder (None: outside)."""
        for root in (folder, final):
            try:
                if source.resolve().is_relative_to(root.resolve()):
                    return folder / source.resolve().relative_to(root.resolve())
            except OSError:
                pass
        return None

    if models:
        index["models"] = {}
        for name, source in models.items():
            source = Path(source)
            source = source.parent if source.is_file() else source
            inside = place(source)
            target = inside if inside is not None else folder / "models" / name
            _copy_model(source, target)
            index["models"][name] = target.relative_to(folder).as_posix()
    if figures:
        index["figures"] = []
        for name, source in figures.items():
            source = Path(source)
            if not source.exists():
                raise ValueError(f"figures[{name!r}]: {source} not found")
            target = folder / "figures" / f"{name}.png"
            if source.resolve() != target.resolve():
                atomic_write(target, lambda p, s=source: shutil.copyfile(s, p))
            index["figures"].append(f"figures/{name}.png")
    if record is not None:
        write_run_record(folder / "run.json", record)
        index["record"] = "run.json"
    write_json(folder / PROJECT_FILE, index)  # last: a folder with project.json is complete
    return folder


def load_project(folder: str | os.PathLike) -> Project:
    """Reopen a project folder written by :func:`save_project` (never unpickles).

    ``project.json`` is checked against the project schema first (known entries only,
    the right types, finite numbers, files inside the folder, known layer kinds); anything
    else is refused with one ``ValueError`` line. The movie is not read here;
    ``movie_path`` is where it is expected (relative path first, then the absolute
    one), or ``None`` if neither exists.
    """
    from ..io.folders import recover_folder

    folder = Path(folder)
    if folder.is_file() and folder.name == PROJECT_FILE:
        folder = folder.parent
    try:
        recover_folder(folder)  # a save interrupted by a crash is finished (or undone) first
    except OSError:
        pass
    if not (folder / PROJECT_FILE).is_file():
        raise ValueError(f"{folder}: not a napari-rvae project folder (no {PROJECT_FILE})")
    index = read_json(folder / PROJECT_FILE)
    _validate_index(index, folder)
    project = Project(folder=folder)
    movie = dict(index.get("movie") or {})
    project.movie = movie
    for candidate in (movie.get("path") and folder / movie["path"], movie.get("absolute_path")):
        if candidate and Path(candidate).is_file():
            project.movie_path = Path(candidate).resolve()
            break
    where = folder / PROJECT_FILE
    if index.get("sites"):
        project.sites = read_sites(folder / index["sites"])
    if index.get("windows"):
        data = load_npz(folder / index["windows"])
        if not {"windows", "index"} <= set(data) or data["windows"].ndim != 3 or len(data["index"]) != len(data["windows"]):
            raise ValueError(f"{folder / index['windows']}: expected 'windows' (N, w, w) and 'index' (N,) arrays")
        project.windows, project.window_index = data["windows"], data["index"]
    if index.get("results"):
        project.results = load_npz(folder / index["results"])
    if index.get("layers"):
        arrays = load_npz(folder / index["layers"]["file"])
        for name, kind in index["layers"]["kinds"].items():
            if name not in arrays:
                raise ValueError(f"{where}: layer {name!r} is not in {index['layers']['file']}")
            _check_layer_array(arrays[name], kind, f"{where}: layer {name!r}")
            project.layers[name] = (arrays[name], kind)
    for name, rel in (index.get("models") or {}).items():
        project.models[name] = folder / rel
    project.figures = [folder / rel for rel in index.get("figures") or []]
    if index.get("record"):
        project.record = read_json(folder / index["record"])
    return project


_INDEX_KEYS = {"format", "version", "saved", "movie", "sites", "windows", "results", "layers", "models", "figures",
               "record"}
_MOVIE_KEYS = {"path", "absolute_path", "shape", "scale", "units", "name", "axis_labels", "channel"}


def _validate_index(index: dict, folder: Path) -> None:
    """project.json against the schema; one ``ValueError`` line for the first problem."""
    where = folder / PROJECT_FILE

    def fail(what: str):
        raise ValueError(f"{where}: {what}; the project file is damaged or not from napari-rvae")

    def inside(rel, key: str) -> None:
        if not isinstance(rel, str) or not rel or "\x00" in rel:
            fail(f"'{key}' must be a file name inside the project, got {type(rel).__name__}")
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts:
            fail(f"'{key}' points outside the project folder ({rel!r})")

    def numbers(values, key: str, integer: bool = False) -> None:
        if not isinstance(values, list) or len(values) > 8 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and (not integer or (float(v).is_integer() and v >= 0)) for v in values):
            fail(f"'{key}' must be a short list of finite {'whole ' if integer else ''}numbers")

    if index.get("format") != PROJECT_FORMAT:
        raise ValueError(f"{where}: not a napari-rvae project file")
    version = index.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"'version' must be a whole number ≥ 1, got {version!r}")
    if version > PROJECT_VERSION:
        raise ValueError(f"{folder}: project format {version} is newer than this napari-rvae reads; update it")
    unknown = sorted(set(index) - _INDEX_KEYS)
    if unknown:
        fail(f"unknown entries {', '.join(map(repr, unknown[:3]))}")
    if "saved" in index and not isinstance(index["saved"], str):
        fail("'saved' must be a date text")
    movie = index.get("movie")
    if movie is not None:
        if not isinstance(movie, dict):
            fail("'movie' must be an object")
        extra = sorted(set(movie) - _MOVIE_KEYS)
        if extra:
            fail(f"unknown movie entries {', '.join(map(repr, extra[:3]))}")
        for key in ("path", "absolute_path", "name", "channel"):
            if movie.get(key) is not None and not isinstance(movie[key], str):
                fail(f"movie '{key}' must be text or null")
        if "shape" in movie:
            numbers(movie["shape"], "movie shape", integer=True)
        if "scale" in movie:
            numbers(movie["scale"], "movie scale")
        for key in ("units", "axis_labels"):
            if key in movie and not (isinstance(movie[key], list) and len(movie[key]) <= 8
                                     and all(isinstance(u, str) for u in movie[key])):
                fail(f"movie '{key}' must be a short list of texts")
    for key in ("sites", "windows", "results", "record"):
        if index.get(key) is not None:
            inside(index[key], key)
    layers = index.get("layers")
    if layers is not None:
        if not isinstance(layers, dict) or set(layers) != {"file", "kinds"} or not isinstance(layers["kinds"], dict):
            fail("'layers' must be {\"file\": …, \"kinds\": {name: kind}}")
        inside(layers["file"], "layers file")
        for name, kind in layers["kinds"].items():
            if kind not in LAYER_KINDS:
                fail(f"layer {name!r} has kind {kind!r}; known kinds: {', '.join(LAYER_KINDS)}")
    models = index.get("models")
    if models is not None:
        if not isinstance(models, dict):
            fail("'models' must be an object name → folder")
        for name, rel in models.items():
            inside(rel, f"models/{name}")
    figures = index.get("figures")
    if figures is not None:
        if not isinstance(figures, list):
            fail("'figures' must be a list of file names")
        for rel in figures:
            inside(rel, "figures")


def _check_layer_array(data: np.ndarray, kind: str, where: str) -> None:
    if data.dtype.kind not in "uifb":
        raise ValueError(f"{where}: holds {data.dtype} values, not numbers")
    if kind == "points":
        if data.ndim != 2 or data.shape[1] not in (2, 3) or not np.isfinite(data).all():
            raise ValueError(f"{where}: points must be finite (N, 2) or (N, 3) coordinates, got shape {data.shape}")
    elif not 2 <= data.ndim <= 4:
        raise ValueError(f"{where}: a {kind} layer must have 2 to 4 dimensions, got shape {data.shape}")
    elif kind == "labels" and data.dtype.kind not in "uib":
        raise ValueError(f"{where}: labels must be whole numbers, got {data.dtype}")


def project_layer_data(project: Project) -> list[tuple]:
    """napari layer data tuples ``(data, kwargs, layer_type)`` for a loaded project.

    The sites become a Points layer (``data = [[frame, y, x], …]``, the whole
    table as ``features``); stored layers keep their kind. The movie is not
    read here: open ``project.movie_path`` with the movie reader and put it first.
    """
    layers: list[tuple] = []
    for name, (data, kind) in project.layers.items():
        layers.append((data, {"name": name}, kind))
    if project.sites is not None:
        table = project.sites.reset_index(drop=True)
        coords = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        layers.append((coords, {"name": "sites", "features": table, "size": 3}, "points"))
    return layers
