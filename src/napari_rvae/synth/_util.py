"""Small helpers shared by the synthetic generators (numpy + scipy only)."""

from __future__ import annotations

import json

import numpy as np
from scipy import ndimage


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """Return ``int(value)`` or raise ``ValueError`` naming the argument."""
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if ivalue != value or ivalue < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return ivalue


def check_range(name: str, value, lo: float, hi: float) -> float:
    """Return ``float(value)`` if ``lo <= value <= hi`` else raise ``ValueError``."""
    try:
        fvalue = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}") from None
    if not (lo <= fvalue <= hi) or not np.isfinite(fvalue):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return fvalue


def rngs(seed: int, n: int = 2) -> list[np.random.Generator]:
    """Independent random streams for one seed (structure, noise, …).

    Using separate streams keeps the ground truth identical whether or not
    noise is rendered.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return [np.random.default_rng([int(seed), k]) for k in range(n)]


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-correlated random field, zero mean, unit standard deviation.

    ``sigma`` is the correlation length in pixels. Periodic boundaries ('wrap').
    """
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def triangle_bias(frames: int, amplitude: float = 1.0, cycles: float = 1.0) -> np.ndarray:
    """Triangular bias sweep ``0 → +A → −A → 0`` (``cycles`` times) over ``frames`` frames.

    Returns a float64 array of length ``frames``.
    """
    t = np.arange(frames, dtype=np.float64) / max(frames, 1) * cycles
    phase = (t + 0.25) % 1.0  # start at 0 going up
    return amplitude * (4.0 * np.abs(phase - 0.5) - 1.0) * -1.0


def params_json(params: dict) -> np.ndarray:
    """The generator parameters as a 0-d unicode array (round-trips through .npz without pickle)."""

    def plain(v):
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (np.floating,)):
            return float(v)
        if isinstance(v, (tuple, list, np.ndarray)):
            return [plain(x) for x in v]
        return v

    return np.asarray(json.dumps({k: plain(v) for k, v in params.items()}, sort_keys=True))


def units_array(*units: str) -> np.ndarray:
    """Units per axis as a unicode array."""
    return np.asarray(units, dtype="U16")
