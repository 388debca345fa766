"""npe2 reader and writer for sites tables: CSV / Parquet ⇄ a Points layer with features.

A sites table (DESIGN §3) has ``frame, y, x`` in pixels and any number of feature columns.
It opens as a Points layer whose ``data`` is ``[[frame, y, x], …]`` and whose ``features`` is
the whole table; sites with a ``track_id`` (≥ 0) also open as a Tracks layer. When the table
carries its calibration (``y_nm`` / ``x_nm`` columns, written by ``detect`` and by this writer
for calibrated layers), the layers get the pixel size and the units napari shows the movie in
(nm, or µm for fields of 1 µm or wider), so they sit on the movie. No Qt here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .io.sites import SITE_COLUMNS, read_sites, write_sites as _write_table
from .io.units import add_physical_columns, display_calibration, pixel_size_nm, table_pixel_size_nm

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _table_columns(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file (or a folder of Parquet partitions) without reading
    its rows ([] when unreadable)."""
    try:
        if path.is_dir():
            parts = sorted(path.glob("part-*.parquet"))
            path = parts[0] if parts else path
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception:  # not a table we read: leave it to other readers
        return []


def get_sites_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return :func:`read_sites_layers` for a CSV / Parquet file with ``frame, y, x`` columns.

    Other tables (napari's own points CSV, anything else) get ``None`` so another reader opens them.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES or not (path.is_file() or path.is_dir()):
        return None
    columns = _table_columns(path)
    return read_sites_layers if {"frame", "y", "x"} <= set(columns) else None


def layer_calibration(table: pd.DataFrame) -> tuple[tuple[float, float, float], tuple[str, str, str]]:
    """``(scale, units)`` for ``(frame, y, x)``: the table's pixel size in the movie's display unit
    (nm or µm), or ``(1, 1, 1)`` in pixels when the table has no calibration."""
    pixel_nm = table_pixel_size_nm(table)
    if pixel_nm is None:
        return (1.0, 1.0, 1.0), ("", "pixel", "pixel")
    field = (float(table["y"].max()) + 1.0, float(table["x"].max()) + 1.0)
    (py, px), unit = display_calibration(pixel_nm, "nm", field)
    return (1.0, py, px), ("", unit, unit)


def read_sites_layers(path: str | list[str]) -> list[tuple]:
    """A sites table as napari layer data: Points (``features`` = the table), plus Tracks when
    the table has ``track_id``. Raises ``ValueError`` (one line) for a broken table."""
    if isinstance(path, list):
        path = path[0]
    path = Path(path)
    table = read_sites(path).reset_index(drop=True)
    scale, units = layer_calibration(table)
    common = {"scale": scale, "units": units, "axis_labels": ("t", "y", "x")}
    coords = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
    layers: list[tuple] = [(coords, {"name": path.stem, "features": table, "size": 3, **common}, "points")]
    if "track_id" in table.columns:
        from .detect.tracks import tracks_layer_data

        tracks = tracks_layer_data(table)
        if len(tracks):
            layers.append((tracks, {"name": f"{path.stem} tracks", **common}, "tracks"))
    return layers


def write_sites(path: str, data: Any, attributes: dict) -> list[str]:
    """Save a Points layer as a sites table, CSV or Parquet by the file's extension.

    Positions come from the layer's data (the user may have moved points): ``(t, y, x)`` →
    ``frame, y, x`` in pixels; a 2D layer gets ``frame = 0``. Every feature column is kept.
    ``y_nm`` / ``x_nm`` are (re)computed from the layer's calibration (its ``scale`` and
    ``units``), or from the table's own when the layer is in pixels, so the file reopens on
    the movie.
    """
    coords = np.asarray(data, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(f"expected points with (y, x) or (t, y, x) coordinates, got shape {coords.shape}")
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: a sites table is written as .csv or .parquet")
    features = attributes.get("features")
    table = pd.DataFrame(features).reset_index(drop=True) if features is not None else pd.DataFrame()
    if len(table) != len(coords):
        table = pd.DataFrame(index=range(len(coords)))
    pixel_nm = table_pixel_size_nm(table) if {"y", "x"} <= set(table.columns) else None
    scale, units = attributes.get("scale"), attributes.get("units")
    if scale is not None and units is not None and len(scale) >= 2 and len(units) >= 2:
        pixel_nm = pixel_size_nm(scale, [str(u) for u in units]) or pixel_nm
    frame = np.rint(coords[:, 0]).astype(np.int64) if coords.shape[1] == 3 else np.zeros(len(coords), np.int64)
    table["frame"], table["y"], table["x"] = frame, coords[:, -2], coords[:, -1]
    for column, default in (("kind", "atom"), ("class", 0), ("intensity", np.nan)):
        if column not in table:
            table[column] = default
    table = table[SITE_COLUMNS + [c for c in table.columns if c not in SITE_COLUMNS]]
    table = add_physical_columns(table, pixel_nm)
    _write_table(table, path)
    return [str(path)]
