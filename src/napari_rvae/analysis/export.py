"""Exports: sites tables (CSV / Parquet), named arrays (NPZ) and run records (``run.json``).

Nothing here unpickles. The project folder that bundles them is :mod:`.project`
(its names are re-exported here for older imports).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..io.files import atomic_write, write_json
from ..io.sites import write_sites


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


# the project folder lives in .project; these names were importable from here before
from .project import (  # noqa: E402  (after the functions .project imports from this module)
    LAYER_KINDS, PROJECT_FILE, PROJECT_FORMAT, PROJECT_VERSION, Project, load_project, project_layer_data,
    save_project, write_project_files,
)
