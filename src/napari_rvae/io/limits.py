"""Resource bounds: how much a file may make napari-rvae allocate, and parameters that imply
huge allocations.

A file declares the shape and type of its pixels in a header; a damaged or hostile file can
declare gigabytes in a few hundred bytes. Every reader calls one ``check_*`` function here
*before* it allocates anything, and the call raises :class:`~.movie.UnreadableFile` (a
``ValueError`` with one line) when

- the pixels are stored uncompressed but the file is too short to hold them (truncated);
- the pixels, as the 32-bit movie napari-rvae makes of them, would not fit in the memory
  available now (``MemAvailable`` and the cgroup limit);
- a compressed (or sparse) file would take more than :data:`EXPANSION_FLOOR` bytes and more
  than :data:`EXPANSION_RATIO` × its size to read (the pixels as stored plus their 32-bit copy,
  what reading holds at its peak). Genuine files that compress that well are rare in
  microscopy; ``NAPARI_RVAE_TRUST_FILES=1`` lifts this one rule.

:func:`bounded` checks a numeric parameter (a smoothing σ, a grid size) against the range
where it means something, with a message that names the option.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .lazy import lazy_bytes
from .movie import UnreadableFile

#: any file may take this many bytes to read: stored pixels + their float32 copy (128 MiB:
#: 26 M 8-bit or 16 M 32-bit pixels); keeps ``info`` on any file < 5 MB under 500 MB in all
EXPANSION_FLOOR = 128 * 2**20
#: beyond the floor, at most this many bytes to read per byte of file
EXPANSION_RATIO = 24
#: environment variable that lifts the expansion rule for trusted, highly compressed files
TRUST_ENV = "NAPARI_RVAE_TRUST_FILES"
#: header and metadata bytes an uncompressed file may lack before it counts as truncated
_SLACK = 0


def human_bytes(n: float) -> str:
    """``1.6 GB``-style size (decimal units)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory this process can still use: ``MemAvailable``, lowered to the cgroup
    limit when there is one; ``None`` when the system does not say."""
    values = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    for path, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(path).read_text().strip()
            if limit.isdigit() and int(limit) < 2**60:
                values.append(int(limit) - int(Path(usage).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    if not values and hasattr(os, "sysconf"):
        try:
            values.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return max(min(values), 0) if values else None


def _trusted() -> bool:
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


def check_declared(path: str | os.PathLike, shape: Iterable[int], dtype: Any, *, stored: int | None = None,
                   lazy: bool | None = None, what: str = "") -> int:
    """Refuse a declared array before it is allocated; return its size in bytes as stored.

    Parameters
    ----------
    path : path
        The file (its size is the reference).
    shape, dtype
        What the file declares.
    stored : int, optional
        Bytes the file really holds for these pixels when they are stored uncompressed;
        ``None`` for compressed or unknown storage (then only the expansion rule applies).
    lazy : bool, optional
        The reader will open the data lazily (no memory check); default: files larger
        than :func:`~.lazy.lazy_bytes`.
    what : str
        Which part of the file, for the message (e.g. a dataset name).
    """
    path = Path(path)
    name = path.name + (f" [{what}]" if what else "")
    try:
        dims = [int(s) for s in shape]
        dtype = np.dtype(dtype)
    except (TypeError, ValueError, OverflowError):
        raise UnreadableFile(f"{name}: the header declares an unusable shape or type; the file is corrupt") from None
    if any(d < 0 for d in dims):
        raise UnreadableFile(f"{name}: the header declares a negative size {tuple(dims)}; the file is corrupt")
    count = math.prod(dims)
    raw = count * dtype.itemsize
    if count == 0:
        return 0
    file_size = _stored_size(path)
    if stored is not None and raw > stored + _SLACK:
        raise UnreadableFile(f"{name}: declares {tuple(dims)} {dtype} pixels ({human_bytes(raw)}) but holds only "
                             f"{human_bytes(max(stored, 0))}; the file is truncated or corrupt")
    as_float = count * 4
    if stored is None and not _trusted():
        allowed = max(EXPANSION_FLOOR, EXPANSION_RATIO * file_size)
        if raw + as_float > allowed:
            raise UnreadableFile(
                f"{name}: declares {tuple(dims)} pixels ({human_bytes(raw + as_float)} to read) in a "
                f"{human_bytes(file_size)} file, a {(raw + as_float) / max(file_size, 1):.0f}× expansion; refused as a "
                f"likely corrupt or hostile file (if it is genuine, set {TRUST_ENV}=1 to read it)")
    if lazy is None:
        lazy = file_size > lazy_bytes()
    if not lazy:
        free = available_memory()
        need = as_float + raw
        if free is not None and need > free:
            raise UnreadableFile(f"{name}: reading {tuple(dims)} pixels needs about {human_bytes(need)} of memory but "
                                 f"only {human_bytes(free)} is available; crop the data or free memory")
    return raw


def _stored_size(path: Path) -> int:
    """Bytes on disk: a file's size, or the sum of a folder's files (a zarr store)."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, files in os.walk(path) for name in files)


