"""Movies: what every reader returns, and the one entry point ``read_movie``.

A movie is a ``(T, Y, X)`` float32 array (numpy, or dask for files larger than
:data:`LAZY_BYTES`) with its pixel size. A single image becomes ``T = 1``.
Multi-channel files (e.g. PFM height / amplitude / phase) become one movie per
channel, named after the channel.

RGB rule: an RGB(A) render (last axis of length 3 or 4 with an 8- or 16-bit
integer type, or a TIFF marked RGB) is converted to grey with the ITU-R BT.601
luma weights ``0.299 R + 0.587 G + 0.114 B``; alpha is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: files larger than this open lazily (memory map or dask)
LAZY_BYTES = 1 << 30

AXIS_LABELS = ("t", "y", "x")


class UnreadableFile(ValueError):
    """A file napari-rvae cannot turn into a movie; the message is one line for the user."""

LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_UNIT_ALIASES = {
    "a": "angstrom",
    "å": "angstrom",
    "Å": "angstrom",
    "ang": "angstrom",
    "angstrom": "angstrom",
    "nm": "nm",
    "um": "µm",
    "µm": "µm",
    "micron": "µm",
    "mm": "mm",
    "m": "m",
    "pm": "pm",
    "px": "pixel",
    "pixel": "pixel",
    "pixels": "pixel",
    "s": "s",
    "ms": "ms",
    "sec": "s",
}


@dataclass
class Movie:
    """A ``(T, Y, X)`` float32 movie with its calibration.

    Attributes
    ----------
    data : (T, Y, X) float32 array (numpy or dask)
    name : str
        Layer name: the file stem, plus the channel name for multi-channel files.
    scale : (3,) tuple of float
        Frame interval (1 when unknown) and pixel size along y and x.
    units : (3,) tuple of str
        Units of ``scale`` ("" for frames of unknown interval, "pixel" when the
        file carries no pixel size).
    metadata : dict
        What the file says about itself (source, format, original units, notes).
    """

    data: Any
    name: str
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    units: tuple[str, str, str] = ("", "pixel", "pixel")
    metadata: dict = field(default_factory=dict)

    axis_labels = AXIS_LABELS

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def lazy(self) -> bool:
        return not isinstance(self.data, np.ndarray)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as an in-memory float32 ``(Y, X)`` array."""
        return np.asarray(self.data[t], dtype=np.float32)

    def layer_kwargs(self) -> dict:
        """Keyword arguments for ``napari.layers.Image`` / ``viewer.add_image``."""
        return {
            "name": self.name,
            "scale": tuple(float(s) for s in self.scale),
            "units": tuple(self.units),
            "axis_labels": AXIS_LABELS,
            "metadata": dict(self.metadata),
        }


def normalise_unit(unit: Any) -> str:
    """Map a file's unit string to one napari (pint) understands; unknown → ``"pixel"``."""
    if unit is None:
        return "pixel"
    text = str(unit).strip()
    if not text or text.startswith("<") or text.lower() in ("none", "undefined", "t.b.d."):
        return "pixel"
    return _UNIT_ALIASES.get(text, _UNIT_ALIASES.get(text.lower(), text if _is_pint_unit(text) else "pixel"))


def _is_pint_unit(text: str) -> bool:
    try:
        import pint

        unit = pint.get_application_registry().parse_units(text)
    except Exception:
        return False
    return unit.dimensionality == pint.get_application_registry().parse_units("m").dimensionality


def rgb_to_grey(data: np.ndarray) -> np.ndarray:
    """``(..., 3|4)`` RGB(A) → ``(...)`` grey by the BT.601 luma rule (alpha dropped)."""
    rgb = np.asarray(data)[..., :3].astype(np.float32)
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    return rgb @ w


def looks_rgb(data: Any) -> bool:
    """True for an 8/16-bit integer array whose last axis has length 3 or 4."""
    return data.ndim >= 3 and data.shape[-1] in (3, 4) and np.dtype(data.dtype).kind in "ui" and data.itemsize <= 2


