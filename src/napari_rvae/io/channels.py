"""Choosing a channel (``--channel NAME|INDEX``) and describing movies (``napari-rvae info``)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .movie import Movie, read_movie


# ------------------------------------------------------------ channels
#: words that name a PFM phase channel, best first
PHASE_WORDS = ("phase",)


def find_channel(movies: Sequence[Movie], channel: str | int | None = None, *, prefer: str | None = None) -> int:
    """Index of the channel a command should use.

    Parameters
    ----------
    channel : str, int or None
        An index (``2``, also as text ``"2"``) or a channel name (case-insensitive; an
        exact match first, then the only channel containing it, e.g. ``phase`` finds
        ``PhaseRetrace``).
    prefer : str, optional
        With ``channel=None``: a word to look for (``"phase"`` for walls); the first
        channel whose name contains it and is not a NAP (lift-mode) pass. Otherwise 0.

    Raises
    ------
    ValueError
        An index out of range or a name no channel has, listing the channels.
    """
    names = [m.channel or m.name for m in movies]
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    if channel is None or (isinstance(channel, str) and not channel.strip()):
        if prefer:
            hits = [i for i, n in enumerate(names) if prefer.lower() in n.lower()]
            direct = [i for i in hits if not names[i].lower().startswith("nap")]
            if direct or hits:
                return (direct or hits)[0]
        return 0
    if isinstance(channel, str) and channel.strip().lstrip("-").isdigit():
        channel = int(channel)
    if isinstance(channel, (int, np.integer)):
        if not 0 <= int(channel) < len(movies):
            raise ValueError(f"channel {channel}: the movie has {len(movies)} channel(s): {listing}")
        return int(channel)
    wanted = str(channel).strip().lower()
    exact = [i for i, n in enumerate(names) if n.lower() == wanted]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if wanted in n.lower()]
    direct = [i for i in partial if not names[i].lower().startswith("nap")]
    if len(direct) == 1 or (len(partial) == 1):
        return (direct or partial)[0]
    if partial:
        raise ValueError(f"channel {channel!r} matches several channels ({', '.join(names[i] for i in partial)}); "
                         "give the full name or the index")
    raise ValueError(f"channel {channel!r}: no channel of that name; the channels are: {listing}")


def select_movie(path: Any, channel: str | int | None = None, *, prefer: str | None = None,
                 register: bool = False) -> Movie:
    """Read ``path`` (a file, folder, glob or list of files) and return the chosen channel."""
    movies = read_movie(path, register=register)
    return movies[find_channel(movies, channel, prefer=prefer)]


# ------------------------------------------------------------ describing
def _value_range(movie: Movie) -> str:
    sample = movie.frame(0) if movie.lazy else movie.data
    finite = np.isfinite(sample)
    if not finite.any():
        return "no finite values"
    lo, hi = float(np.min(sample[finite])), float(np.max(sample[finite]))
    text = f"{lo:.6g} … {hi:.6g}" + (" (frame 0; the file is opened lazily)" if movie.lazy else "")
    nan_count = int(sample.size - finite.sum())
    return text + (f"   NaN pixels: {nan_count}" if nan_count else "")


def describe_movie(movie: Movie) -> str:
    """A few lines: shape, dtype, pixel size, frames, value range."""
    t, y, x = movie.scale
    tu, yu, xu = movie.units
    lines = [
        f"{movie.name}",
        f"  shape (t, y, x): {tuple(int(s) for s in movie.data.shape)}   dtype: {movie.data.dtype}",
        f"  frames: {movie.n_frames}   frame interval: {t:g} {tu or 'frame'}",
        f"  pixel size: {y:g} × {x:g} {yu}" + ("" if xu == yu else f" / {xu}"),
        f"  value range: {_value_range(movie)}",
    ]
    for note in movie.metadata.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def describe_movies(movies: Sequence[Movie], source: str) -> str:
    """What ``napari-rvae info`` prints: channels, frames and calibration, each on its own."""
    first = movies[0]
    meta = first.metadata
    t, py, px = first.scale
    tu, yu, _ = first.units
    n_t, n_y, n_x = (int(s) for s in first.data.shape)
    lines = [f"{source} ({meta.get('format', '?')})"]
    lines.append(f"  channels ({len(movies)}):")
    for i, m in enumerate(movies):
        unit = m.metadata.get("value_unit")
        lines.append(f"    {i}: {m.channel or m.name}" + (f" [{unit}]" if unit else "") + f"   values {_value_range(m)}")
    files = meta.get("files")
    frames = f"  frames: {n_t}" + (f" (one per file, {len(files)} files)" if files else "")
    lines.append(frames + (f"   frame interval: {t:g} {tu}" if tu else ""))
    lines.append(f"  frame size: {n_y} × {n_x} px   shape (t, y, x): ({n_t}, {n_y}, {n_x})   dtype: {first.data.dtype}")
    if yu == "pixel":
        lines.append("  calibration: none in the file; positions are in pixels")
    else:
        lines.append(f"  calibration: pixel size {py:.4g} × {px:.4g} {yu}, field {py * n_y:.4g} × {px * n_x:.4g} {yu} "
                     f"(from {meta.get('calibration', 'the file')})")
    shifts = meta.get("drift_shifts")
    if shifts:
        worst = max(float(np.hypot(*s)) for s in shifts)
        lines.append(f"  drift: registered, largest shift {worst:.2f} px")
    notes = []
    for m in movies:
        for note in m.metadata.get("notes", []):
            if note not in notes:
                notes.append(note)
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)


def describe_file(path: Any) -> str:
    """Describe a file (or a sequence of files) for ``napari-rvae info``."""
    movies = read_movie(path)
    source = str(path) if isinstance(path, (str, os.PathLike)) else f"{len(list(path))} files"
    return describe_movies(movies, source)
