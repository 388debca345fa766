"""Movies: what every reader returns, and the one entry point ``read_movie``.

A movie is a ``(T, Y, X)`` float32 array (numpy, or dask for files larger than
:data:`LAZY_BYTES`) with its calibration. A single image becomes ``T = 1``.
Channels (PFM height / amplitude / phase, ADF / ABF) are never frames: a file with
several channels becomes one movie per channel, named after the channel's own name in
the file. All channels of one file share one calibration, shown in nm (µm for fields of
1 µm or more, see :mod:`.units`).

RGB renders (last axis of length 3 or 4 with an 8- or 16-bit integer type, or a TIFF
marked RGB) become intensity: grey renders as their grey, false-colour renders by
inverting their colormap, others by luma (:mod:`.colour`); a note says which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .colour import LUMA_WEIGHTS, luma, rgb_to_intensity
from .lazy import lazy_array, lazy_bytes  # noqa: F401  (lazy_array re-exported for the readers)
from .units import display_calibration, normalise_unit, pixel_size_nm

#: files larger than this open lazily (dask, one frame per chunk); ``NAPARI_RVAE_LAZY_BYTES``
#: overrides it (see :mod:`.lazy`)
LAZY_BYTES = 1 << 30

AXIS_LABELS = ("t", "y", "x")

__all__ = ["AXIS_LABELS", "LAZY_BYTES", "LUMA_WEIGHTS", "Movie", "UnreadableFile", "normalise_unit", "read_movie"]


class UnreadableFile(ValueError):
    """A file napari-rvae cannot turn into a movie; the message is one line for the user."""


@dataclass
class Movie:
    """A ``(T, Y, X)`` float32 movie of one channel with its calibration.

    Attributes
    ----------
    data : (T, Y, X) float32 array (numpy or dask)
    name : str
        Layer name: the file stem, plus the channel name for multi-channel files.
    scale : (3,) tuple of float
        Frame interval (1 when unknown) and pixel size along y and x.
    units : (3,) tuple of str
        Units of ``scale`` ("" for frames of unknown interval; "nm" or "µm" for calibrated
        pixels, "pixel" when the file carries no pixel size).
    metadata : dict
        What the file says about itself: ``source``, ``format``, ``channel``,
        ``value_unit`` (e.g. "deg" for a phase), ``calibration`` (where the pixel size came
        from), ``notes`` (what the reader changed), and for sequences ``files`` and
        ``drift_shifts``.
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

    @property
    def channel(self) -> str | None:
        """The channel's name in the file (``None`` for a single-channel file)."""
        return self.metadata.get("channel")

    @property
    def pixel_size_nm(self) -> tuple[float, float] | None:
        """``(y, x)`` pixel size in nm, or ``None`` when the file gives no length calibration."""
        return pixel_size_nm(self.scale, self.units)

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


def rgb_to_grey(data: np.ndarray) -> np.ndarray:
    """``(..., 3|4)`` RGB(A) → ``(...)`` grey by the BT.601 luma rule (alpha dropped)."""
    return luma(data)


def looks_rgb(data: Any) -> bool:
    """True for an 8/16-bit integer array whose last axis has length 3 or 4."""
    return data.ndim >= 3 and data.shape[-1] in (3, 4) and np.dtype(data.dtype).kind in "ui" and data.itemsize <= 2


def squeeze_singletons(data: Any, notes: list[str]) -> Any:
    """Drop axes of length 1 (keeping two image axes), with a note: ``(1, H, W, 1)`` → ``(H, W)``."""
    shape = tuple(int(s) for s in data.shape)
    if data.ndim <= 2 or 1 not in shape:
        return data
    keep = [i for i, s in enumerate(shape) if s != 1]
    while len(keep) < 2:  # a (1, 1, N) line keeps its trailing axes and is refused later
        keep = sorted(set(keep) | {max(set(range(data.ndim)) - set(keep))})
    index = tuple(slice(None) if i in keep else 0 for i in range(data.ndim))
    squeezed = data[index]
    if squeezed.ndim == 2 and data.ndim == 3 and shape[0] == 1:
        return data  # a plain (1, Y, X) movie of one frame needs no note
    notes.append(f"singleton axes squeezed: {shape} → {tuple(int(s) for s in squeezed.shape)}")
    return squeezed