def split_channels_last(channels: Sequence[tuple[str | None, Any]], rgb: bool | None) -> list[tuple[str | None, Any]]:
    """A ``(Y, X, C)`` array with ``C`` of 2–4 that is not an integer RGB render is ``C``
    channels, not ``Y`` frames only ``C`` pixels wide (e.g. a float RGBA or stacked PFM channels)."""
    out: list[tuple[str | None, Any]] = []
    for name, array in channels:
        shape = tuple(getattr(array, "shape", ()))
        if (len(shape) == 3 and 2 <= shape[-1] <= 4 and min(shape[:2]) >= 16 and not rgb
                and not (rgb is None and looks_rgb(array))):
            prefix = f"{name} " if name else ""
            out += [(f"{prefix}channel {c}", array[..., c]) for c in range(shape[-1])]
        else:
            out.append((name, array))
    return out


def as_movie_array(data: Any, *, where: str, rgb: bool | None = None) -> tuple[Any, list[str]]:
    """Bring an array to ``(T, Y, X)`` float32; return it with notes on what changed.

    Accepts ``(Y, X)``, ``(T, Y, X)``, RGB(A) renders ``(Y, X, 3|4)`` /
    ``(T, Y, X, 3|4)``, and leading singleton axes. Raises ``ValueError`` for
    empty, non-numeric or higher-dimensional data.
    """
    notes: list[str] = []
    dtype = np.dtype(data.dtype)
    if data.size == 0:
        raise UnreadableFile(f"{where}: the array is empty (shape {tuple(data.shape)})")
    if dtype.kind not in "uifcb":
        raise UnreadableFile(f"{where}: data of type {dtype} is not a numeric image")
    if rgb is None:
        rgb = looks_rgb(data)
    if rgb:
        data = rgb_to_grey(np.asarray(data))
        notes.append("RGB converted to grey (0.299 R + 0.587 G + 0.114 B)")
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise UnreadableFile(
            f"{where}: expected an image (Y, X) or a movie (T, Y, X), found {data.ndim} dimensions "
            f"{tuple(data.shape)}; save one channel or series per file"
        )
    if min(data.shape[1:]) < 2:
        raise UnreadableFile(f"{where}: frames of shape {tuple(data.shape[1:])} are too small to be images")
    if dtype.kind == "c":
        data = abs(data)
        notes.append("complex data: magnitude taken")
    if isinstance(data, np.ndarray):
        if data.dtype != np.float32:
            data = data.astype(np.float32)
    elif np.dtype(data.dtype) != np.float32:
        data = data.astype(np.float32)
    return data, notes


def lazy_array(array: Any) -> Any:
    """Wrap an array-like (memmap, h5py dataset, zarr) as a dask array chunked per frame."""
    import dask.array as da

    chunks = (1,) + tuple(array.shape[1:]) if array.ndim >= 3 else array.shape
    return da.from_array(array, chunks=chunks)


def make_movies(
    channels: Sequence[tuple[str | None, Any]],
    path: Path,
    *,
    fmt: str,
    pixel_size: Sequence[float] | None = None,
    pixel_unit: Any = None,
    frame_interval: float | None = None,
    frame_unit: str = "",
    metadata: dict | None = None,
    rgb: bool | None = None,
) -> list[Movie]:
    """Build one :class:`Movie` per ``(channel name, array)`` with shared calibration."""
    movies = []
    unit = normalise_unit(pixel_unit)
    extra_notes = []
    if pixel_size is not None and unit == "pixel" and any(float(s) != 1.0 for s in pixel_size):
        extra_notes.append(f"the file gives a pixel size {tuple(float(s) for s in pixel_size)} without a unit; shown in pixels")
    if pixel_size is None or unit == "pixel":
        py = px = 1.0
        unit = "pixel"
    else:
        py, px = (float(abs(s)) or 1.0 for s in pixel_size)
    split = split_channels_last(channels, rgb)
    if len(split) > len(channels):
        extra_notes.append("the last axis was read as channels (an image of a few channels, not frames a few pixels wide)")
    channels = split
    for channel, array in channels:
        where = f"{path.name}" + (f" [{channel}]" if channel else "")
        data, notes = as_movie_array(array, where=where, rgb=rgb)
        notes += extra_notes
        meta = {"source": str(path), "format": fmt, "original_unit": str(pixel_unit) if pixel_unit else None}
        if channel:
            meta["channel"] = channel
        if notes:
            meta["notes"] = notes
        meta.update(metadata or {})
        name = path.stem + (f" {channel}" if channel else "")
        dt = float(frame_interval) if frame_interval else 1.0
        movies.append(
            Movie(
                data=data,
                name=name,
                scale=(dt, py, px),
                units=(frame_unit if frame_interval else "", unit, unit),
                metadata=meta,
            )
        )
    return movies


