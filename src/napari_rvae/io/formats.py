"""One reader per file format; each returns a list of :class:`~.movie.Movie`.

Readers never show dialogs and never unpickle. Optional packages
(rosettasciio, igor2, h5py) are imported only when their format is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import limits
from .movie import LAZY_BYTES, Movie, UnreadableFile, lazy_array, make_movies

_PIXEL_SIZE_KEYS = ("pixel_size", "pixelsize", "px_size", "scale", "pixel_scale")


def _is_large(path: Path) -> bool:
    return path.stat().st_size > LAZY_BYTES


# ---------------------------------------------------------------- numpy
def read_npy(path: Path) -> list[Movie]:
    limits.check_npy(path)
    array = np.load(path, allow_pickle=False, mmap_mode="r" if _is_large(path) else None)
    if isinstance(array, np.memmap):
        array = lazy_array(array)
    return make_movies([(None, array)], path, fmt="npy")


def read_npz(path: Path) -> list[Movie]:
    """``data`` (with optional ``scale`` / ``units``) as written by ``napari-rvae sample``;
    otherwise every image-like array in the archive, one channel each."""
    limits.check_npz(path)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if "data" in keys:
            chosen = ["data"]
        else:
            chosen = [k for k in keys if archive[k].ndim >= 2 and min(archive[k].shape[-2:]) >= 4]
        if not chosen:
            raise UnreadableFile(f"{path.name}: no image array in the archive (keys: {', '.join(keys) or 'none'})")
        arrays = [(None if len(chosen) == 1 else k, np.asarray(archive[k])) for k in chosen]
        pixel_size, unit = None, None
        if "scale" in keys:
            scale = np.atleast_1d(archive["scale"]).astype(float)
            if scale.size >= 2:
                pixel_size = tuple(scale[-2:])
        if "units" in keys:
            units = np.atleast_1d(archive["units"])
            unit = str(units[-1]) if units.size else None
        elif pixel_size is not None:
            unit = "pixel"
    return make_movies(arrays, path, fmt="npz", pixel_size=pixel_size, pixel_unit=unit)


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
        if _is_large(path):
            try:
                array = lazy_array(tifffile.memmap(path))
            except ValueError:  # compressed or not contiguous: read it whole
                array = series.asarray()
        else:
            array = series.asarray()
    rgb = "S" in axes and axes.endswith("S")
    channels: list[tuple[str | None, Any]]
    if "C" in axes and not rgb:
        c_axis = axes.index("C")
        names = list(ij.get("Labels", [])) if isinstance(ij.get("Labels"), list) else []
        channels = []
        for c in range(array.shape[c_axis]):
            name = str(names[c]) if c < len(names) else f"channel {c}"
            channels.append((name, np.take(array, c, axis=c_axis)))
    else:
        channels = [(None, array)]
    return make_movies(
        channels, path, fmt="tiff", pixel_size=pixel_size, pixel_unit=unit,
        frame_interval=interval, frame_unit="s" if interval else "", rgb=rgb,
        metadata={"axes": axes},
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
            return _read_hspy(path)
        nsid = [d for d in _datasets(f) if "data_type" in d.attrs and "quantity" in d.attrs]
        if nsid:
            return _read_nsid(path, nsid)
        return _read_plain_h5(path, f)


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


def _read_plain_h5(path: Path, f: Any) -> list[Movie]:
    images = [d for d in _datasets(f) if _image_like(d)]
    if not images:
        raise UnreadableFile(f"{path.name}: no image dataset in the HDF5 file")
    limits.check_h5(path, images)
    pixel_size, unit = None, None
    for d in _datasets(f):
        key = d.name.rsplit("/", 1)[-1].lower()
        if d.shape in ((), (1,)) and d.dtype.kind in "if" and key.split("(")[0] in _PIXEL_SIZE_KEYS:
            value = float(np.asarray(d[()]).ravel()[0])
            pixel_size = (value, value)
            if "(" in key and key.endswith(")"):
                unit = key[key.index("(") + 1 : -1]
        elif key.startswith("unit") and d.dtype.kind in "SOU":
            unit = _attr_text(d[()])
    for d in images:
        for k in _PIXEL_SIZE_KEYS:
            if k in d.attrs:
                value = np.atleast_1d(d.attrs[k]).astype(float)
                pixel_size = (float(value[-2]), float(value[-1])) if value.size >= 2 else (float(value[0]),) * 2
                unit = _attr_text(d.attrs.get("units", d.attrs.get("unit", unit)))
    large = _is_large(path)
    channels = [
        (d.name.strip("/") if len(images) > 1 else None, lazy_array(d) if large else d[()]) for d in images
    ]
    if large:  # keep the file open for the lazy arrays
        import h5py

        f2 = h5py.File(path, "r")
        channels = [(name, lazy_array(f2[d.name])) for (name, _), d in zip(channels, images)]
    return make_movies(channels, path, fmt="hdf5", pixel_size=pixel_size, pixel_unit=unit)


def _read_nsid(path: Path, datasets: list[Any]) -> list[Movie]:
    movies: list[Movie] = []
    limits.check_h5(path, [d for d in datasets if _image_like(d)])
    for d in datasets:
        if not _image_like(d):
            continue
        scales, units = [], []
        for dim in d.dims:
            if len(dim):
                values = np.asarray(dim[0][()], dtype=float).ravel()
                scales.append(float(values[1] - values[0]) if values.size > 1 else 1.0)
                units.append(_attr_text(dim[0].attrs.get("units", "")))
            else:
                scales.append(1.0)
                units.append("")
        name = _attr_text(d.attrs.get("title", d.name.rsplit("/", 1)[-1]))
        movies += make_movies(
            [(name if len(datasets) > 1 else None, d[()])], path, fmt="hdf5 (pyNSID)",
            pixel_size=(scales[-2], scales[-1]), pixel_unit=units[-1] or None,
            metadata={"quantity": _attr_text(d.attrs["quantity"]), "data_type": _attr_text(d.attrs["data_type"])},
        )
    return movies


def _read_hspy(path: Path) -> list[Movie]:
    from rsciio.hspy import file_reader

    limits.check_h5(path)
    return _from_rsciio(path, file_reader(str(path), lazy=_is_large(path)), fmt="hspy")


# ------------------------------------------------------- rosettasciio formats
def _rsciio_reader(module: str, fmt: str) -> Callable[[Path], list[Movie]]:
    def read(path: Path) -> list[Movie]:
        import importlib

        reader = importlib.import_module(f"rsciio.{module}").file_reader
        limits.check_rsciio(path, module)
        return _from_rsciio(path, reader(str(path), lazy=_is_large(path)), fmt=fmt)

    read.__doc__ = f"Read {fmt} files through rosettasciio (``rsciio.{module}``)."
    return read


def _from_rsciio(path: Path, signals: list[dict], fmt: str) -> list[Movie]:
    movies: list[Movie] = []
    images = [s for s in signals if np.ndim(s["data"]) >= 2]
    for s in images:
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
        title = (s.get("metadata", {}).get("General", {}) or {}).get("title") or None
        movies += make_movies(
            [(title if len(images) > 1 else None, s["data"])], path, fmt=fmt,
            pixel_size=pixel_size, pixel_unit=unit, frame_interval=interval, frame_unit=frame_unit,
        )
    return movies


# ---------------------------------------------------------------- Igor
def read_ibw(path: Path) -> list[Movie]:
    """Igor binary waves (e.g. Asylum PFM): one movie per layer of the third axis,
    named after its label (height, amplitude, phase …)."""
    from igor2 import binarywave

    limits.check_ibw(path)
    wave = binarywave.load(str(path))["wave"]
    data = np.asarray(wave["wData"])
    if data.ndim < 2:
        raise UnreadableFile(f"{path.name}: the wave is {data.ndim}-D, not an image")
    header = wave["wave_header"]
    sf = np.asarray(header.get("sfA", [1.0, 1.0]), dtype=float)
    units = header.get("dimUnits")
    unit = None
    if units is not None:
        first = np.asarray(units).ravel()[:4]
        unit = b"".join(x if isinstance(x, bytes) else bytes(x) for x in first).decode("latin-1").strip("\x00 ") or None
    labels = wave.get("labels") or []
    chan_labels = [lab.decode("latin-1") if isinstance(lab, bytes) else str(lab) for lab in (labels[2] if len(labels) > 2 else [])]
    chan_labels = [lab for lab in chan_labels if lab]
    # Igor stores images column-major: axis 0 runs along x, axis 1 along y.
    if data.ndim == 2:
        channels = [(None, data.T)]
    else:
        channels = [
            (chan_labels[c] if c < len(chan_labels) else f"channel {c}", data[:, :, c].T) for c in range(data.shape[2])
        ]
    return make_movies(channels, path, fmt="ibw", pixel_size=(sf[1], sf[0]), pixel_unit=unit)


READERS: dict[str, Callable[[Path], list[Movie]]] = {
    ".npy": read_npy,
    ".npz": read_npz,
    ".tif": read_tiff,
    ".tiff": read_tiff,
    ".h5": read_hdf5,
    ".hdf5": read_hdf5,
    ".hspy": _read_hspy,
    ".dm3": _rsciio_reader("digitalmicrograph", "dm3"),
    ".dm4": _rsciio_reader("digitalmicrograph", "dm4"),
    ".emd": _rsciio_reader("emd", "emd"),
    ".ser": _rsciio_reader("tia", "ser"),
    ".mrc": _rsciio_reader("mrc", "mrc"),
    ".ibw": read_ibw,
}
