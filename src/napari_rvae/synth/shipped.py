"""The small pre-made samples shipped in ``sample_data/`` (instant loading in napari).

Regenerate them (from the repository root) with::

    python -m napari_rvae.synth.shipped sample_data

Each file is ``make_sample(name, seed=0, **SHIPPED[name])`` written by
``save_sample``; the same code gives bit-identical arrays.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import make_sample, save_sample

#: parameters of the shipped (small) version of each sample; seed is always 0
SHIPPED: dict[str, dict] = {
    "graphene-movie": {"frames": 5, "size": 256},
    "ferroic": {},
    "pfm-switching": {"frames": 20, "size": 128},
    "domain-movie": {"frames": 12, "size": 192},
    "shift-lattice": {},
    "sines-1d": {},
}


def sample_data_dir() -> Path | None:
    """The ``sample_data`` folder: inside the installed package (wheel) or at the repository root."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "sample_data", here.parents[3] / "sample_data"):
        if candidate.is_dir():
            return candidate
    return None


def shipped_path(name: str) -> Path | None:
    """Path of the shipped file for ``name`` if it exists, else ``None``."""
    folder = sample_data_dir()
    if folder is None:
        return None
    path = folder / f"{name}.npz"
    return path if path.is_file() else None


def write_shipped(folder: str | os.PathLike) -> list[Path]:
    """Generate every shipped sample into ``folder``; returns the written paths."""
    folder = Path(folder)
    written = []
    for name, params in SHIPPED.items():
        written.append(save_sample(make_sample(name, seed=0, **params), folder / f"{name}.npz"))
    return written


if __name__ == "__main__":  # pragma: no cover - exercised through the README command
    if len(sys.argv) != 2:
        print("usage: python -m napari_rvae.synth.shipped OUTPUT_FOLDER", file=sys.stderr)
        sys.exit(2)
    for path in write_shipped(sys.argv[1]):
        print(path)