def _check_all(path: Path, items: Iterable[tuple[Any, Any, int | None, str]]) -> None:
    """Each declared array ``(shape, dtype, stored, what)`` on its own, then all of them
    together (a file of many arrays, each under the limits)."""
    items = list(items)
    for shape, dtype, stored, what in items:
        check_declared(path, shape, dtype, stored=stored, what=what)
    if len(items) < 2:
        return
    count = sum(math.prod(int(s) for s in shape) for shape, _, _, _ in items)
    raw = sum(math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize for shape, dtype, _, _ in items)
    compressed = any(stored is None for _, _, stored, _ in items)
    # the sum: as one compressed array (expansion rule) or one stored array (memory only)
    check_declared(path, (count,), np.float32, stored=None if compressed else max(4 * count, raw),
                   what=f"{len(items)} arrays together")


# ------------------------------------------------------------------ numpy
def _npy_header(handle) -> tuple[tuple, np.dtype]:
    version = np.lib.format.read_magic(handle)
    reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        shape, _, dtype = np.lib.format._read_array_header(handle, version)  # 3.0: utf-8 header
    else:
        shape, _, dtype = reader(handle)
    return shape, dtype


def check_npy(path: str | os.PathLike) -> None:
    """A ``.npy`` header's shape against the bytes after it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError, struct.error) as err:
        raise UnreadableFile(f"{path.name}: not a valid .npy file ({' '.join(str(err).split())[:200]})") from None
    if dtype.hasobject:
        return  # np.load refuses pickled objects itself
    check_declared(path, shape, dtype, stored=path.stat().st_size - offset)


def check_npz(path: str | os.PathLike) -> None:
    """Every ``.npy`` member of an ``.npz``: its header against the member's size, then the
    expansion of the compressed archive."""
    import zipfile

    path = Path(path)
    items = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    shape, dtype = _npy_header(member)
                    header = member.tell() if member.seekable() else 128
                if dtype.hasobject:
                    continue
                raw = math.prod(int(s) for s in shape) * dtype.itemsize
                if raw > info.file_size - header:  # the member is shorter than its header says
                    check_declared(path, shape, dtype, stored=info.file_size - header, what=info.filename[:-4])
                deflated = info.compress_type != zipfile.ZIP_STORED
                items.append((shape, dtype, None if deflated else info.file_size - header, info.filename[:-4]))
    except (zipfile.BadZipFile, ValueError, OSError, SyntaxError, struct.error, EOFError, NotImplementedError) as err:
        if isinstance(err, UnreadableFile):
            raise
        raise UnreadableFile(f"{path.name}: not a valid .npz file ({' '.join(str(err).split())[:200]})") from None
    _check_all(path, items)


# ------------------------------------------------------------------ TIFF
def check_tiff(tif: Any, path: str | os.PathLike) -> None:
    """The first series of an open ``tifffile.TiffFile``: uncompressed strips against their
    declared byte counts and the file, compressed ones against the expansion rule."""
    path = Path(path)
    series = tif.series[0]
    page = series.pages[0] if len(series.pages) else None
    compressed = page is None or int(getattr(page, "compression", 1)) != 1
    stored = None if compressed else path.stat().st_size - int(getattr(series, "dataoffset", None) or 0)
    check_declared(path, series.shape, series.dtype, stored=stored)


# ------------------------------------------------------------------ HDF5
def check_h5(path: str | os.PathLike, datasets: Iterable[Any] | None = None) -> None:
    """HDF5 datasets (default: every dataset in the file): each, and all together, against
    the expansion rule — chunks never written and gzip of zeros cost no space on disk."""
    path = Path(path)
    if datasets is None:
        import h5py

        with h5py.File(path, "r") as f:
            found: list[Any] = []
            f.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
            return check_h5(path, found)
    items = []
    for d in datasets:
        if d.dtype.kind not in "uifcb" or d.ndim == 0:
            continue
        items.append((d.shape, d.dtype, None, d.name.strip("/")[-60:]))
    _check_all(path, items)


# ------------------------------------------------------------------ zarr
def check_zarr(path: str | os.PathLike, arrays: Iterable[Any]) -> None:
    """The arrays of a zarr store (a folder): chunks never written cost no space on disk, so the
    declared shapes face the expansion rule against the store's total size, as HDF5 does."""
    items = [(a.shape, a.dtype, None, str(getattr(a, "path", "") or "")[-60:]) for a in arrays
             if np.dtype(a.dtype).kind in "uifcb" and len(a.shape)]
    _check_all(Path(path), items)


