"""Formats read through rosettasciio (the ``io`` extra): HyperSpy ``.hspy``, DigitalMicrograph
``.dm3`` / ``.dm4``, EMD, TIA ``.ser``, MRC. Signals become channels named by their titles,
calibrated from their signal axes; large files are read lazily and reopened per process
(:func:`_file_backed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import limits
from .lazy import is_large as _is_large
from .lazy import open_lazy
from .movie import Movie, make_movies


def read_hspy(path: Path) -> list[Movie]:
    from rsciio.hspy import file_reader

    limits.check_h5(path)
    return _from_rsciio(path, file_reader(str(path), lazy=_is_large(path)), fmt="hspy", module="hspy")


def rsciio_reader(module: str, fmt: str) -> Callable[[Path], list[Movie]]:
    def read(path: Path) -> list[Movie]:
        import importlib

        reader = importlib.import_module(f"rsciio.{module}").file_reader
        limits.check_rsciio(path, module)
        return _from_rsciio(path, reader(str(path), lazy=_is_large(path)), fmt=fmt, module=module)

    read.__doc__ = f"Read {fmt} files through rosettasciio (``rsciio.{module}``)."
    return read


def _from_rsciio(path: Path, signals: list[dict], fmt: str, module: str = "") -> list[Movie]:
    """rosettasciio signals → channels named by their titles (EMD detectors: HAADF, BF …),
    calibrated from their signal axes. Signals of another frame size are left out with a note."""
    images = [s for s in signals if np.ndim(s["data"]) >= 2]
    if not images:
        return []
    movies: list[Movie] = []
    titles = []
    for k, s in enumerate(images):
        title = str((s.get("metadata", {}).get("General", {}) or {}).get("title") or "").strip()
        titles.append(title or f"signal {k}")
    if len(set(titles)) < len(titles):
        titles = [f"{t} {k}" if titles.count(t) > 1 else t for k, t in enumerate(titles)]
    for s, title in zip(images, titles):
        axes = s.get("axes", [])
        signal_axes = [a for a in axes if not a.get("navigate", False)] or axes
        pixel_size, unit = None, None
        if len(signal_axes) >= 2:
            pixel_size = (float(signal_axes[-2].get("scale", 1.0)), float(signal_axes[-1].get("scale", 1.0)))
            unit = signal_axes[-1].get("units")
        nav = [a for a in axes if a.get("navigate", False)]
        interval, frame_unit = None, ""
        if len(nav) == 1 and str(nav[0].get("units", "")).strip() in ("s", "ms"):
            interval, frame_unit = float(nav[0].get("scale", 1.0)), str(nav[0]["units"]).strip()
        value_unit = (s.get("metadata", {}).get("Signal", {}) or {}).get("quantity")
        data = s["data"]
        if hasattr(data, "dask"):
            data = _file_backed(path, data, title, f"{module}:{images.index(s)}")
        movies += make_movies(
            [(title if len(images) > 1 else None, data)], path, fmt=fmt,
            pixel_size=pixel_size, pixel_unit=unit, frame_interval=interval, frame_unit=frame_unit,
            calibration=f"the {fmt} signal axes", value_units=[value_unit],
        )
    # all channels of one file share one calibration and frame size
    first = movies[0]
    kept = [m for m in movies if m.data.shape[1:] == first.data.shape[1:]]
    for m in kept[1:]:
        if m.units[1:] == ("pixel", "pixel") and first.units[1] != "pixel":
            m.scale, m.units = (m.scale[0],) + first.scale[1:], (m.units[0],) + first.units[1:]
    if len(kept) < len(movies):
        skipped = [m.channel or m.name for m in movies if m not in kept]
        first.metadata.setdefault("notes", []).append(f"left out signals of another frame size: {', '.join(skipped)}")
    return kept


def _file_backed(path: Path, data: Any, title: str, signal: str) -> Any:
    """rosettasciio's lazy array re-opened through :mod:`.lazy`, so it pickles (worker processes,
    clusters) without its file handles or memory maps. HDF5-based files (hspy, EMD): the dataset of
    the same shape (or reversed shape, as EMD stores it) whose path names the signal's title, or the
    only such dataset, read one frame per chunk; otherwise (or when frame 0 differs) rosettasciio
    reopens the file lazily in each process that reads (``signal`` = ``module:index``)."""
    from .lazy import FileArray, lazy_array

    def reopened() -> Any:
        return lazy_array(FileArray(path, "rsciio", signal, data.shape, data.dtype))

    with open(path, "rb") as f:
        if f.read(8) != b"\x89HDF\r\n\x1a\n":
            return reopened()
    import h5py

    from .formats import _datasets

    shape = tuple(int(s) for s in data.shape)
    with h5py.File(path, "r") as f:
        found = [(d.name, tuple(d.shape) != shape) for d in _datasets(f)
                 if tuple(d.shape) in (shape, shape[::-1]) and d.dtype == data.dtype]
    named = [c for c in found if f"/{title}/" in c[0]]
    pick = named[0] if len(named) == 1 else (found[0] if len(found) == 1 else None)
    if pick is None:
        return reopened()
    backed = open_lazy(path, "h5", pick[0], reverse=pick[1])
    first = (0,) * (len(shape) - 2)
    if not np.array_equal(np.asarray(backed[first]), np.asarray(data[first]), equal_nan=True):
        return reopened()
    return backed
