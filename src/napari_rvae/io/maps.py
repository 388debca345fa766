"""Segmenter probability maps on disk: one ``.npz`` that also opens as a movie with named channels.

``write_probability_map(path, maps)`` stores a ``(T, C, Y, X)`` map as arrays named
``atoms`` (1 − background: the atom probability windows are cut from), ``background``
and, for several atom classes, ``class 1`` … ``class C-1``; each ``(T, Y, X)`` float32.
``read_atom_probability(path)`` returns the ``atoms`` image. Any reader of this
package opens the file as a movie whose channels carry those names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import atomic_write

ATOMS = "atoms"


def write_probability_map(path: str | os.PathLike, maps: np.ndarray) -> Path:
    """Write ``maps`` ``(T, C, Y, X)`` (channel 0 = background) atomically; returns the path."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4 or maps.shape[1] < 2:
        raise ValueError(f"maps: expected (T, C, Y, X) probabilities with C >= 2, got shape {maps.shape}")
    arrays = {ATOMS: 1.0 - maps[:, 0], "background": maps[:, 0]}
    if maps.shape[1] > 2:
        arrays.update({f"class {c}": maps[:, c] for c in range(1, maps.shape[1])})
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: numpy would append .npz to a path
            np.savez_compressed(fh, **arrays)

    return atomic_write(Path(path), write)


def read_atom_probability(path: str | os.PathLike) -> np.ndarray:
    """The atom probability ``(T, Y, X)`` float32 of a map written by :func:`write_probability_map`
    (or of any movie file: its first channel)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        from .limits import check_npz

        check_npz(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                if ATOMS in archive.files:
                    image = np.asarray(archive[ATOMS], dtype=np.float32)
                    return image[None] if image.ndim == 2 else image
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the probability map ({err})") from None
    from .movie import select_movie

    return np.asarray(select_movie(path, None).data, dtype=np.float32)
