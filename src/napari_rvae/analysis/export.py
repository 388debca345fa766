"""Exports (sites tables, NPZ, ``run.json``) and the project folder.

A *project folder* keeps everything one analysis produced, in plain files
that reopen without unpickling anything::

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
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..io.files import CONFIG_NAME, WEIGHTS_NAME, atomic_write, read_json, write_json
from ..io.sites import read_sites, write_sites

PROJECT_FILE = "project.json"
PROJECT_FORMAT = "napari-rvae-project"
PROJECT_VERSION = 1
LAYER_KINDS = ("image", "labels", "points")


def export_sites(sites: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a sites table to CSV, or Parquet when ``path`` ends in ``.parquet``.

    Parquet needs ``pyarrow`` (or ``fastparquet``); without it a ``ValueError`` says so.
    """
    if not isinstance(sites, pd.DataFrame):
        raise ValueError(f"sites: expected a pandas DataFrame, got {type(sites).__name__}")
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            try:
                import fastparquet  # noqa: F401
            except ImportError:
                raise ValueError("path: writing Parquet needs pyarrow (pip install pyarrow); or use a .csv name") from None
    return write_sites(sites, path)


def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any]) -> Path:
    """Save named numeric arrays to a compressed ``.npz`` atomically (no pickled objects).

    Raises ``ValueError`` for object arrays (they would need pickle to load).
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"path: use a .npz name, got {path.name}")
    clean = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"arrays[{name!r}]: object arrays cannot be stored without pickle; convert to numbers or strings")
        clean[str(name)] = arr

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **clean)

    return atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, never unpickling."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(f"{path}: holds pickled objects, refused ({err})") from None
        raise ValueError(f"{path}: not a valid .npz file ({err})") from None
    except Exception as err:
        raise ValueError(f"{path}: not a valid .npz file ({type(err).__name__}: {err})") from None


def run_record(parameters: Mapping[str, Any], *, seeds: Mapping[str, int] | None = None,
               timings: Mapping[str, float] | None = None, **extra) -> dict:
    """A run record: parameters, seeds, timings (seconds), versions and platform.

    Torch's version is included only when torch is already imported (so
    making a record never costs a torch import).
    """
    from .. import __version__

    versions = {"napari_rvae": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "sklearn", "skimage", "torch"):
        module = sys.modules.get(name)
        if module is None and name != "torch":
            try:
                module = __import__(name)
            except ImportError:
                module = None
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    record = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": dict(parameters),
        "seeds": dict(seeds or {}),
        "timings_s": dict(timings or {}),
        "versions": versions,
        "platform": platform.platform(),
    }
    record.update(extra)
    return record


def write_run_record(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write a run record (see :func:`run_record`) as JSON atomically."""
    return write_json(path, dict(record))


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

    Parameters
    ----------
    folder : path
        Created if needed; files already there are replaced atomically.
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
        is referenced where it is.
    figures : mapping name → PNG file, optional
        Copied to ``figures/NAME.png``.
    record : dict, optional
        The run record → ``run.json``.

    Returns
    -------
    Path of the project folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
                             "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if movie_path is not None:
        movie_path = Path(movie_path).resolve()
        try:
            relative = os.path.relpath(movie_path, folder.resolve())
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
        kinds = {}
        for name, item in layers.items():
            if not (isinstance(item, tuple) and len(item) == 2 and item[1] in LAYER_KINDS):
                raise ValueError(f"layers[{name!r}]: expected (array, kind) with kind in {', '.join(LAYER_KINDS)}")
            kinds[name] = item[1]
        save_npz(folder / "layers.npz", {name: item[0] for name, item in layers.items()})
        index["layers"] = {"file": "layers.npz", "kinds": kinds}
    if models:
        index["models"] = {}
        for name, source in models.items():
            source = Path(source)
            source = source.parent if source.is_file() else source
            if source.resolve().is_relative_to(folder.resolve()):  # already inside the project: keep it there
                _copy_model(source, source)
                index["models"][name] = source.resolve().relative_to(folder.resolve()).as_posix()
                continue
            _copy_model(source, folder / "models" / name)
            index["models"][name] = f"models/{name}"
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

    The movie is not read here; ``movie_path`` is where it is expected
    (relative path first, then the absolute one), or ``None`` if neither exists.
    """
    folder = Path(folder)
    if folder.is_file() and folder.name == PROJECT_FILE:
        folder = folder.parent
    if not (folder / PROJECT_FILE).exists():
        raise ValueError(f"{folder}: not a napari-rvae project folder (no {PROJECT_FILE})")
    index = read_json(folder / PROJECT_FILE)
    if index.get("format") != PROJECT_FORMAT:
        raise ValueError(f"{folder / PROJECT_FILE}: not a napari-rvae project file")
    if int(index.get("version", 0)) > PROJECT_VERSION:
        raise ValueError(f"{folder}: project format {index.get('version')} is newer than this napari-rvae reads; update it")
    project = Project(folder=folder)
    movie = dict(index.get("movie") or {})
    project.movie = movie
    for candidate in (movie.get("path") and folder / movie["path"], movie.get("absolute_path")):
        if candidate and Path(candidate).exists():
            project.movie_path = Path(candidate).resolve()
            break
    if index.get("sites"):
        project.sites = read_sites(folder / index["sites"])
    if index.get("windows"):
        data = load_npz(folder / index["windows"])
        project.windows, project.window_index = data["windows"], data["index"]
    if index.get("results"):
        project.results = load_npz(folder / index["results"])
    if index.get("layers"):
        arrays = load_npz(folder / index["layers"]["file"])
        project.layers = {name: (arrays[name], kind) for name, kind in index["layers"]["kinds"].items()}
    for name, rel in (index.get("models") or {}).items():
        project.models[name] = folder / rel
    project.figures = [folder / rel for rel in index.get("figures", [])]
    if index.get("record"):
        project.record = read_json(folder / index["record"])
    return project


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
