"""Pixel size from what files write about themselves: scan sizes in metadata and notes.

Readers first use a format's own pixel size (pyNSID dimension scales, Igor ``sfA``, DM /
EMD / SER / MRC axes, TIFF resolution). When that is missing or not a length, the pixel
size comes from the scan size the instrument wrote in the metadata:

* Asylum / Igor notes and the ``original_metadata`` pyNSID keeps: ``ScanSize``,
  ``FastScanSize`` / ``SlowScanSize`` (metres);
* HDF5 attributes and JSON ``metadata`` strings: ``scan size``, ``scan_size``,
  ``field of view``, ``fov``, ``image size`` (a number, a ``[y, x]`` pair, or text such as
  ``"2 nm"``; a unit may also sit in the key, ``scan size (nm)``, or beside it,
  ``scan size units``), and ``pixel size`` / ``pixel_size`` / ``scale``.

A number without a unit below 1e-3 is read as metres (Asylum writes ``4e-06``), otherwise
as nm, and the reader notes the assumption.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

import numpy as np

_FIELD_KEYS = ("scansize", "fieldofview", "fov", "imagesize", "framesize")
_PIXEL_KEYS = ("pixelsize", "pixelscale", "pxsize", "pixelspacing", "scale", "samplingrate")
_FAST_SLOW = ("fastscansize", "slowscansize")
_NUMBER_UNIT = re.compile(r"^\s*([-+0-9.eE]+)\s*([A-Za-zµμÅ]*)\s*$")


def _key(text: str) -> tuple[str, str | None]:
    """``"Scan size (nm)"`` → ``("scansize", "nm")``: letters only, lower case, unit in brackets apart."""
    unit = None
    match = re.search(r"[\(\[]\s*([A-Za-zµμÅ]+)\s*[\)\]]", text)
    if match:
        unit = match.group(1)
        text = text[: match.start()] + text[match.end():]
    return re.sub(r"[^a-z]", "", text.lower()), unit


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        return _as_text(value.ravel()[0])
    return value


def _numbers(value: Any) -> tuple[list[float], str | None]:
    """A metadata value as numbers and an optional unit written in it."""
    value = _as_text(value)
    if isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        if match:
            try:
                return [float(match.group(1))], match.group(2) or None
            except ValueError:
                return [], None
        parts = re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", value)
        unit = re.findall(r"[A-Za-zµμÅ]+\s*$", value)
        return [float(p) for p in parts[:2]], (unit[0].strip() if unit else None)
    try:
        array = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    except (TypeError, ValueError):
        return [], None
    return [float(v) for v in array[:2] if np.isfinite(v)], None


def flatten(metadata: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts (and JSON strings holding dicts) → one flat ``{key: value}`` (last key wins)."""
    out: dict[str, Any] = {}
    metadata = _as_text(metadata)
    if isinstance(metadata, str) and metadata.strip().startswith("{"):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return out
    if isinstance(metadata, Mapping):
        for k, v in metadata.items():
            v = _as_text(v)
            if isinstance(v, Mapping) or (isinstance(v, str) and v.strip().startswith("{")):
                out.update(flatten(v, f"{prefix}{k}."))
            else:
                out[str(k)] = v
    return out


def parse_note(note: str) -> dict[str, str]:
    """An Igor / Asylum wave note (``Key: value`` lines) as a dict."""
    out = {}
    for line in note.replace("\r", "\n").split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def pixel_size_from_metadata(metadata: Mapping[str, Any], shape: tuple[int, int]) -> tuple[tuple[float, float], str, str] | None:
    """``((y, x) pixel size, unit, where)`` from scan-size keys of ``metadata``, or ``None``.

    ``shape`` is the frame ``(Y, X)`` in pixels. Asylum's scan sizes span the first to the
    last pixel centre, so the pixel size is ``size / (N - 1)``, as Igor's own scaling.
    """
    flat = {}
    units_beside: dict[str, str] = {}
    for raw_key, value in flatten(metadata).items():
        key, unit = _key(raw_key.rsplit(".", 1)[-1])
        if key.endswith("units") or key.endswith("unit"):
            text = _as_text(value)
            if isinstance(text, str):
                units_beside[key.removesuffix("units").removesuffix("unit")] = text
            continue
        flat.setdefault(key, (value, unit, raw_key))
    ny, nx = shape
    fast, slow = flat.get("fastscansize"), flat.get("slowscansize")
    if fast and slow:
        (f_val, f_unit), (s_val, s_unit) = _numbers(fast[0]), _numbers(slow[0])
        if f_val and s_val and f_val[0] > 0 and s_val[0] > 0:
            unit, note = _unit_for(f_val[0], fast[1] or f_unit or units_beside.get("fastscansize"))
            return (s_val[0] / max(ny - 1, 1), f_val[0] / max(nx - 1, 1)), unit, f"FastScanSize / SlowScanSize{note}"
    for wanted, per_pixel in ((_FIELD_KEYS, False), (_PIXEL_KEYS, True)):
        for key in wanted:
            if key not in flat:
                continue
            value, key_unit, raw_key = flat[key]
            numbers, text_unit = _numbers(value)
            numbers = [v for v in numbers if v > 0]
            if not numbers:
                continue
            sy, sx = (numbers[0], numbers[1]) if len(numbers) >= 2 else (numbers[0], numbers[0])
            unit, note = _unit_for(sy, key_unit or text_unit or units_beside.get(key))
            if per_pixel:
                return (sy, sx), unit, f"'{raw_key}' in the metadata{note}"
            asylum = key == "scansize" and unit == "m"
            dy, dx = (ny - 1, nx - 1) if asylum else (ny, nx)
            return (sy / max(dy, 1), sx / max(dx, 1)), unit, f"'{raw_key}' in the metadata{note}"
    return None


def _unit_for(value: float, unit: str | None) -> tuple[str, str]:
    if unit:
        return unit, ""
    if value < 1e-3:
        return "m", " (no unit given; read as metres)"
    return "nm", " (no unit given; read as nm)"