# ------------------------------------------------------------------ Igor
_IBW_V5_BIN = struct.Struct("hhlllllllllllllll")  # version, checksum, wfmSize, formula, note, dataEUnits, 4+4 sizes, …
_IBW_TYPES = {1: "c16", 2: "f4", 3: "c8", 4: "f8", 5: "c16", 8: "i1", 9: "i2", 0x10: "i2", 0x11: "i4", 0x20: "i4",
              0x21: "i8", 0x48: "u1", 0x49: "u2", 0x50: "u2", 0x51: "u4", 0x60: "u4", 0x61: "u8"}  # complex ints as pairs
_MRC_MODES = {0: "i1", 1: "i2", 2: "f4", 3: "i4", 4: "c8", 6: "u2", 12: "f2"}


def check_ibw(path: str | os.PathLike) -> None:
    """An Igor binary wave's header: every declared section size and the wave's points
    against the file (Igor stores waves uncompressed)."""
    path = Path(path)
    data = path.open("rb").read(512)
    size = path.stat().st_size
    if len(data) < 2:
        raise UnreadableFile(f"{path.name}: not an Igor binary wave (too short)")
    order = "<" if struct.unpack_from("<h", data)[0] in (1, 2, 3, 5) else ">"
    version = struct.unpack_from(order + "h", data)[0]
    try:
        if version == 5:
            fields = struct.unpack_from(order + _IBW_V5_BIN.format, data)
            wfm_size, sections = fields[2], fields[3:15]
            npnts, kind = struct.unpack_from(order + "lh", data, 64 + 12)
            n_dim = struct.unpack_from(order + "4l", data, 64 + 68)
            header = 64 + 320
        elif version in (1, 2, 3):
            bin_size = {1: 8, 2: 16, 3: 20}[version]
            fields = struct.unpack_from(order + {1: "hl", 2: "hlll", 3: "hllll"}[version], data)
            wfm_size, sections = fields[1], tuple(fields[2:])
            kind = struct.unpack_from(order + "h", data, bin_size)[0]
            npnts = struct.unpack_from(order + "l", data, bin_size + 2 + 4 + 20 + 2 + 2 + 4 + 4 + 4)[0]
            n_dim = (npnts, 0, 0, 0)
            header = bin_size + 110
        else:
            raise UnreadableFile(f"{path.name}: not an Igor binary wave (version {version})")
    except struct.error:
        raise UnreadableFile(f"{path.name}: the Igor header is truncated") from None
    bin_header = 64 if version == 5 else 0  # wfmSize counts the wave header from version 5 on
    if wfm_size < 0 or any(s < 0 for s in sections) or bin_header + wfm_size + sum(sections) > size:
        raise UnreadableFile(f"{path.name}: the Igor header declares {human_bytes(max(wfm_size, 0) + sum(max(s, 0) for s in sections))}"
                             f" of wave, note and labels but the file holds {human_bytes(size)}; it is truncated or corrupt")
    dtype = _IBW_TYPES.get(kind, "u1")  # text waves: bytes
    dims = [n for n in n_dim if n > 0] or [max(npnts, 0)]
    if npnts < 0 or math.prod(dims) != npnts and version == 5:
        raise UnreadableFile(f"{path.name}: the Igor header's dimensions {tuple(dims)} do not match its {npnts} points; "
                             "the file is corrupt")
    check_declared(path, dims, dtype, stored=size - header)