def channel_axis(shape: tuple[int, ...], n_names: int | None = None) -> int | None:
    """The axis holding channels, or ``None``.

    With ``n_names`` (the file names its channels): the axis of that length (last, first or
    second). Without: a short last axis (≤ 8, at most a quarter of the image axes) of a 3-D or
    4-D float array, as ``(Y, X, C)`` and ``(T, Y, X, C)`` files store channels.
    """
    if n_names:
        for axis in (len(shape) - 1, 0, 1):
            if 0 <= axis < len(shape) and shape[axis] == n_names and len(shape) >= 3:
                return axis
        return None
    if len(shape) in (3, 4) and shape[-1] <= 8 and shape[-1] * 4 <= min(shape[-3], shape[-2]):
        return len(shape) - 1
    return None


def split_channels(data: Any, names: Sequence[str] | None = None, *, where: str = "") -> tuple[list[tuple[str | None, Any]], list[str]]:
    """Split an array into named channels: ``([(name, array), …], notes)``.

    ``names`` (from the file) pick the channel axis by length; without names a short
    trailing axis of a non-RGB array is read as channels (named ``channel 0`` …). An array
    with no channel axis is one unnamed channel.
    """
    notes: list[str] = []
    data = squeeze_singletons(data, notes)
    names = [str(n) for n in names] if names is not None else None
    rgb = looks_rgb(data)
    axis = channel_axis(tuple(data.shape), len(names) if names else None)
    if axis is None and not rgb and names is None:
        axis = channel_axis(tuple(data.shape))
        if axis is not None:
            notes.append(f"the last axis ({data.shape[-1]}) read as channels")
    if axis is None:
        if names and len(names) > 1:
            raise UnreadableFile(f"{where}: {len(names)} channel names but no axis of that length in shape "
                                 f"{tuple(int(s) for s in data.shape)}")
        return [(names[0] if names else None, data)], notes
    labels = names or [f"channel {c}" for c in range(data.shape[axis])]
    channels = [(labels[c], np.take(data, c, axis=axis)) for c in range(data.shape[axis])]
    return channels, notes