def read_movie(path: str | os.PathLike) -> list[Movie]:
    """Read a movie / image file into one :class:`Movie` per channel.

    Formats: ``.npy``, ``.npz``, ``.tif/.tiff``, ``.h5/.hdf5/.hspy`` (plain
    datasets, HyperSpy, pyNSID/sidpy), ``.dm3/.dm4/.emd/.ser/.mrc`` (via
    rosettasciio, the ``io`` extra) and ``.ibw`` (via igor2).

    Raises
    ------
    ValueError
        One clear line for a missing, empty, corrupt or unsupported file.
    """
    from .formats import READERS

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        known = " ".join(sorted(READERS))
        raise UnreadableFile(f"{path.name}: unsupported file type {suffix or '(none)'!r}; napari-rvae reads {known}")
    if not path.exists():
        raise UnreadableFile(f"{path}: file not found")
    if path.is_dir():
        raise UnreadableFile(f"{path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise UnreadableFile(f"{path.name}: the file is empty (0 bytes)")
    reader = READERS[suffix]
    try:
        movies = reader(path)
    except UnreadableFile:
        raise
    except ImportError as err:
        raise UnreadableFile(
            f"{path.name}: reading {suffix} files needs an optional package ({err.name or err}); "
            "install it with: pip install 'napari-rvae[io]'"
        ) from None
    except Exception as err:  # third-party readers raise anything on corrupt files
        detail = " ".join(str(err).split())[:300]
        raise UnreadableFile(f"{path.name}: cannot read this {suffix} file; it looks corrupt ({type(err).__name__}: {detail})") from None
    if not movies:
        raise UnreadableFile(f"{path.name}: no image data found in the file")
    return movies


def describe_movie(movie: Movie) -> str:
    """A few lines: shape, dtype, pixel size, frames, value range."""
    data = movie.data
    if movie.lazy:
        sample = movie.frame(0)
        rng_note = " (frame 0; the file is opened lazily)"
    else:
        sample = data
        rng_note = ""
    finite = np.isfinite(sample)
    if finite.any():
        lo, hi = float(np.min(sample[finite])), float(np.max(sample[finite]))
        value_range = f"{lo:.6g} … {hi:.6g}{rng_note}"
    else:
        value_range = "no finite values"
    nan_count = int(sample.size - finite.sum())
    t, y, x = movie.scale
    tu, yu, xu = movie.units
    lines = [
        f"{movie.name}",
        f"  shape (t, y, x): {tuple(int(s) for s in data.shape)}   dtype: {data.dtype}",
        f"  frames: {movie.n_frames}   frame interval: {t:g} {tu or 'frame'}",
        f"  pixel size: {y:g} × {x:g} {yu}" + ("" if xu == yu else f" / {xu}"),
        f"  value range: {value_range}" + (f"   NaN pixels: {nan_count}" if nan_count else ""),
    ]
    for note in movie.metadata.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def describe_file(path: str | os.PathLike) -> str:
    """Describe every channel of a file (used by ``napari-rvae info``)."""
    path = Path(path)
    movies = read_movie(path)
    head = f"{path} ({movies[0].metadata.get('format', path.suffix)}, {len(movies)} channel(s))"
    return "\n".join([head] + [describe_movie(m) for m in movies])
