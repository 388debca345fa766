"""Several files of one area as one movie, with optional drift registration.

A PFM or STEM movie is often saved one scan per file. :func:`read_sequence` opens a folder,
a glob pattern or a list of files as one movie per channel, one frame per file (files that
are movies themselves add all their frames), in natural order (``scan2`` before
``scan10``). Every file must have the same frame size and the same channels (by name).

Drift between scans is removed on request (``register=True``): each frame is aligned to the
previous one by phase correlation with sub-pixel precision
(``skimage.registration.phase_cross_correlation``, upsampling 20×) on a levelled reference
channel (height / topography when the file has one: it does not switch), the shifts are
accumulated, and every channel is shifted by them. The area that leaves the field becomes
NaN. The shifts (pixels, ``(dy, dx)`` per frame, frame 0 = (0, 0)) are stored in each
movie's metadata as ``drift_shifts``.

Files larger together than :func:`~.lazy.lazy_bytes` make a lazy movie: each file is read once
to check it, then again only when its frames are used (one dask task per file); registration
then measures the drift frame by frame and shifts the frames chunk by chunk.
"""

from __future__ import annotations

import glob
import os
import re
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .lazy import lazy_array, lazy_bytes, stacked_files
from .movie import Movie, UnreadableFile, read_file


def natural_key(path: Path | str) -> list:
    """Sort key that orders numbers by value: ``scan2`` < ``scan10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def is_sequence(path: Any) -> bool:
    """True for a list/tuple of paths, a folder, or a glob pattern."""
    if isinstance(path, (list, tuple)):
        return len(path) != 1 or is_sequence(path[0])
    text = str(path)
    if Path(text).suffix.lower() == ".zarr" and Path(text).is_dir():
        return False  # a zarr store is one movie, though a folder
    return Path(text).is_dir() or (any(c in text for c in "*?[") and not Path(text).exists())


def sequence_files(path: Any) -> list[Path]:
    """The files of a sequence, naturally sorted: a list (kept in natural order), a folder
    (every readable file in it) or a glob pattern."""
    from .formats import READERS

    if isinstance(path, (list, tuple)):
        files: list[Path] = []
        for p in path:
            files += sequence_files(p) if is_sequence(p) else [Path(p)]
    elif Path(str(path)).is_dir():
        folder = Path(str(path))
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READERS and not p.name.startswith(".")]
        if not files:
            raise UnreadableFile(f"{folder}: the folder holds no file napari-rvae reads ({' '.join(sorted(READERS))})")
        suffixes = {p.suffix.lower() for p in files}
        if len(suffixes) > 1:
            raise UnreadableFile(f"{folder}: the folder mixes file types ({', '.join(sorted(suffixes))}); "
                                 "give the files of one movie, e.g. a glob such as 'folder/*.h5'")
    else:
        files = [Path(p) for p in glob.glob(os.path.expanduser(str(path)))]
        if not files:
            raise UnreadableFile(f"{path}: no file matches this pattern")
    return sorted(dict.fromkeys(files), key=natural_key)


def read_sequence(path: Any, *, register: bool = False, reference: str | int | None = None) -> list[Movie]:
    """Open several files as one movie per channel (see the module docstring).

    Parameters
    ----------
    path : list of paths, folder or glob pattern
    register : bool
        Remove drift between frames by sub-pixel phase correlation.
    reference : str or int, optional
        Channel used to measure drift (name or index); default the height / topography
        channel when there is one, else the first.

    Raises
    ------
    ValueError
        Files of different frame sizes or channels, naming the first file that differs.
    """
    from .movie import find_channel

    files = sequence_files(path)
    lazy = sum(f.stat().st_size for f in files) > lazy_bytes()
    # a lazy sequence keeps only each file's description here (its pixels are read again, frame
    # by frame, when used); an in-memory one keeps the pixels
    per_file = [read_file(f) if not lazy else [_described(m) for m in read_file(f)] for f in files]
    first = per_file[0]
    names = [m.channel or "" for m in first]
    shape = first[0].data.shape[1:]
    for f, movies in zip(files[1:], per_file[1:]):
        other = [m.channel or "" for m in movies]
        if len(other) != len(names):
            raise UnreadableFile(f"{f.name}: {len(other)} channel(s) ({', '.join(other)}), but {files[0].name} has "
                                 f"{len(names)} ({', '.join(names)}); a movie's files must hold the same channels")
        if sorted(other) != sorted(names):
            raise UnreadableFile(f"{f.name}: channels {', '.join(other)} differ from {files[0].name}'s "
                                 f"({', '.join(names)})")
        if movies[0].data.shape[1:] != shape:
            raise UnreadableFile(f"{f.name}: frames of {movies[0].data.shape[1]}×{movies[0].data.shape[2]} px, but "
                                 f"{files[0].name} has {shape[0]}×{shape[1]} px; a movie's files must have one frame size")
    notes: list[str] = []
    sizes = {tuple(np.round(m[0].scale[1:], 9)) + (m[0].units[1],) for m in per_file}
    if len(sizes) > 1:
        notes.append(f"the files give different pixel sizes ({len(sizes)} kinds); the first file's is used")
    stacks = []
    for c, name in enumerate(names):
        if lazy:
            shapes = [tuple(movies[0].data.shape) for movies in per_file]
            stacks.append(lazy_array(stacked_files(partial(file_channel, channel=name), files, shapes)))
            continue
        frames = [np.asarray(movies[[m.channel or "" for m in movies].index(name)].data, dtype=np.float32)
                  for movies in per_file]
        stacks.append(np.concatenate(frames, axis=0))
    file_of_frame = [str(f) for f, movies in zip(files, per_file) for _ in range(movies[0].n_frames)]
    shifts = None
    if register and stacks[0].shape[0] > 1:
        ref = find_channel(first, reference, prefer=None) if reference is not None else _topography_channel(names)
        shifts = drift_shifts(stacks[ref])
        stacks = [(_lazy_shift if lazy else shift_frames)(s, shifts, periodic=_period(first[c])) for c, s in enumerate(stacks)]
        notes.append(f"drift registered on channel {names[ref] or 0}: largest shift "
                     f"{float(np.max(np.hypot(*shifts.T))):.2f} px")
    stem = os.path.commonprefix([f.stem for f in files]).rstrip("_- ") or files[0].stem
    out = []
    for m, stack in zip(first, stacks):
        meta = dict(m.metadata)
        meta["source"] = str(files[0].parent)
        meta["files"] = [str(f) for f in files]
        meta["frame_files"] = file_of_frame
        if shifts is not None:
            meta["drift_shifts"] = [[float(dy), float(dx)] for dy, dx in shifts]
        if notes:
            meta["notes"] = list(meta.get("notes", [])) + notes
        out.append(Movie(data=stack, name=f"{stem} {m.channel}" if m.channel else stem, scale=m.scale, units=m.units,
                         metadata=meta))
    return out


class _Shape:
    """What a lazy sequence keeps of a file's movie while checking the files: shape and dtype."""

    def __init__(self, data: Any):
        self.shape, self.dtype = tuple(int(s) for s in data.shape), data.dtype


