"""Zarr stores: movies as OME-Zarr images, per-frame results beside them.

A movie is written as an OME-Zarr image (NGFF 0.4, zarr format 2, readable by ome-zarr-py,
napari-ome-zarr and Fiji's OME-Zarr readers): one multiscale level ``0`` with axes ``t``
(time), ``y``, ``x`` (space), the calibration as a ``scale`` coordinate transformation in the
NGFF unit names (``nanometer``, ``micrometer``, ``second``), chunked one frame per chunk. Per-frame
results (probability maps ``(T, C, Y, X)``, label maps ``(T, Y, X)``) go into the same store
(or any other) as named arrays beside level ``0``, chunked one frame per chunk too.

Writing streams: a dask array, a numpy array or a memory map is written a block of frames at a
time, so a movie larger than memory is never held whole. Every write is atomic: the store, or
the result array inside it, is written into a staging folder and swapped in as a whole
(:func:`~.folders.replaced_folder`); a crash leaves the previous store or the new one.

Reading (:func:`read_zarr`, used by :func:`~.movie.read_movie` for ``.zarr`` folders) takes a
plain zarr array, a group of arrays (one channel each) or an OME-Zarr image (version 0.4 or
0.5; level 0, calibration from its axes and scale; a channel axis becomes named channels).
Stores larger than :func:`~.lazy.lazy_bytes` open lazily (dask, one frame per chunk).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .folders import replaced_folder
from .lazy import frame_chunks, is_large, open_lazy
from .movie import AXIS_LABELS, Movie, UnreadableFile, make_movies

#: NGFF unit names ↔ the units napari-rvae shows
NGFF_UNITS = {"nm": "nanometer", "µm": "micrometer", "mm": "millimeter", "m": "meter", "angstrom": "angstrom",
              "pm": "picometer", "s": "second", "ms": "millisecond"}
_FROM_NGFF = {v: k for k, v in NGFF_UNITS.items()}
#: markers that make a folder a zarr store (format 2 or 3)
STORE_MARKERS = (".zgroup", ".zarray", ".zattrs", "zarr.json")
#: a block of frames written at once from a numpy array or memory map
BLOCK_BYTES = 64 * 2**20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}$")


# ------------------------------------------------------------------ writing
def _store_array(target: Any, array: Any) -> None:
    """Copy ``array`` into the zarr array ``target`` a block of frames at a time (at most
    :data:`BLOCK_BYTES`): a dask block is computed (its chunks in parallel), then written. Nothing is
    written while a computation runs, so a failure leaves no writer behind in the staging folder."""
    frame = max(int(np.prod(array.shape[1:], dtype=np.int64)) * np.dtype(array.dtype).itemsize, 1)
    step = max(1, BLOCK_BYTES // frame) if array.ndim >= 3 else max(int(array.shape[0]), 1)
    chunks = getattr(array, "chunks", None)
    if chunks and isinstance(chunks[0], tuple):  # dask: whole chunks per block
        step = max(step // max(chunks[0]), 1) * max(chunks[0])
    for start in range(0, int(array.shape[0]), step):
        target[start:start + step] = np.asarray(array[start:start + step])


def _json_safe(value: Any) -> Any:
    import json

    try:
        return json.loads(json.dumps(value, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    except (TypeError, ValueError):
        return str(value)


def write_movie(path: str | os.PathLike, array: Any, *, scale: Sequence[float] | None = None,
                units: Sequence[str] | None = None, name: str | None = None, metadata: dict | None = None) -> Path:
    """Write a ``(T, Y, X)`` movie (or a :class:`~.movie.Movie`) as an OME-Zarr image; returns ``path``.

    Parameters
    ----------
    path : path
        The store folder (``movie.zarr``), replaced as a whole when it exists and is a zarr store.
    array : (T, Y, X) or (Y, X) array (numpy, memory map, dask), or a Movie
        A Movie brings its own scale, units, name and metadata (the arguments override them).
    scale : (3,) floats
        Frame interval and pixel size ``(t, y, x)``; default 1.
    units : (3,) str
        Units of ``scale`` as napari-rvae shows them (``""`` for frames, ``"nm"``, ``"µm"``,
        ``"pixel"`` …); written as NGFF unit names where NGFF has one.
    metadata : dict
        Kept under the store's ``napari_rvae`` attribute (the movie's notes, source, channel).
    """
    import zarr

    if isinstance(array, Movie):
        movie = array
        array, scale = movie.data, scale or movie.scale
        units, name = units or movie.units, name or movie.name
        metadata = {**movie.metadata, **(metadata or {})}
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"write_movie: expected a (T, Y, X) movie, got shape {tuple(array.shape)}")
    if np.dtype(array.dtype).kind not in "uifb":
        raise ValueError(f"write_movie: expected numeric pixels, got {array.dtype}")
    scale = tuple(float(s) for s in (scale or (1.0, 1.0, 1.0)))
    units = tuple(str(u) for u in (units or ("", "pixel", "pixel")))
    if len(scale) != 3 or len(units) != 3 or not all(np.isfinite(scale)) or min(scale) <= 0:
        raise ValueError(f"write_movie: scale and units need 3 entries (t, y, x) with positive scales, got {scale}, {units}")
    axes = []
    for axis, unit, kind in zip(AXIS_LABELS, units, ("time", "space", "space")):
        entry = {"name": axis, "type": kind}
        if NGFF_UNITS.get(unit):
            entry["unit"] = NGFF_UNITS[unit]
        axes.append(entry)
    name = name or Path(path).stem
    attrs = {
        "multiscales": [{"version": "0.4", "name": name, "axes": axes,
                         "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}]}],
        "napari_rvae": {"name": name, "scale": list(scale), "units": list(units), "metadata": _json_safe(metadata or {})},
    }
    with replaced_folder(path, markers=STORE_MARKERS) as stage:
        group = zarr.open_group(store=str(stage), mode="w", zarr_format=2)
        target = group.create_array("0", shape=tuple(int(s) for s in array.shape), chunks=frame_chunks(array.shape),
                                    dtype=np.dtype(array.dtype), fill_value=0)
        _store_array(target, array)
        group.attrs.update(attrs)
    return Path(path)


def write_frames(path: str | os.PathLike, name: str, array: Any, *, axes: Sequence[str] | None = None,
                 metadata: dict | None = None) -> Path:
    """Write a per-frame result (first axis = frames) as the array ``name`` of the store ``path``.

    The store is created when absent (a plain zarr group) and may be the movie's own
    (:func:`write_movie`). The array is chunked one frame per chunk and streamed; it replaces an
    earlier result of the same name atomically. ``axes`` names the axes (default ``t, y, x`` or
    ``t, c, y, x``); ``metadata`` is kept in its ``napari_rvae`` attribute. Returns the array's folder.
    """
    import zarr

    if not isinstance(name, str) or not _NAME.match(name) or name == "0":
        raise ValueError(f"write_frames: name {name!r} must be 1-100 letters, digits, '_', '-', '.' or spaces "
                         "(not '0', the movie's own level)")
    if array.ndim < 2:
        raise ValueError(f"write_frames: expected frames (T, Y, X) or (T, C, Y, X), got shape {tuple(array.shape)}")
    if np.dtype(array.dtype).kind not in "uifb":
        raise ValueError(f"write_frames: expected numeric values, got {array.dtype}")
    store = Path(path)
    if not store.exists():
        with replaced_folder(store) as stage:
            zarr.open_group(store=str(stage), mode="w", zarr_format=2)
    elif not any((store / m).exists() for m in STORE_MARKERS):
        raise ValueError(f"{store}: exists and is not a zarr store; choose a new folder or a .zarr store")
    axes = list(axes) if axes else (["t", "y", "x"] if array.ndim == 3 else ["t", "c", "y", "x"][-array.ndim:])
    if len(axes) != array.ndim:
        raise ValueError(f"write_frames: {len(axes)} axis names for an array of {array.ndim} dimensions")
    with replaced_folder(store / name, markers=STORE_MARKERS) as stage:
        target = zarr.open_array(store=str(stage), mode="w", zarr_format=2, shape=tuple(int(s) for s in array.shape),
                                 chunks=frame_chunks(array.shape) if array.ndim >= 3 else array.shape,
                                 dtype=np.dtype(array.dtype), fill_value=0)
        _store_array(target, array)
        target.attrs.update({"napari_rvae": {"axes": axes, "metadata": _json_safe(metadata or {})}})
    return store / name


def read_frames(path: str | os.PathLike, name: str, *, lazy: bool | None = None) -> Any:
    """The array ``name`` of the store ``path`` (written by :func:`write_frames`): numpy, or dask
    chunked per frame when it is larger than :func:`~.lazy.lazy_bytes` (or ``lazy=True``)."""
    import zarr

    folder = Path(path) / name
    if not folder.is_dir():
        raise ValueError(f"{path}: the store holds no array {name!r}")
    if lazy if lazy is not None else is_large(folder):
        return open_lazy(path, "zarr", name)
    return np.asarray(zarr.open_array(store=str(path), path=name, mode="r")[...])


# ------------------------------------------------------------------ reading
def _ngff(attrs: dict) -> dict | None:
    """The first multiscales entry of an OME-Zarr image (0.4: top level, 0.5: under ``ome``)."""
    multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        return multiscales[0]
    return None


def _level0_scale(entry: dict, n_axes: int) -> list[float]:
    scale = [1.0] * n_axes
    transforms = list((entry.get("datasets") or [{}])[0].get("coordinateTransformations") or [])
    transforms += list(entry.get("coordinateTransformations") or [])
    for t in transforms:
        if isinstance(t, dict) and t.get("type") == "scale" and len(t.get("scale") or []) == n_axes:
            scale = [a * float(b) for a, b in zip(scale, t["scale"])]
    return scale


def read_zarr(path: Path) -> list[Movie]:
    """A ``.zarr`` folder as one movie per channel (see the module docstring)."""
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as err:  # noqa: BLE001 - zarr raises many kinds on a folder that is not a store
        raise UnreadableFile(f"{path.name}: not a zarr store ({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None
    from . import limits

    limits.check_zarr(path, [node] if isinstance(node, zarr.Array) else [a for _, a in node.arrays()])
    large = is_large(path)
    attrs = dict(node.attrs)
    ours = attrs.get("napari_rvae") or {}
    if isinstance(node, zarr.Array):
        data = open_lazy(path, "zarr") if large else node[...]
        from .movie import split_channels

        channels, notes = split_channels(data, where=path.name)
        return make_movies(channels, path, fmt="zarr", notes=notes)
    entry = _ngff(attrs)
    if entry is None:  # a plain group: its image-like arrays, one channel each
        arrays = [(k, a) for k, a in sorted(node.arrays()) if a.ndim >= 2 and min(a.shape[-2:]) >= 4]
        if not arrays:
            raise UnreadableFile(f"{path.name}: the zarr store holds no image array")
        channels = [(None if len(arrays) == 1 else k, open_lazy(path, "zarr", k) if large else a[...]) for k, a in arrays]
        return make_movies(channels, path, fmt="zarr")
    level = str((entry.get("datasets") or [{}])[0].get("path", "0"))
    if level not in dict(node.arrays()):
        raise UnreadableFile(f"{path.name}: the OME-Zarr image names level {level!r}, which the store lacks")
    array = node[level]
    axes = entry.get("axes") or [{"name": n} for n in "tczyx"[-array.ndim:]]
    names = [str(a.get("name") if isinstance(a, dict) else a).lower() for a in axes]
    if len(names) != array.ndim or not {"y", "x"} <= set(names):
        raise UnreadableFile(f"{path.name}: the OME-Zarr axes {names} do not fit its level-0 array of shape {array.shape}")
    units = [str(a.get("unit") or "") if isinstance(a, dict) else "" for a in axes]
    scale = _level0_scale(entry, array.ndim)
    data = open_lazy(path, "zarr", level) if large else array[...]
    notes = []
    for axis in [n for n in names if n not in ("t", "c", "y", "x")]:  # z (or another axis): one plane
        index = names.index(axis)
        if data.shape[index] > 1 and "t" not in names:
            names[index] = "t"  # a z-stack without time is a stack of frames
            continue
        if data.shape[index] > 1:
            notes.append(f"axis {axis!r} ({data.shape[index]} planes): the first plane is read")
        data = data[tuple(0 if i == index else slice(None) for i in range(len(names)))]
        del names[index], units[index], scale[index]
    order = [names.index(a) for a in ("t", "c", "y", "x") if a in names]
    data = data.transpose(order) if list(order) != list(range(len(order))) else data
    present = [a for a in ("t", "c", "y", "x") if a in names]
    pick = {a: names.index(a) for a in present}
    channel_names = [str((c or {}).get("label") or f"channel {i}")
                     for i, c in enumerate((attrs.get("omero") or (attrs.get("ome") or {}).get("omero") or {}).get("channels") or [])]
    if "c" in present:
        c_axis = present.index("c")
        labels = channel_names if len(channel_names) == data.shape[c_axis] else [f"channel {i}" for i in range(data.shape[c_axis])]
        channels = [(labels[i], np.take(data, i, axis=c_axis)) for i in range(data.shape[c_axis])]
    else:
        channels = [(ours.get("metadata", {}).get("channel"), data)]
    y_unit = _FROM_NGFF.get(units[pick["y"]], units[pick["y"]] or None)
    t_unit = _FROM_NGFF.get(units[pick["t"]], "") if "t" in pick else ""
    interval = scale[pick["t"]] if "t" in pick and t_unit in ("s", "ms") else None
    metadata = {k: v for k, v in (ours.get("metadata") or {}).items() if k not in ("source", "format", "notes", "channel")}
    earlier = [str(n) for n in (ours.get("metadata") or {}).get("notes", [])]
    movies = make_movies(channels, path, fmt="zarr (OME-Zarr)", pixel_size=(scale[pick["y"]], scale[pick["x"]]),
                         pixel_unit=y_unit, frame_interval=interval, frame_unit=t_unit if interval else "",
                         calibration="the OME-Zarr axes and scale", metadata=metadata, notes=earlier + notes)
    if ours.get("name") and len(movies) == 1:
        movies[0].name = str(ours["name"])
    return movies
