"""The sites table: one row per site, every stage reads it and adds columns.

Columns (DESIGN §3): ``frame, y, x, kind, class, intensity``, then model
outputs ``angle, dx, dy, z0 … z{k-1}`` (radians, pixels), then analysis
columns (``cluster``, ``track_id`` …). Positions are in pixels of the movie,
``(y, x)`` = (row, column), sub-pixel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .files import atomic_write

SITE_COLUMNS = ["frame", "y", "x", "kind", "class", "intensity"]
SITE_KINDS = ("atom", "wall", "hollow", "grid")


def make_sites(frame, y, x, kind="atom", cls=0, intensity=np.nan, **extra) -> pd.DataFrame:
    """Build a sites table from arrays (broadcast scalars). Extra columns are appended."""
    y = np.asarray(y, dtype=np.float64).ravel()
    n = y.size
    table = pd.DataFrame(
        {
            "frame": np.broadcast_to(np.asarray(frame, dtype=np.int64), (n,)).copy(),
            "y": y,
            "x": np.broadcast_to(np.asarray(x, dtype=np.float64).ravel(), (n,)).copy(),
            "kind": np.broadcast_to(np.asarray(kind, dtype=object), (n,)).copy(),
            "class": np.broadcast_to(np.asarray(cls, dtype=np.int64), (n,)).copy(),
            "intensity": np.broadcast_to(np.asarray(intensity, dtype=np.float64), (n,)).copy(),
        }
    )
    for name, values in extra.items():
        table[name] = np.broadcast_to(np.asarray(values), (n,)).copy()
    return table


def empty_sites() -> pd.DataFrame:
    """A sites table with the standard columns and no rows."""
    return make_sites([], [], [])


def validate_sites(table: pd.DataFrame, *, name: str = "sites") -> pd.DataFrame:
    """Check the required columns exist and are finite; return a clean copy.

    Missing ``kind`` / ``class`` / ``intensity`` are filled with defaults;
    missing ``frame`` / ``y`` / ``x`` raise ``ValueError``.
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name}: expected a table (pandas DataFrame), got {type(table).__name__}")
    missing = [c for c in ("frame", "y", "x") if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}; a sites table needs frame, y, x")
    out = table.copy()
    if "kind" not in out:
        out["kind"] = "atom"
    if "class" not in out:
        out["class"] = 0
    if "intensity" not in out:
        out["intensity"] = np.nan
    yx = out[["y", "x"]].to_numpy(dtype=np.float64)
    if len(out) and not np.isfinite(yx).all():
        raise ValueError(f"{name}: {int((~np.isfinite(yx)).any(1).sum())} site(s) have NaN or infinite positions")
    out["frame"] = out["frame"].astype(np.int64)
    out["class"] = out["class"].fillna(0).astype(np.int64)
    return out


def read_sites(path: str | os.PathLike) -> pd.DataFrame:
    """Read a sites table from CSV or Parquet and validate it. A folder is a partitioned table (one
    ``part-*.parquet`` per chunk of frames, written by :mod:`napari_rvae.chunks`), read in frame order."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if path.is_dir():
        from ..chunks.store import read_partitions

        return validate_sites(read_partitions(path), name=str(path))  # says itself what is wrong
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path)
    except Exception as err:  # pandas raises many kinds for broken files
        raise ValueError(f"{path}: cannot read a sites table ({type(err).__name__}: {err})") from None
    return validate_sites(table, name=str(path))


def write_sites(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a sites table atomically to CSV (or Parquet by extension)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return atomic_write(path, lambda p: table.to_parquet(p, index=False))
    return atomic_write(path, lambda p: table.to_csv(p, index=False))


def latent_columns(table: pd.DataFrame) -> list[str]:
    """The model-output columns present, in order: angle, dx, dy, z0, z1, …"""
    z = sorted((c for c in table.columns if c[:1] == "z" and c[1:].isdigit()), key=lambda c: int(c[1:]))
    return [c for c in ("angle", "dx", "dy") if c in table.columns] + z
