"""Valid small files of every readable format, and hostile mutations of them.

Used by the reader fuzz tests, the peak-memory test and ``scripts/hostile_matrix.py``.
Each writer makes a small file the way the format's own library (or its published
layout, for Igor ``.ibw`` and ``.mrc`` which have no Python writer) lays it out;
:func:`mutations` then truncates it, flips bytes, and inflates header integers —
the size fields a hostile or damaged file lies about.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real"

MOVIE = (np.random.default_rng(5).random((3, 24, 32)) * 1000).astype(np.float32)


def write_ibw(path: Path, data: np.ndarray) -> Path:
    """A version-5 Igor binary wave (little-endian) holding ``data`` (Igor's column-major order)."""
    data = np.asarray(data, dtype="<f4")
    igor = np.asfortranarray(data.T)  # axis 0 of the wave runs along x
    payload = igor.tobytes(order="F")
    n_dim = list(igor.shape) + [0] * (4 - igor.ndim)
    wave = bytearray(320)
    struct.pack_into("<IIIi h h", wave, 0, 0, 0, 0, int(data.size), 2, 0)  # next, dates, npnts, type NT_FP32
    struct.pack_into("<h", wave, 26, 1)  # whVersion
    wave[28:34] = b"wave0\x00"
    struct.pack_into("<4i", wave, 68, *n_dim)
    struct.pack_into("<4d", wave, 84, 1e-9, 1e-9, 1.0, 1.0)  # sfA: 1 nm pixels
    wave[152:168] = b"m\x00\x00\x00" * 4  # dimUnits
    header = bytearray(64)
    struct.pack_into("<hh l l l l 4l 4l l l l", header, 0, 5, 0, 320 + len(payload), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                     0, 0, 0)
    # Igor's checksum: the 16-bit sum over both headers (less the data's first 4 bytes) is 0
    body = bytes(header) + bytes(wave[:316])
    total = sum(struct.unpack(f"<{len(body) // 2}h", body)) & 0xFFFF
    struct.pack_into("<h", header, 2, np.int16(np.uint16((-total) & 0xFFFF)).item())
    path.write_bytes(bytes(header) + bytes(wave) + payload)
    return path


def write_mrc(path: Path, data: np.ndarray) -> Path:
    """An MRC-2014 file (mode 2, float32): 1024-byte header then (Z, Y, X) data."""
    data = np.asarray(data, dtype="<f4")
    nz, ny, nx = data.shape
    header = bytearray(1024)
    struct.pack_into("<3i i 3i 3i 3f 3f 3i 3f", header, 0, nx, ny, nz, 2, 0, 0, 0, nx, ny, nz,
                     float(nx), float(ny), float(nz), 90.0, 90.0, 90.0, 1, 2, 3,
                     float(data.min()), float(data.max()), float(data.mean()))
    header[208:212] = b"MAP "
    header[212:216] = b"\x44\x44\x00\x00"
    path.write_bytes(bytes(header) + data.tobytes())
    return path


def write_ser(path: Path, data: np.ndarray) -> Path:
    """A FEI TIA ``.ser`` series (version 0x0210) of float32 images, 0.1 nm pixels; TIA stores
    each image bottom row first."""
    data = np.asarray(data, dtype="<f4")
    frames, height, width = data.shape
    description, units = b"Number", b""
    dimension = (struct.pack("<IddiI", frames, 0.0, 1.0, 0, len(description)) + description
                 + struct.pack("<I", len(units)) + units)
    offsets_at = 30 + len(dimension)
    record_head = 40 + 2 + 8  # two calibrations, data type, array size x and y
    record = record_head + 4 * width * height + 8  # + the time tag
    first = offsets_at + 8 * frames
    data_offsets = [first + i * record for i in range(frames)]
    tag_offsets = [o + record_head + 4 * width * height for o in data_offsets]
    header = struct.pack("<HHHIIIIII", 0x4949, 0x0197, 0x0210, 0x4122, 0x4152, frames, frames, offsets_at, 1)
    body = b"".join(struct.pack("<ddIddIHII", 0.0, 1e-10, 0, 0.0, 1e-10, 0, 7, width, height)
                    + np.ascontiguousarray(frame[::-1]).tobytes() + struct.pack("<HHI", 0x4152, 0, 0) for frame in data)
    path.write_bytes(header + dimension + struct.pack(f"<{frames}I", *data_offsets)
                     + struct.pack(f"<{frames}I", *tag_offsets) + body)
    return path


def _rsciio_signal(data):
    return {
        "data": data,
        "axes": [
            {"name": "t", "size": data.shape[0], "scale": 1.0, "units": "s", "navigate": True, "offset": 0},
            {"name": "y", "size": data.shape[1], "scale": 0.1, "units": "nm", "navigate": False, "offset": 0},
            {"name": "x", "size": data.shape[2], "scale": 0.1, "units": "nm", "navigate": False, "offset": 0},
        ],
        "metadata": {"General": {"title": "haadf"}, "Signal": {"signal_type": ""}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False}, "learning_results": {},
        "models": {}, "package_info": {"name": "hyperspy", "version": "2.1"},
    }


def valid_files(folder: Path) -> dict[str, Path]:
    """Write one small valid file per format (and variant) into ``folder``; name → path.

    Real instrument files from ``../shared/real`` are added (read in place, never copied
    into the repository) when that folder exists.
    """
    import h5py
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    np.save(folder / "movie.npy", MOVIE)
    files["npy"] = folder / "movie.npy"
    np.save(folder / "image_u16.npy", MOVIE[0].astype(np.uint16))
    files["npy-u16"] = folder / "image_u16.npy"
    np.savez(folder / "sample.npz", data=MOVIE, scale=np.array([1.0, 0.1, 0.1]), units=np.array(["", "nm", "nm"]))
    files["npz"] = folder / "sample.npz"
    np.savez_compressed(folder / "packed.npz", data=MOVIE)
    files["npz-deflate"] = folder / "packed.npz"
    tifffile.imwrite(folder / "stack.tif", MOVIE, imagej=True, metadata={"axes": "TYX"})
    files["tif"] = folder / "stack.tif"
    tifffile.imwrite(folder / "packed.tiff", MOVIE, compression="zlib", photometric="minisblack")
    files["tif-zlib"] = folder / "packed.tiff"
    rgb = (np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(folder / "rgb.tif", rgb, photometric="rgb")
    files["tif-rgb"] = folder / "rgb.tif"
    with h5py.File(folder / "plain.h5", "w") as f:
        f.create_dataset("image", data=MOVIE).attrs["pixel_size"] = 0.1
    files["h5"] = folder / "plain.h5"
    with h5py.File(folder / "gzip.h5", "w") as f:
        f.create_dataset("image", data=MOVIE, compression="gzip", chunks=(1, 24, 32))
    files["h5-gzip"] = folder / "gzip.h5"
    with h5py.File(folder / "nsid.hdf5", "w") as f:
        g = f.create_group("Measurement_000/Channel_000")
        d = g.create_dataset("image", data=MOVIE)
        d.attrs["quantity"], d.attrs["units"], d.attrs["data_type"] = "phase", "deg", "IMAGE_STACK"
        for i, name in enumerate("tyx"):
            dim = g.create_dataset(name, data=np.arange(MOVIE.shape[i]) * 0.5)
            dim.make_scale(name)
            d.dims[i].attach_scale(dim)
    files["nsid"] = folder / "nsid.hdf5"
    try:
        from rsciio.emd import file_writer as emd_writer
        from rsciio.hspy import file_writer as hspy_writer

        hspy_writer(str(folder / "movie.hspy"), _rsciio_signal(MOVIE))
        files["hspy"] = folder / "movie.hspy"
        emd_writer(str(folder / "movie.emd"), _rsciio_signal(MOVIE))
        files["emd"] = folder / "movie.emd"
    except ImportError:
        pass
    files["ibw"] = write_ibw(folder / "wave.ibw", MOVIE[0])
    files["mrc"] = write_mrc(folder / "stack.mrc", MOVIE)
    files["ser"] = write_ser(folder / "series.ser", MOVIE)
    for name, rel in (("real-dm3", "stem/DMReader_Image_SI-Survey.dm3"), ("real-ibw", "pfm/IgorIBWReader_P0089OP0027.ibw"),
                      ("real-nsid", "pfm/PTO_Funakubo0001.h5"), ("real-tiff", "stem/re48.tiff")):
        if (REAL / rel).exists():
            files[name] = REAL / rel
    return files


BIG_INTS = (0x7FFFFFFF, 0x10000000, 0xFFFFFFFF, 0x00100000, 0x40000000)


def mutations(content: bytes, seed: int, n: int, header: int = 2048) -> list[tuple[str, bytes]]:
    """``n`` hostile variants of a valid file's bytes: truncations, random byte flips, and
    32-bit / 16-bit integers in the first ``header`` bytes replaced by huge values
    (the dimensions and sizes a hostile file declares)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, bytes]] = []
    size = len(content)
    limit = max(4, min(header, size) - 4)
    for i in range(n):
        kind = i % 4
        data = bytearray(content)
        if kind == 0:  # truncated anywhere (header, middle of the data, the last bytes)
            cut = int(rng.choice([rng.integers(1, min(size, 600)), rng.integers(1, size), size - rng.integers(1, 64)]))
            out.append((f"truncate@{cut}", bytes(data[:max(1, cut)])))
        elif kind == 1:  # a few random bytes of the header changed
            for _ in range(int(rng.integers(1, 6))):
                at = int(rng.integers(0, limit))
                data[at] = int(rng.integers(0, 256))
            out.append(("flip", bytes(data)))
        elif kind == 2:  # one 32-bit field inflated (either byte order)
            at = int(rng.integers(0, limit))
            value = int(rng.choice(BIG_INTS))
            data[at:at + 4] = struct.pack("<I" if rng.random() < 0.5 else ">I", value)
            out.append((f"int32@{at}={value:#x}", bytes(data)))
        else:  # a 16-bit field inflated
            at = int(rng.integers(0, limit))
            data[at:at + 2] = struct.pack("<H" if rng.random() < 0.5 else ">H", int(rng.choice([0x7FFF, 0xFFFF, 0x4000])))
            out.append((f"int16@{at}", bytes(data)))
    return out


HUGE = (400, 1024, 1024)  # 1.6 GB of float32 pixels, declared by files of a few kilobytes


def inflated_files(folder: Path) -> dict[str, Path]:
    """Small files that declare huge images: the structure is valid, only the sizes lie
    (or the data is a tiny compressed / never-written payload). name → path."""
    import zipfile

    import h5py
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    # .npy whose header declares 400 × 1024² float32 but holds 1 kB of data
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.float32))
    header["shape"] = HUGE
    with open(folder / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\x00" * 1024)
    files["npy-declares-1.6GB"] = folder / "huge.npy"
    # .npz: the same member, stored and deflated; and an honest deflated array of zeros
    with zipfile.ZipFile(folder / "huge.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.npy", (folder / "huge.npy").read_bytes())
    files["npz-declares-1.6GB"] = folder / "huge.npz"
    with zipfile.ZipFile(folder / "zeros.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("data.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, dict(header, shape=(100, 1024, 1024)))
            block = b"\x00" * (1 << 22)
            for _ in range(100):
                member.write(block)
    files["npz-deflated-400MB-zeros"] = folder / "zeros.npz"
    # HDF5: a chunked gzip dataset of zeros never written (fill value) and one really written
    with h5py.File(folder / "fill.h5", "w") as f:
        f.create_dataset("image", shape=HUGE, dtype="f4", chunks=(1, 256, 256), compression="gzip")
    files["h5-unwritten-1.6GB"] = folder / "fill.h5"
    with h5py.File(folder / "zeros.h5", "w") as f:
        d = f.create_dataset("image", shape=(64, 1024, 1024), dtype="f4", chunks=(1, 1024, 1024), compression="gzip",
                             compression_opts=9)
        for t in range(64):
            d[t] = 0.0
    files["h5-gzip-256MB-zeros"] = folder / "zeros.h5"
    with h5py.File(folder / "nsid_fill.h5", "w") as f:
        d = f.create_dataset("Measurement_000/Channel_000/image", shape=HUGE, dtype="f4", chunks=(1, 256, 256))
        d.attrs["quantity"], d.attrs["data_type"] = "phase", "IMAGE_STACK"
    files["nsid-unwritten-1.6GB"] = folder / "nsid_fill.h5"
    try:
        from rsciio.hspy import file_writer as hspy_writer

        hspy_writer(str(folder / "fill.hspy"), _rsciio_signal(MOVIE))
        with h5py.File(folder / "fill.hspy", "r+") as f:
            name = next(n for n in _h5_names(f) if n.endswith("/data"))
            attrs = dict(f[name].attrs)
            del f[name]
            d = f.create_dataset(name, shape=HUGE, dtype="f4", chunks=(1, 256, 256))
            d.attrs.update(attrs)
        files["hspy-unwritten-1.6GB"] = folder / "fill.hspy"
    except ImportError:
        pass
    # TIFF: a 20000² zlib page of zeros (1.6 GB of float32 once read), and a page whose size tags lie
    with tifffile.TiffWriter(folder / "zeros.tif") as tif:
        tif.write(shape=(1, 20000, 20000), dtype="u1", compression="zlib",
                  data=(np.zeros((20000, 20000), np.uint8) for _ in range(1)))
    files["tif-zlib-400MB-zeros"] = folder / "zeros.tif"
    tifffile.imwrite(folder / "liar.tif", MOVIE[0])
    files["tif-size-tags-lie"] = _patch_tiff_size(folder / "liar.tif", 60000, 60000)
    # Igor .ibw whose dimensions say 400 × 1024² with 1 kB of data (the issue's 483-byte file)
    wave = bytearray(write_ibw(folder / "huge.ibw", np.zeros((4, 4), np.float32)).read_bytes())
    struct.pack_into("<i", wave, 64 + 12, HUGE[0] * HUGE[1] * HUGE[2])
    struct.pack_into("<4i", wave, 64 + 68, HUGE[2], HUGE[1], HUGE[0], 0)
    struct.pack_into("<l", wave, 4, 320 + 4 * HUGE[0] * HUGE[1] * HUGE[2] % 2**31)
    (folder / "huge.ibw").write_bytes(bytes(wave))
    files["ibw-declares-1.6GB"] = folder / "huge.ibw"
    note = bytearray(write_ibw(folder / "note.ibw", np.zeros((4, 4), np.float32)).read_bytes())
    struct.pack_into("<l", note, 12, 2**31 - 1)  # noteSize
    (folder / "note.ibw").write_bytes(bytes(note))
    files["ibw-note-2GB"] = folder / "note.ibw"
    ser = bytearray(write_ser(folder / "huge.ser", MOVIE).read_bytes())
    struct.pack_into("<II", ser, 14, 2**31 - 1, 2**31 - 1)  # Total and ValidNumberElements: 2 G images
    (folder / "huge.ser").write_bytes(bytes(ser))
    files["ser-declares-2G-images"] = folder / "huge.ser"
    mrc = bytearray(write_mrc(folder / "huge.mrc", MOVIE).read_bytes())
    struct.pack_into("<3i", mrc, 0, 1024, 1024, 400)
    (folder / "huge.mrc").write_bytes(bytes(mrc))
    files["mrc-declares-1.6GB"] = folder / "huge.mrc"
    return files


def _h5_names(f) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names


def _patch_tiff_size(path: Path, width: int, height: int) -> Path:
    """Rewrite ImageWidth / ImageLength of the first page of a little-endian classic TIFF."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    n = struct.unpack_from("<H", data, ifd)[0]
    for i in range(n):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<HHIH", data, at, tag, 3, 1, value & 0xFFFF)
            else:
                struct.pack_into("<HHII", data, at, tag, 4, 1, value)
    path.write_bytes(bytes(data))
    return path