def _described(movie: Movie) -> Movie:
    return Movie(data=_Shape(movie.data), name=movie.name, scale=movie.scale, units=movie.units, metadata=movie.metadata)


def file_channel(path: Path, channel: str = "") -> np.ndarray:
    """The frames ``(T, Y, X)`` float32 of one channel of one file of a sequence (read when a lazy
    sequence needs them, in whichever process computes them)."""
    movies = read_file(path)
    names = [m.channel or "" for m in movies]
    return np.asarray(movies[names.index(channel)].data, dtype=np.float32)


def _shift_block(block: np.ndarray, shifts: np.ndarray, periodic: float | None, block_info: Any = None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0]
    return shift_frames(block, shifts[start:start + len(block)], periodic=periodic)


def _lazy_shift(stack: Any, shifts: np.ndarray, *, periodic: float | None = None) -> Any:
    """:func:`shift_frames` on a dask movie, chunk by chunk."""
    return stack.map_blocks(_shift_block, shifts=np.asarray(shifts), periodic=periodic, dtype=np.float32)


def _topography_channel(names: Sequence[str]) -> int:
    for word in ("height", "topo", "zsensor"):
        for i, n in enumerate(names):
            if word in n.lower() and not n.lower().startswith("nap"):
                return i
    return 0


def _period(movie: Movie) -> float | None:
    unit = str(movie.metadata.get("value_unit") or "").lower()
    if "phase" in (movie.channel or "").lower() or unit in ("deg", "°", "degree", "degrees", "rad"):
        return 2 * np.pi if unit == "rad" else 360.0
    return None


def _levelled(frame: np.ndarray) -> np.ndarray:
    """A frame prepared for correlation: NaN filled, plane and line offsets removed, tapered edges."""
    f = np.where(np.isfinite(frame), frame, np.nanmedian(frame)).astype(np.float64)
    f = f - np.median(f, axis=1, keepdims=True)
    yy, xx = np.mgrid[: f.shape[0], : f.shape[1]]
    design = np.stack([np.ones(f.size), yy.ravel(), xx.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, f.ravel(), rcond=None)
    f = f - (design @ coef).reshape(f.shape)
    window = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1]))
    return f * window


def drift_shifts(stack: np.ndarray, *, upsample: int = 20) -> np.ndarray:
    """Cumulative ``(dy, dx)`` shift (pixels) that aligns each frame of ``stack`` with frame 0.

    Each frame is registered to the previous one (scans of one area change little from one
    to the next, even when domains switch), by sub-pixel phase correlation; the steps add up.
    """
    from skimage.registration import phase_cross_correlation

    shifts = np.zeros((len(stack), 2))  # frame by frame: a lazy movie is read one frame at a time
    previous = _levelled(np.asarray(stack[0], dtype=np.float32))
    for t in range(1, len(stack)):
        current = _levelled(np.asarray(stack[t], dtype=np.float32))
        step, _, _ = phase_cross_correlation(previous, current, upsample_factor=upsample, normalization=None)
        shifts[t] = shifts[t - 1] + step
        previous = current
    return shifts


def shift_frames(stack: np.ndarray, shifts: np.ndarray, *, periodic: float | None = None) -> np.ndarray:
    """Shift every frame by its ``(dy, dx)`` (linear interpolation; outside the field → NaN).

    ``periodic`` (e.g. 360 for a phase in degrees) shifts the angle's cosine and sine, so a
    wrapped phase is not averaged across its seam.
    """
    from scipy import ndimage

    out = np.empty_like(stack, dtype=np.float32)
    for t, (frame, (dy, dx)) in enumerate(zip(stack, shifts)):
        if dy == 0 and dx == 0:
            out[t] = frame
            continue
        if periodic:
            angle = np.asarray(frame, np.float64) * (2 * np.pi / periodic)
            c = ndimage.shift(np.cos(angle), (dy, dx), order=1, cval=np.nan)
            s = ndimage.shift(np.sin(angle), (dy, dx), order=1, cval=np.nan)
            low = float(np.nanmin(frame))
            moved = np.mod(np.arctan2(s, c) * periodic / (2 * np.pi) - low, periodic) + low
        else:
            moved = ndimage.shift(np.asarray(frame, np.float64), (dy, dx), order=1, cval=np.nan)
        out[t] = moved
    return out
