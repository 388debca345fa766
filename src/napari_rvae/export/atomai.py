"""AtomAI-style outputs: the per-frame coordinate dictionary and the window stack.

AtomAI's tools pass atom positions as a dictionary ``{frame: array (N, 3)}`` whose columns are
``(row, column, class)`` in pixels, and windows as an ``(N, w, w)`` stack with the centres
(``com``, ``(N, 2)`` row, column) and ``frames`` of the windows beside it. These functions write
exactly that from a sites table (and a movie for the windows), in files that load without
pickle: ``coordinates.npz`` (one array per frame, key = frame number), ``windows.npy``,
``windows_com.npy``, ``windows_frames.npy`` and ``windows_rows.npy`` (the row of each window's
site in the sites table).

In Python::

    coordinates = {int(k): v for k, v in np.load("coordinates.npz").items()}
    windows = np.load("windows.npy")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.files import atomic_write
from ..io.sites import validate_sites


def atomai_coordinates(sites: pd.DataFrame, *, class_column: str = "class") -> dict[int, np.ndarray]:
    """``{frame: float64 array (N, 3)}`` with columns ``(y, x, class)`` (pixels), frames in order.

    Every frame from 0 to the last one with sites is present (an empty ``(0, 3)`` array where a
    frame has none), as AtomAI expects one entry per image of the stack.
    """
    table = validate_sites(sites)
    if class_column not in table.columns:
        raise ValueError(f"sites: no {class_column!r} column to use as the atom class")
    frames = table["frame"].to_numpy(dtype=np.int64)
    if len(frames) and frames.min() < 0:
        raise ValueError("sites: frame numbers must be ≥ 0")
    values = np.column_stack([table["y"].to_numpy(np.float64), table["x"].to_numpy(np.float64),
                              table[class_column].to_numpy(np.float64)]) if len(table) else np.zeros((0, 3))
    last = int(frames.max()) if len(frames) else -1
    return {frame: values[frames == frame] for frame in range(last + 1)}


def save_atomai(folder: str | os.PathLike, sites: pd.DataFrame, movie=None, window: int | None = None,
                **cut_options) -> dict[str, Path]:
    """Write ``coordinates.npz`` and, given a movie and a window size, the window stack.

    Parameters
    ----------
    folder : path
        Output folder (created).
    sites : DataFrame
        A sites table (``frame, y, x``, ``class``).
    movie : array (T, Y, X), optional
        Images to cut windows from (raw frames or a probability map).
    window : int, optional
        Window side in pixels; windows crossing the border are dropped, as AtomAI does.
    cut_options
        Passed to :func:`napari_rvae.patches.cut_windows` (``classes``, ``normalisation`` …).

    Returns
    -------
    dict of name → path written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    coordinates = atomai_coordinates(sites)
    written = {"coordinates": atomic_write(folder / "coordinates.npz", lambda p: _save_npz(
        p, {str(frame): array for frame, array in coordinates.items()}))}
    if movie is None and window is None:
        return written
    if movie is None or window is None:
        raise ValueError("windows: give both the movie and the window size (or neither)")
    from ..patches import cut_windows

    cut = cut_windows(movie, validate_sites(sites), int(window), **cut_options)
    for name, array in (("windows", cut.windows.astype(np.float32)),
                        ("windows_com", cut.centres.astype(np.float64)),
                        ("windows_frames", cut.frames.astype(np.int64)),
                        ("windows_rows", cut.rows.astype(np.int64))):
        written[name] = atomic_write(folder / f"{name}.npy", lambda p, a=array: _save_npy(p, a))
    return written


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
