"""Turning a feature column into colours, the same way in the plot and in the viewer.

Angles are wrapped to (−π, π] and drawn with a cyclic colormap so that
−π and π get the same colour; other numeric columns use limits computed
once over the whole column (all frames), so a value has the same colour in
every frame; small-integer or text columns (class, cluster, kind) get a
categorical palette.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from napari.utils.colormaps import ensure_colormap

CYCLIC_COLORMAP = "twilight_shifted"
DEFAULT_COLORMAP = "viridis"
# a 10-colour categorical palette (tab10-like hues); noise / -1 is grey
PALETTE = np.array(
    [
        [0.12, 0.47, 0.71], [1.00, 0.50, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16], [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.50, 0.50, 0.50], [0.74, 0.74, 0.13], [0.09, 0.75, 0.81],
    ],
    dtype=np.float32,
)
MAX_CATEGORIES = 20


def is_angle_column(name: str) -> bool:
    """Angle-like columns are periodic (radians)."""
    return name == "angle" or name.startswith("angle_")


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap radians into [−π, π)."""
    return (np.asarray(angle, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def plot_values(table: pd.DataFrame, column: str) -> np.ndarray:
    """The values of ``column`` as float64 for plotting (angles wrapped, text → codes)."""
    if column not in table.columns:
        raise ValueError(f"column {column!r} is not in the table; choose one of {list(table.columns)}")
    values = table[column]
    if is_angle_column(column):
        return wrap_angle(values.to_numpy(dtype=np.float64))
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64)
    return pd.Categorical(values).codes.astype(np.float64)


def numeric_columns(table: pd.DataFrame) -> list[str]:
    """Columns that can be an axis: numeric or boolean."""
    return [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])]


@dataclass
class ColourScale:
    """How a column maps to colours: ``kind`` is 'cyclic', 'continuous' or 'categorical'."""

    column: str
    kind: str
    colormap: str
    limits: tuple[float, float]
    categories: list | None = None
    #: an angle of an n-fold motif means something modulo 2π/n: the colour goes round n times per turn
    symmetry: int = 1


def colour_scale(table: pd.DataFrame, column: str, colormap: str | None = None,
                 limits: tuple[float, float] | None = None, percentiles=(1.0, 99.0), symmetry: int = 1) -> ColourScale:
    """Decide how to colour ``column``: kind, colormap and limits shared by all rows (all frames).

    ``symmetry`` n > 1 colours an angle modulo 2π/n (a honeycomb's atom sites are 3-fold: its two
    sublattices are then two colours, not six)."""
    if column not in table.columns:
        raise ValueError(f"colour column {column!r} is not in the table; choose one of {list(table.columns)}")
    values = table[column]
    if is_angle_column(column):
        return ColourScale(column, "cyclic", colormap or CYCLIC_COLORMAP, limits or (-np.pi, np.pi),
                           symmetry=max(1, int(symmetry)))
    numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    unique = pd.unique(values.dropna())
    integer_like = numeric and len(unique) and np.all(np.mod(np.asarray(unique, dtype=np.float64), 1) == 0)
    if (not numeric or (integer_like and len(unique) <= MAX_CATEGORIES and column != "frame")) and limits is None:
        cats = sorted(unique.tolist(), key=lambda v: (str(type(v)), v))
        return ColourScale(column, "categorical", "palette", (0, max(len(cats) - 1, 1)), cats)
    if limits is None:
        finite = values.to_numpy(dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            limits = (0.0, 1.0)
        else:
            lo, hi = np.percentile(finite, percentiles)
            limits = (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)
    return ColourScale(column, "continuous", colormap or DEFAULT_COLORMAP, tuple(map(float, limits)))


def level_indices(table: pd.DataFrame, scale: ColourScale, levels: int = 256) -> np.ndarray:
    """Each row's index into a ``levels``-entry lookup table (int32, shape (N,)).

    For categorical scales the index is the category number; NaN rows get
    the last level (drawn grey by :func:`lookup_table`).
    """
    values = table[scale.column]
    if scale.kind == "categorical":
        codes = pd.Categorical(values, categories=scale.categories).codes.astype(np.int32)
        codes[codes < 0] = levels - 1
        return codes
    x = values.to_numpy(dtype=np.float64)
    if scale.kind == "cyclic":
        x = wrap_angle(scale.symmetry * x)
    lo, hi = scale.limits
    finite = np.isfinite(x)
    t = np.where(finite, (np.where(finite, x, lo) - lo) / (hi - lo), 0.0)
    idx = np.clip(np.round(t * (levels - 2)), 0, levels - 2).astype(np.int32)
    idx[~finite] = levels - 1
    return idx


def lookup_table(scale: ColourScale, levels: int = 256) -> np.ndarray:
    """RGBA lookup table (levels, 4) float32 for :func:`level_indices`; the last entry is grey (missing)."""
    lut = np.zeros((levels, 4), dtype=np.float32)
    if scale.kind == "categorical":
        n = len(scale.categories or [])
        lut[:, :3] = 0.6
        for i in range(min(n, levels - 1)):
            lut[i, :3] = PALETTE[i % len(PALETTE)]
    else:
        cmap = ensure_colormap(scale.colormap)
        lut[: levels - 1] = np.asarray(cmap.map(np.linspace(0, 1, levels - 1)), dtype=np.float32)
        lut[levels - 1, :3] = 0.6
    lut[:, 3] = 1.0
    return lut


def row_colours(table: pd.DataFrame, scale: ColourScale) -> np.ndarray:
    """RGBA colour of every row, shape (N, 4) float32."""
    return lookup_table(scale)[level_indices(table, scale)]


def colour_bar_image(scale: ColourScale, width: int = 256, height: int = 12) -> np.ndarray:
    """An RGBA uint8 image (height, width, 4) of the colour bar, low values on the left."""
    lut = lookup_table(scale, levels=width + 1)[:width]
    if scale.kind == "categorical":
        n = max(len(scale.categories or []), 1)
        lut = lookup_table(scale)[np.minimum((np.arange(width) * n) // width, 254)]
    return np.ascontiguousarray(np.broadcast_to((lut * 255).astype(np.uint8), (height, width, 4)))


def cyclic_labels(scale: ColourScale) -> tuple[str, str]:
    """The colour bar's ends of a cyclic scale: ``−π, π``, or ``−60°, 60°`` for an angle modulo 120°."""
    if scale.symmetry > 1:
        half = 180 / scale.symmetry
        return f"−{half:g}°", f"{half:g}°"
    return "−π", "π"
