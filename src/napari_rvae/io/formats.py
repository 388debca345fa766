"""One reader per file format; each returns a list of :class:`~.movie.Movie`.

Readers never show dialogs and never unpickle. Optional packages
(rosettasciio, igor2, h5py) are imported only when their format is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .calibration import parse_note, pixel_size_from_metadata
from . import limits
from .lazy import is_large as _is_large
from .lazy import open_lazy
from .movie import Movie, UnreadableFile, make_movies, split_channels
from .rsciio_formats import read_hspy, rsciio_reader
from .units import nm_per


# ---------------------------------------------------------------- numpy
def read_npy(path: Path) -> list[Movie]:
    """``(Y, X)``, ``(T, Y, X)``, singleton axes anywhere, or a short trailing channel axis."""
    limits.check_npy(path)
    array = open_lazy(path, "npy") if _is_large(path) else np.load(path, allow_pickle=False)
    channels, notes = split_channels(array, where=path.name)
    return make_movies(channels, path, fmt="npy", notes=notes)


def read_npz(path: Path) -> list[Movie]:
    """``data`` (with optional ``scale`` / ``units`` and ``channels`` names), as written by
    ``napari-rvae sample``; otherwise every image-like array in the archive, one channel each."""
    limits.check_npz(path)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        notes: list[str] = []
        names = None
        if "channels" in keys:
            names = [str(n) for n in np.atleast_1d(archive["channels"]).ravel()]
        if "data" in keys:
            channels, notes = split_channels(np.asarray(archive["data"]), names, where=path.name)
        else:
            chosen = [k for k in keys if archive[k].ndim >= 2 and min(archive[k].shape[-2:]) >= 4]
            if not chosen:
                raise UnreadableFile(f"{path.name}: no image array in the archive (keys: {', '.join(keys) or 'none'})")
            channels = [(None if len(chosen) == 1 else k, np.asarray(archive[k])) for k in chosen]
        pixel_size, unit, interval, frame_unit = None, None, None, ""
        if "scale" in keys:
            scale = np.atleast_1d(archive["scale"]).astype(float)
            if scale.size >= 2:
                pixel_size = tuple(scale[-2:])
            if scale.size >= 3 and scale[0] > 0:
                interval = float(scale[0])
        if "units" in keys:
            units = [str(u) for u in np.atleast_1d(archive["units"])]
            unit = units[-1] if units else None
            frame_unit = units[0] if len(units) >= 3 else ""
        elif pixel_size is not None:
            unit = "pixel"
    if frame_unit not in ("s", "ms"):
        interval, frame_unit = None, ""
    return make_movies(channels, path, fmt="npz", pixel_size=pixel_size, pixel_unit=unit, notes=notes,
                       frame_interval=interval, frame_unit=frame_unit, calibration="the archive's 'scale' and 'units'")


# ---------------------------------------------------------------- TIFF
def read_tiff(path: Path) -> list[Movie]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise UnreadableFile(f"{path.name}: the TIFF holds no image")
        series = tif.series[0]
        limits.check_tiff(tif, path)
        axes = series.axes.upper()
        page = tif.pages[0]
        pixel_size, unit = _tiff_pixel_size(tif, page)
        interval = None
        ij = tif.imagej_metadata or {}
        if ij.get("finterval"):
            interval = float(ij["finterval"])
        if _is_large(path):  # memory map, or tile by tile through tifffile's zarr store
            array = open_lazy(path, "tiff", "0")
        else:
            array = series.asarray()
    rgb = "S" in axes and axes.endswith("S")
    channels: list[tuple[str | None, Any]]
    notes: list[str] = []
    if "C" in axes and not rgb:
        c_axis = axes.index("C")
        names = list(ij.get("Labels", [])) if isinstance(ij.get("Labels"), list) else []
        channels = []
        for c in range(array.shape[c_axis]):
            name = str(names[c]) if c < len(names) else f"channel {c}"
            channels.append((name, np.take(array, c, axis=c_axis)))
    elif rgb:
        channels = [(None, array)]
    else:
        channels, notes = split_channels(array, where=path.name)
    return make_movies(
        channels, path, fmt="tiff", pixel_size=pixel_size, pixel_unit=unit,
        frame_interval=interval, frame_unit="s" if interval else "", rgb=rgb,
        metadata={"axes": axes}, notes=notes, calibration="the TIFF resolution tags",
    )


def _tiff_pixel_size(tif: Any, page: Any) -> tuple[tuple[float, float] | None, str | None]:
    ij = tif.imagej_metadata or {}
    tags = page.tags
    xres, yres = tags.get("XResolution"), tags.get("YResolution")
    if xres is None or yres is None:
        return None, None
    try:
        sx = xres.value[1] / xres.value[0]
        sy = yres.value[1] / yres.value[0]
    except (ZeroDivisionError, TypeError, IndexError):
        return None, None
    unit = ij.get("unit")
    if unit is None:
        res_unit = tags.get("ResolutionUnit")
        code = int(getattr(res_unit, "value", 1)) if res_unit is not None else 1
        if code == 3:  # centimetre → report in µm
            return (sy * 1e4, sx * 1e4), "µm"
        if code == 2 and (sx != 1 or sy != 1):  # inch: a print resolution, not a pixel size
            return None, None
        return None, None
    if str(unit).lower() in ("micron", "\\u00B5m"):
        unit = "µm"
    return (sy, sx), unit


# ---------------------------------------------------------------- HDF5
def read_hdf5(path: Path) -> list[Movie]:
    import h5py

    with h5py.File(path, "r") as f:
        if "Experiments" in f:
            return read_hspy(path)
        nsid = [d for d in _datasets(f) if "data_type" in d.attrs and "quantity" in d.attrs]
        if nsid:
            return _read_nsid(path, nsid)
        return _read_plain_h5(path, f)


def _h5_pixels(path: Path, d: Any, large: bool) -> Any:
    """A dataset's pixels: in memory, or (large files) a dask array chunked per frame that reopens
    the file where it is read (:mod:`.lazy`)."""
    return open_lazy(path, "h5", d.name) if large else d[()]


def _datasets(group: Any) -> list[Any]:
    import h5py

    found: list[Any] = []
    group.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def _image_like(d: Any) -> bool:
    return d.dtype.kind in "uifc" and d.ndim >= 2 and min(d.shape[-2:]) >= 4


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_text(value.item())
    return str(value)


def _h5_metadata(f: Any) -> dict:
    """Every attribute and small text/number dataset of the file, by its own name (JSON strings
    such as a ``metadata`` dataset are expanded by :func:`~.calibration.flatten`)."""
    meta: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        meta.update({k: v for k, v in obj.attrs.items()})
        if hasattr(obj, "shape") and (obj.dtype.kind in "SOU" or obj.shape in ((), (1,), (2,))) and obj.size <= 4:
            meta[name.rsplit("/", 1)[-1]] = obj[()]

    meta.update(dict(f.attrs))
    f.visititems(visit)
    return meta


def _read_plain_h5(path: Path, f: Any) -> list[Movie]:
    images = [d for d in _datasets(f) if _image_like(d)]
    if not images:
        raise UnreadableFile(f"{path.name}: no image dataset in the HDF5 file")
    limits.check_h5(path, images)
    pixel_size, unit, source = None, None, None
    for d in images:
        for k in ("pixel_size", "pixelsize", "px_size", "scale", "pixel_scale"):
            if k in d.attrs:
                value = np.atleast_1d(d.attrs[k]).astype(float)
                pixel_size = (float(value[-2]), float(value[-1])) if value.size >= 2 else (float(value[0]),) * 2
                unit = _attr_text(d.attrs.get("units", d.attrs.get("unit", unit)))
                source = f"the '{k}' attribute of {d.name}"
    if pixel_size is None:
        found = pixel_size_from_metadata(_h5_metadata(f), tuple(images[0].shape[-2:]))
        if found is not None:
            pixel_size, unit, source = found
    large = _is_large(path)
    channels = [(d.name.strip("/") if len(images) > 1 else None, _h5_pixels(path, d, large)) for d in images]
    if len(channels) == 1:
        channels, notes = split_channels(channels[0][1], where=path.name)
        return make_movies(channels, path, fmt="hdf5", pixel_size=pixel_size, pixel_unit=unit, calibration=source,
                           notes=notes)
    return make_movies(channels, path, fmt="hdf5", pixel_size=pixel_size, pixel_unit=unit, calibration=source)


def _read_nsid(path: Path, datasets: list[Any]) -> list[Movie]:
    """pyNSID / sidpy: one channel per main dataset, named by its ``quantity``; the pixel
    size from its spatial dimension scales (or, where those carry no length unit, from
    another channel's or the scan size in ``original_metadata``)."""
    images = [d for d in datasets if _image_like(d)]
    if not images:
        raise UnreadableFile(f"{path.name}: the pyNSID datasets hold no image")
    limits.check_h5(path, images)
    channels, value_units, calibrations = [], [], []
    large = _is_large(path)
    for d in images:
        labels = [_attr_text(x).strip().lower() for x in np.atleast_1d(d.attrs.get("DIMENSION_LABELS", []))]
        data = _h5_pixels(path, d, large)
        scales, units = [], []
        for dim in d.dims:
            if len(dim):
                values = np.asarray(dim[0][()], dtype=float).ravel()
                scales.append(float(values[1] - values[0]) if values.size > 1 else 1.0)
                units.append(_attr_text(dim[0].attrs.get("units", "")))
            else:
                scales.append(1.0)
                units.append("")
        if len(labels) >= 2 and labels[-2:] == ["x", "y"]:  # stored (x, y) as Igor does: rows must be y
            data = np.swapaxes(data, -1, -2)
            scales[-2:], units[-2:] = scales[-2:][::-1], units[-2:][::-1]
        if nm_per(units[-1]) is not None and nm_per(units[-2]) is not None:
            calibrations.append(((scales[-2], scales[-1]), units[-1], "pyNSID dimension scales"))
        else:
            meta = {k: v for k, v in (d.parent["original_metadata"].attrs.items() if "original_metadata" in d.parent else [])}
            found = pixel_size_from_metadata(meta, tuple(data.shape[-2:])) if meta else None
            calibrations.append(found and (found[0], found[1], "the scan size in original_metadata"))
        name = _attr_text(d.attrs.get("quantity") or d.attrs.get("title") or d.name.rsplit("/", 1)[-1])
        channels.append((name, data))
        value_units.append(_attr_text(d.attrs.get("units", "")) or None)
    known = [c for c in calibrations if c]
    pixel_size, unit, source = known[0] if known else (None, None, None)
    names = [n for n, _ in channels]
    if len(set(names)) < len(names):  # two channels of one quantity: keep them apart
        channels = [(f"{n} {i}" if names.count(n) > 1 else n, a) for i, (n, a) in enumerate(channels)]
    if len(channels) == 1:
        channels = [(None, channels[0][1])]
    return make_movies(channels, path, fmt="hdf5 (pyNSID)", pixel_size=pixel_size, pixel_unit=unit,
                       value_units=value_units, calibration=source,
                       metadata={"data_type": _attr_text(images[0].attrs["data_type"]),
                                 "quantity": _attr_text(images[0].attrs["quantity"])} if len(images) == 1 else None)


# ---------------------------------------------------------------- Igor
def read_ibw(path: Path) -> list[Movie]:
    """Igor binary waves (e.g. Asylum PFM): one movie per layer of the third axis, named
    after its dimension label (HeightRetrace, PhaseRetrace …); the pixel size from the
    wave scaling (``sfA``) in metres, or from the note's ``ScanSize``."""
    from igor2 import binarywave

    limits.check_ibw(path)
    loaded = binarywave.load(str(path))
    wave = loaded["wave"]
    data = np.asarray(wave["wData"])
    if data.ndim < 2:
        raise UnreadableFile(f"{path.name}: the wave is {data.ndim}-D, not an image")
    header = wave["wave_header"]
    sf = np.asarray(header.get("sfA", [1.0, 1.0]), dtype=float)
    unit = _igor_dim_unit(header)
    note_bytes = wave.get("note") or b""
    note = parse_note(note_bytes.decode("latin-1", "replace") if isinstance(note_bytes, bytes) else str(note_bytes))
    labels = _igor_layer_labels(path, loaded) if data.ndim > 2 else []
    # Igor stores images column-major: axis 0 runs along x, axis 1 along y.
    frame_shape = (data.shape[1], data.shape[0])
    pixel_size, source = (sf[1], sf[0]), "the wave scaling"
    if nm_per(unit or "") is None:
        found = pixel_size_from_metadata(note, frame_shape)
        pixel_size, unit, source = (found if found else (pixel_size, unit, None))
        if found:
            source = "the note's scan size"
    if data.ndim == 2:
        channels = [(None, data.T)]
    else:
        channels = [(labels[c] if c < len(labels) and labels[c] else f"channel {c}", np.swapaxes(data[:, :, c, ...], 0, 1))
                    for c in range(data.shape[2])]
    value_units = [("deg" if "phase" in (n or "").lower() else None) for n, _ in channels]
    meta = {k: note[k] for k in ("ScanSize", "ScanAngle", "ScanRate", "Date", "ImageNote") if k in note}
    return make_movies(channels, path, fmt="ibw", pixel_size=pixel_size, pixel_unit=unit, calibration=source,
                       value_units=value_units, metadata={"instrument": meta} if meta else None)


def _igor_dim_unit(header: dict) -> str | None:
    units = header.get("dimUnits")
    if units is None:
        return None
    first = np.asarray(units).ravel()[:4]
    text = b"".join(x if isinstance(x, bytes) else bytes(x) for x in first).decode("latin-1").strip("\x00 ")
    return text or None


def _igor_layer_labels(path: Path, loaded: dict) -> list[str]:
    """Labels of the third axis' layers. igor2 joins each 32-byte label field without cutting
    it at its terminating NUL, so stale bytes leak in ("PhaseRetracerace"); read the fields
    from the file and cut them properly (wave version 5), else clean igor2's labels."""
    wave = loaded["wave"]
    bin_header = wave.get("bin_header", {})
    sizes = list(np.asarray(bin_header.get("dimLabelsSize", [0, 0, 0, 0])).ravel())
    if loaded.get("version") == 5 and len(sizes) >= 3 and sizes[2] > 0:
        offset = (64 + int(bin_header["wfmSize"]) + int(bin_header.get("formulaSize", 0)) + int(bin_header.get("noteSize", 0))
                  + int(bin_header.get("dataEUnitsSize", 0)) + int(np.sum(bin_header.get("dimEUnitsSize", [0]))) + int(sum(sizes[:2])))
        with open(path, "rb") as f:
            f.seek(offset)
            block = f.read(int(sizes[2]))
        if len(block) == sizes[2]:
            fields = [block[i:i + 32].split(b"\x00")[0].decode("latin-1").strip() for i in range(0, len(block), 32)]
            return fields[1:]  # the first label names the axis as a whole
    labels = wave.get("labels") or []
    layer = labels[2] if len(labels) > 2 else []
    return [(lab.decode("latin-1") if isinstance(lab, bytes) else str(lab)).strip("\x00 ") for lab in layer][1:]


def read_zarr(path: Path) -> list[Movie]:
    """A ``.zarr`` folder: a zarr array, a group of arrays or an OME-Zarr image (:mod:`.zarr_store`)."""
    from .zarr_store import read_zarr as read

    return read(path)


#: readers of folders rather than files (a zarr store is a folder)
FOLDER_FORMATS = (".zarr",)

READERS: dict[str, Callable[[Path], list[Movie]]] = {
    ".npy": read_npy,
    ".npz": read_npz,
    ".tif": read_tiff,
    ".tiff": read_tiff,
    ".h5": read_hdf5,
    ".hdf5": read_hdf5,
    ".hspy": read_hspy,
    ".dm3": rsciio_reader("digitalmicrograph", "dm3"),
    ".dm4": rsciio_reader("digitalmicrograph", "dm4"),
    ".emd": rsciio_reader("emd", "emd"),
    ".ser": rsciio_reader("tia", "ser"),
    ".mrc": rsciio_reader("mrc", "mrc"),
    ".ibw": read_ibw,
    ".zarr": read_zarr,
}