def as_movie_array(data: Any, *, where: str, rgb: bool | None = None) -> tuple[Any, list[str]]:
    """Bring an array to ``(T, Y, X)`` float32; return it with notes on what changed.

    Accepts ``(Y, X)``, ``(T, Y, X)``, RGB(A) renders ``(Y, X, 3|4)`` /
    ``(T, Y, X, 3|4)`` (see :mod:`.colour`), and singleton axes anywhere (squeezed with a
    note). Raises ``ValueError`` for empty, non-numeric or higher-dimensional data.
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
        if isinstance(data, np.ndarray) or not hasattr(data, "map_blocks"):
            data, note = rgb_to_intensity(np.asarray(data))
        else:
            data, note = _lazy_rgb_to_intensity(data)
        notes.append(note)
    data = squeeze_singletons(data, notes)
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
    else:
        if np.dtype(data.dtype) != np.float32:
            data = data.astype(np.float32)
        if hasattr(data, "rechunk"):  # lazy: one frame per chunk, whatever the file's own chunking
            data = lazy_array(data)
    return data, notes


def _lazy_rgb_to_intensity(data: Any) -> tuple[Any, str]:
    """An RGB(A) dask movie to intensity frame by frame: the rule (grey, colormap path, luma) is
    chosen on a few evenly spaced frames (:func:`~.colour.rgb_converter`), then applied per chunk."""
    from .colour import rgb_converter

    if data.ndim >= 4 and data.shape[0] > 1:
        picks = np.unique(np.linspace(0, data.shape[0] - 1, min(4, data.shape[0])).round().astype(int))
        sample = np.concatenate([np.asarray(data[int(t)])[None] for t in picks])
    else:
        sample = np.asarray(data)
    convert, note = rgb_converter(sample)
    chunks = data.chunks[:-1]
    return data.map_blocks(convert, dtype=np.float32, drop_axis=data.ndim - 1, chunks=chunks), note


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
    value_units: Sequence[str | None] | None = None,
    calibration: str | None = None,
    notes: Sequence[str] = (),
) -> list[Movie]:
    """Build one :class:`Movie` per ``(channel name, array)`` with one shared calibration.

    ``pixel_size`` ``(y, x)`` in ``pixel_unit`` is converted to nm or µm
    (:func:`~.units.display_calibration`); ``calibration`` says where it came from (shown by
    ``info``); ``value_units`` gives each channel's value unit (e.g. "deg" for a phase).
    """
    movies = []
    unit = normalise_unit(pixel_unit)
    extra_notes = list(notes)
    if pixel_size is not None and unit == "pixel" and any(float(s) != 1.0 for s in pixel_size):
        extra_notes.append(f"the file gives a pixel size {tuple(float(s) for s in pixel_size)} without a length unit "
                           f"({pixel_unit!r}); shown in pixels")
    for index, (channel, array) in enumerate(channels):
        where = f"{path.name}" + (f" [{channel}]" if channel else "")
        data, array_notes = as_movie_array(array, where=where, rgb=rgb)
        if pixel_size is None or unit == "pixel":
            (py, px), shown = (1.0, 1.0), "pixel"
        else:
            (py, px), shown = display_calibration(pixel_size, unit, data.shape[1:])
        meta: dict[str, Any] = {"source": str(path), "format": fmt,
                                "original_unit": str(pixel_unit) if pixel_unit else None}
        if shown != "pixel":
            meta["calibration"] = calibration or "the file's pixel size"
        if channel:
            meta["channel"] = str(channel)
        if value_units is not None and index < len(value_units) and value_units[index]:
            meta["value_unit"] = str(value_units[index])
        all_notes = array_notes + extra_notes
        if all_notes:
            meta["notes"] = all_notes
        meta.update(metadata or {})
        name = path.stem + (f" {channel}" if channel else "")
        dt = float(frame_interval) if frame_interval else 1.0
        movies.append(
            Movie(
                data=data,
                name=name,
                scale=(dt, py, px),
                units=(frame_unit if frame_interval else "", shown, shown),
                metadata=meta,
            )
        )
    return movies


def read_movie(path: str | os.PathLike | Sequence[str | os.PathLike], *, register: bool = False) -> list[Movie]:
    """Read a movie file, or a sequence of files, into one :class:`Movie` per channel.

    Formats: ``.npy``, ``.npz``, ``.tif/.tiff``, ``.h5/.hdf5/.hspy`` (plain
    datasets, HyperSpy, pyNSID/sidpy), ``.dm3/.dm4/.emd/.ser/.mrc`` (via
    rosettasciio, the ``io`` extra), ``.ibw`` (via igor2) and ``.zarr`` folders (zarr
    arrays and OME-Zarr images, the ``io`` extra).

    Files larger than :func:`~.lazy.lazy_bytes` (1 GiB) open lazily: ``Movie.data`` is a
    dask array chunked one frame per chunk and nothing is read until frames are used.

    ``path`` may also be a folder, a glob pattern (``scans/PZT*.h5``) or a list of
    files: they open as one movie, one frame per file, in natural order
    (:func:`~.sequence.read_sequence`; ``register=True`` removes drift between them).

    Raises
    ------
    ValueError
        One clear line for a missing, empty, corrupt or unsupported file.
    """
    from .sequence import is_sequence, read_sequence

    if is_sequence(path):
        return read_sequence(path, register=register)
    return read_file(path)


def read_file(path: str | os.PathLike) -> list[Movie]:
    """Read one movie file into one :class:`Movie` per channel (see :func:`read_movie`)."""
    from .formats import FOLDER_FORMATS, READERS

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        known = " ".join(sorted(READERS))
        raise UnreadableFile(f"{path.name}: unsupported file type {suffix or '(none)'!r}; napari-rvae reads {known}")
    if not path.exists():
        raise UnreadableFile(f"{path}: file not found")
    folder_format = suffix in FOLDER_FORMATS
    if path.is_dir() != folder_format:
        raise UnreadableFile(f"{path}: is a folder, not a file" if path.is_dir() else
                             f"{path}: a {suffix} store is a folder, but this is a file")
    if not folder_format and path.stat().st_size == 0:
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


# channel choice and descriptions live in .channels; re-exported here for existing imports
from .channels import describe_file, describe_movie, describe_movies, find_channel, select_movie  # noqa: E402,F401