# --------------------------------------------------------- rosettasciio
def check_rsciio(path: str | os.PathLike, module: str) -> None:
    """Files read through rosettasciio: HDF5-based ones (EMD, HSPY) dataset by dataset; MRC
    from its header; DigitalMicrograph and TIA by opening them lazily first (memory-mapped,
    nothing allocated) and checking the shapes they declare."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1024)
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        check_h5(path)
        return
    if module == "mrc" and len(head) >= 1024:
        nx, ny, nz, mode = struct.unpack_from("<4i", head)
        extended = struct.unpack_from("<i", head, 92)[0]
        check_declared(path, (nz, ny, nx), _MRC_MODES.get(mode, "f4"), stored=path.stat().st_size - 1024 - max(extended, 0))
        return
    if module == "tia":
        _check_ser(path, head)
    if module in ("digitalmicrograph", "tia"):
        import importlib

        reader = importlib.import_module(f"rsciio.{module}").file_reader
        try:
            signals = reader(str(path), lazy=True)
        except Exception:  # noqa: BLE001 - the real read says what is wrong with the file
            return
        _check_all(path, [(np.shape(s["data"]), s["data"].dtype, None if module == "tia" else path.stat().st_size,
                           "") for s in signals if hasattr(s.get("data"), "dtype")])


_SER_TYPES = {1: "u1", 2: "u2", 3: "u4", 4: "i1", 5: "i2", 6: "i4", 7: "f4", 8: "f8", 9: "c8", 10: "c16"}


def _check_ser(path: Path, head: bytes) -> None:
    """A TIA ``.ser`` header: the element count and the first element's size against the file
    (rosettasciio allocates the whole series from them, even when asked to read lazily)."""
    size = path.stat().st_size
    try:
        version, kind, valid, offsets_at = struct.unpack_from("<4xHI8xII", head)
        if version > 528:
            offsets_at = struct.unpack_from("<Q", head, 22)[0]
            width = 8
        else:
            width = 4
        if valid * 2 * width > size or offsets_at + valid * 2 * width > size:
            raise UnreadableFile(f"{path.name}: the TIA header declares {valid} images but the file holds "
                                 f"{human_bytes(size)}; it is truncated or corrupt")
        with open(path, "rb") as f:
            f.seek(offsets_at)
            first = struct.unpack("<Q" if width == 8 else "<I", f.read(width))[0]
            f.seek(first + (40 if kind == 0x4122 else 20))
            record = f.read(10)
        if kind == 0x4122:
            code, nx, ny = struct.unpack_from("<HII", record)
            shape = (valid, ny, nx)
        else:
            code, n = struct.unpack_from("<HI", record)
            shape = (valid, n)
    except struct.error:
        raise UnreadableFile(f"{path.name}: the TIA header is truncated") from None
    check_declared(path, shape, _SER_TYPES.get(code, "f8"), stored=size)


# ------------------------------------------------------------ parameters
def bounded(value: Any, name: str, low: float, high: float, *, unit: str = "", why: str = "",
            low_open: bool = False) -> float:
    """``value`` as a float if it is finite and in ``[low, high]`` (``(low, high]`` with
    ``low_open``); otherwise a ``ValueError`` that names the option and says why."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        span = f"{'above' if low_open else 'at least'} {low:g} and at most {high:g}{(' ' + unit) if unit else ''}"
        raise ValueError(f"{name} must be {span}{(' (' + why + ')') if why else ''}, got {value}")
    return number
