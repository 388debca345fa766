"""Synthetic STEM / PFM movies with exact ground truth (numpy + scipy only).

``SAMPLES`` maps each sample name to its generator; ``make_sample(name, seed,
**params)`` returns a dict of numpy arrays: ``data`` (float32; movies are
``(T, Y, X)``), ``scale`` (per axis), ``units`` (per axis), ``params`` (JSON of
every parameter) and the ground-truth arrays of that sample. Every value is a
plain or structured numpy array, so ``np.savez`` + ``np.load(allow_pickle=False)``
round-trips it. Keys per sample: ``docs/samples.md``.
"""

from __future__ import annotations

import inspect
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .domains import domain_movie
from .ferroic import ferroic
from .graphene import graphene_movie
from .pfm import pfm_switching
from .render import add_noise, normalise01, render_spots, scan_jitter
from .shift import gaussian_peaks_1d, island_lattice, shift_lattice, sines_1d

SAMPLES: dict[str, Callable[..., dict]] = {
    "graphene-movie": graphene_movie,
    "ferroic": ferroic,
    "pfm-switching": pfm_switching,
    "domain-movie": domain_movie,
    "shift-lattice": shift_lattice,
    "sines-1d": sines_1d,
}

DESCRIPTIONS = {
    "graphene-movie": "HAADF Si-doped graphene: hopping Si, growing holes, Stone-Wales defects, rotated grain",
    "ferroic": "BiFeO3-like HAADF: B-site off-centring in 4 polarisation variants, non-polar substrate",
    "pfm-switching": "PFM phase/amplitude movie: domains nucleate, grow and shrink back under a bias sweep",
    "domain-movie": "BaTiO3-like BF-STEM: needle 90-degree domains moving with bias, contaminant spots",
    "shift-lattice": "two-phase square lattice with a smooth order parameter (shift-VAE, paper 004)",
    "sines-1d": "5000 noisy sine segments with known phase mu and period sigma (shift-VAE, paper 004)",
}


def sample_parameters(name: str) -> dict:
    """Keyword parameters of a sample's generator and their defaults."""
    generator = _generator(name)
    return {
        p.name: p.default
        for p in inspect.signature(generator).parameters.values()
        if p.name != "seed" and p.default is not inspect.Parameter.empty
    }


def _generator(name: str) -> Callable[..., dict]:
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of: {', '.join(SAMPLES)}")
    return SAMPLES[name]


def make_sample(name: str, seed: int = 0, **params) -> dict:
    """Generate a sample by name.

    Parameters
    ----------
    name : str
        One of ``SAMPLES`` (graphene-movie, ferroic, pfm-switching,
        domain-movie, shift-lattice, sines-1d).
    seed : int
        Random seed; the same seed and parameters give identical arrays.
    **params
        Generator parameters (see ``sample_parameters(name)``).

    Returns
    -------
    dict of numpy arrays
        Always ``data``, ``scale``, ``units``, ``params``; plus the sample's
        ground truth (docs/samples.md).
    """
    generator = _generator(name)
    allowed = sample_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"sample {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(allowed)}"
        )
    return generator(seed, **params)


def save_sample(sample: dict, path: str | os.PathLike) -> Path:
    """Write a sample dict to ``path`` (.npz, deflate-compressed), atomically and reproducibly.

    The zip entries carry a fixed timestamp, so the same arrays give the same
    bytes (for the same zlib). Arrays are stored with ``allow_pickle=False``:
    read back with ``np.load(path, allow_pickle=False)``.
    """
    from ..io.files import atomic_write

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"output file must end in .npz, got {str(path)!r}")
    arrays = {key: np.asanyarray(value) for key, value in sample.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise ValueError(f"sample key {key!r} holds Python objects; it cannot be stored without pickle")

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, value, allow_pickle=False)

    return atomic_write(path, write)


def load_sample(path: str | os.PathLike) -> dict:
    """Read a sample .npz written by ``save_sample`` (or ``np.savez``) without unpickling."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


__all__ = [
    "load_sample",
    "save_sample",
    "DESCRIPTIONS",
    "SAMPLES",
    "add_noise",
    "domain_movie",
    "gaussian_peaks_1d",
    "ferroic",
    "graphene_movie",
    "island_lattice",
    "make_sample",
    "normalise01",
    "pfm_switching",
    "render_spots",
    "sample_parameters",
    "scan_jitter",
    "shift_lattice",
    "sines_1d",
]
