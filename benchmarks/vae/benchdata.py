"""Deterministic windows to measure on: the recipe of the reference benchmark.

``N`` windows centred on an atom of a square lattice (constant ``a`` pixels,
Gaussian atoms of width ``sigma``) with a random rotation, a random sub-pixel
offset, 5 % amplitude jitter, additive noise and one of four variants of the
centre atom (0 perfect, 1 vacancy, 2 brighter and wider dopant, 3 displaced
by 0.3·a along the lattice x axis). The random draws come in the order the
reference generator documents, so :func:`fingerprint` of
``bench_windows(20000, 28, seed=0)`` is compared with the reference value
``REFERENCE_FINGERPRINT`` in every benchmark run.
"""

from __future__ import annotations

import hashlib

import numpy as np

REFERENCE_FINGERPRINT = "1fc0dc27ea07eb96"  # synth.make_patches(20000, 28, seed=0) of the reference benchmark


def bench_windows(n: int = 20000, size: int = 28, seed: int = 0, a: float = 7.0, sigma: float = 1.2,
                  max_shift: float = 1.5, noise: float = 0.05, chunk: int = 2000):
    """Return ``(windows (n, size, size) float32 in [0, 1], variant (n,), angle (n,) radians)``."""
    rng = np.random.default_rng(seed)
    variant = rng.integers(0, 4, n)
    angle = rng.uniform(-np.pi, np.pi, n)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    k = np.arange(-4, 5, dtype=np.float64)
    rows, cols = np.meshgrid(k, k, indexing="ij")
    lattice = np.stack([rows.ravel(), cols.ravel()], axis=-1) * a  # (K, 2) (row, col) pixels
    centre = int(np.argmin(np.abs(lattice).sum(axis=1)))
    jitter = 1.0 + 0.05 * rng.standard_normal((n, len(lattice)))
    noise_images = noise * rng.standard_normal((n, size, size))
    pixel = np.arange(size, dtype=np.float64) - size // 2
    images = np.empty((n, size, size), dtype=np.float64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        cos, sin = np.cos(angle[s:e]), np.sin(angle[s:e])
        rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (m, 2, 2)
        positions = np.einsum("mab,kb->mka", rotation, lattice)
        amplitude = jitter[s:e].copy()
        width = np.full(amplitude.shape, sigma)
        v = variant[s:e]
        amplitude[v == 1, centre] = 0.0
        amplitude[v == 2, centre] *= 1.8
        width[v == 2, centre] *= 1.25
        positions[v == 3, centre] += 0.3 * a * rotation[v == 3, :, 0]
        positions += shift[s:e, None, :]
        # an isotropic Gaussian is a product of a row profile and a column profile
        inverse = 1.0 / (2.0 * width**2)
        along_rows = np.exp(-((pixel[None, :, None] - positions[:, None, :, 0]) ** 2) * inverse[:, None, :])
        along_cols = np.exp(-((pixel[None, :, None] - positions[:, None, :, 1]) ** 2) * inverse[:, None, :])
        images[s:e] = np.einsum("mrk,mck->mrc", along_rows * amplitude[:, None, :], along_cols)
    images += noise_images
    images = (images - images.min()) / (images.max() - images.min())
    return images.astype(np.float32), variant, angle


def fingerprint(x: np.ndarray) -> str:
    """First 16 hex digits of SHA-256 over shape, dtype and bytes (the reference's definition)."""
    h = hashlib.sha256()
    h.update(str((x.shape, str(x.dtype))).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:16]
