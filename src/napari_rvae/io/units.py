"""Units of a movie's calibration: what a file says, what napari shows, and physical columns.

Files store pixel sizes in metres (Igor, pyNSID), nanometres or ångström (DM, EMD, MRC),
micrometres (TIFF) or nothing at all. Every movie is shown in **nm**, or in **µm** when the
scanned field is 1 µm or wider (PFM / AFM scans), so all layers of one file share units and a
scale bar reads naturally. Lengths in results (sites, curvature, domain areas) are always given
in nm beside the pixel values.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

#: length units understood, in nanometres
NM_PER_UNIT = {"m": 1e9, "mm": 1e6, "µm": 1e3, "nm": 1.0, "angstrom": 0.1, "pm": 1e-3}

_UNIT_ALIASES = {
    "a": "angstrom",
    "å": "angstrom",
    "ang": "angstrom",
    "angstrom": "angstrom",
    "angstroms": "angstrom",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "um": "µm",
    "µm": "µm",
    "μm": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "\\u00b5m": "µm",
    "mm": "mm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "pm": "pm",
    "px": "pixel",
    "pixel": "pixel",
    "pixels": "pixel",
    "s": "s",
    "ms": "ms",
    "sec": "s",
}


def normalise_unit(unit: Any) -> str:
    """Map a file's unit string to a canonical length unit; unknown or non-length → ``"pixel"``.

    Time units (``s``, ``ms``) are kept for frame intervals.
    """
    if unit is None:
        return "pixel"
    if isinstance(unit, bytes):
        unit = unit.decode("latin-1", "replace")
    text = str(unit).strip().strip("\x00")
    if not text or text.startswith("<") or text.lower() in ("none", "undefined", "t.b.d.", "unknown"):
        return "pixel"
    known = _UNIT_ALIASES.get(text, _UNIT_ALIASES.get(text.lower()))
    if known is not None:
        return known
    return text if _is_pint_length(text) else "pixel"


def _is_pint_length(text: str) -> bool:
    try:
        import pint

        registry = pint.get_application_registry()
        unit = registry.parse_units(text)
    except Exception:
        return False
    return unit.dimensionality == registry.parse_units("m").dimensionality


def nm_per(unit: str) -> float | None:
    """Nanometres in one ``unit`` (a canonical length unit or any pint length); ``None`` if not a length."""
    unit = normalise_unit(unit)
    if unit in NM_PER_UNIT:
        return NM_PER_UNIT[unit]
    if unit == "pixel":
        return None
    try:
        import pint

        registry = pint.get_application_registry()
        return float(registry.Quantity(1.0, unit).to("nm").magnitude)
    except Exception:
        return None


def display_calibration(pixel_size: Sequence[float], unit: Any, shape: Sequence[int]) -> tuple[tuple[float, float], str]:
    """Pixel size ``(y, x)`` in the unit napari shows: nm, or µm for fields of 1 µm or wider.

    ``shape`` is the frame shape ``(Y, X)`` in pixels. A unit that is not a length gives
    ``((1, 1), "pixel")``.
    """
    factor = nm_per(unit)
    if factor is None:
        return (1.0, 1.0), "pixel"
    py, px = (abs(float(s)) * factor for s in pixel_size)
    if not (np.isfinite(py) and np.isfinite(px) and py > 0 and px > 0):
        return (1.0, 1.0), "pixel"
    field = max(py * shape[0], px * shape[1])
    if field >= 1000.0:
        return (py / 1e3, px / 1e3), "µm"
    return (py, px), "nm"


def pixel_size_nm(scale: Sequence[float], units: Sequence[str]) -> tuple[float, float] | None:
    """``(y, x)`` pixel size in nm from a movie's ``scale`` / ``units`` (last two axes), or ``None``."""
    factor_y, factor_x = nm_per(units[-2]), nm_per(units[-1])
    if factor_y is None or factor_x is None:
        return None
    return float(scale[-2]) * factor_y, float(scale[-1]) * factor_x


def add_physical_columns(sites: pd.DataFrame, pixel_nm: tuple[float, float] | None) -> pd.DataFrame:
    """Add ``y_nm`` / ``x_nm`` (and ``curvature_per_nm`` where a ``curvature`` column in 1/pixel
    exists) beside the pixel columns of a sites table; unchanged when ``pixel_nm`` is ``None``."""
    if pixel_nm is None or not len(sites.columns):
        return sites
    py, px = pixel_nm
    out = sites.copy()
    if "y" in out and "x" in out:
        out["y_nm"], out["x_nm"] = out["y"] * py, out["x"] * px
    if "curvature" in out:
        out["curvature_per_nm"] = out["curvature"] / np.sqrt(py * px)
    out.attrs = dict(sites.attrs)
    out.attrs["pixel_size_nm"] = [py, px]
    return out


def table_pixel_size_nm(sites: pd.DataFrame) -> tuple[float, float] | None:
    """``(y, x)`` pixel size in nm that a sites table carries: ``attrs["pixel_size_nm"]`` or the
    ratio of its ``y_nm`` / ``x_nm`` columns to ``y`` / ``x`` (median over sites away from 0);
    ``None`` when it has neither."""
    stored = sites.attrs.get("pixel_size_nm")
    if stored is not None and len(stored) == 2:
        return float(stored[0]), float(stored[1])
    if not {"y", "x", "y_nm", "x_nm"} <= set(sites.columns):
        return None
    sizes = []
    for pixels, nm in (("y", "y_nm"), ("x", "x_nm")):
        p = sites[pixels].to_numpy(dtype=np.float64)
        n = sites[nm].to_numpy(dtype=np.float64)
        ok = np.isfinite(p) & np.isfinite(n) & (np.abs(p) > 0.5)
        ratio = float(np.median(n[ok] / p[ok])) if ok.any() else float("nan")
        if not (np.isfinite(ratio) and ratio > 0):
            return None
        sizes.append(ratio)
    return sizes[0], sizes[1]
