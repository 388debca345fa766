"""Loadings (or any per-frame quantity) against an applied bias: sweeps, loops, areas.

Paper 002 plots the NMF loadings of the per-frame latent densities against
the bias applied during an in-situ switching experiment; switching with
memory shows as a hysteresis loop. The bias per frame comes from a user CSV
(:func:`read_bias`) or a synthetic sample's ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


def sweep_direction(bias: np.ndarray) -> np.ndarray:
    """+1 where the bias rises, -1 where it falls (turning points keep the last direction)."""
    bias = np.asarray(bias, dtype=np.float64).ravel()
    step = np.diff(bias)
    direction = np.sign(np.concatenate([step[:1], step])) if len(bias) > 1 else np.ones(len(bias))
    for i in range(len(direction)):  # flat steps inherit the previous direction
        if direction[i] == 0:
            direction[i] = direction[i - 1] if i else 1
    return direction.astype(np.int64)


def hysteresis_loop(loadings: np.ndarray, bias: np.ndarray, frames: np.ndarray | None = None) -> pd.DataFrame:
    """Tidy table of loadings against bias: ``frame, bias, sweep, loading0 …``.

    ``sweep`` is ``"up"`` or ``"down"`` (:func:`sweep_direction`).
    """
    loadings = np.asarray(loadings, dtype=np.float64)
    loadings = loadings[:, None] if loadings.ndim == 1 else loadings
    bias = np.asarray(bias, dtype=np.float64).ravel()
    if len(bias) != len(loadings):
        raise ValueError(f"bias: {len(bias)} values for {len(loadings)} frames; attach one bias per frame")
    table = pd.DataFrame({
        "frame": np.arange(len(bias)) if frames is None else np.asarray(frames),
        "bias": bias,
        "sweep": np.where(sweep_direction(bias) > 0, "up", "down"),
    })
    for k in range(loadings.shape[1]):
        table[f"loading{k}"] = loadings[:, k]
    return table


def loop_area(bias: np.ndarray, values: np.ndarray, kind: str = "signed", n_bins: int | None = None) -> float:
    """Area enclosed by a curve of ``values`` against ``bias`` (units: bias × value).

    ``kind="signed"``: shoelace formula over the path in frame order, closed
    back to its start; positive for a counter-clockwise loop, ≈ 0 when up-
    and down-sweeps retrace each other. ``kind="absolute"``: ∫ |up − down| d
    bias, with each sweep averaged in ``n_bins`` bias bins over the range both
    sweeps cover (noise adds a small positive amount).
    """
    bias = np.asarray(bias, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if bias.shape != values.shape or len(bias) < 3:
        raise ValueError("bias and values: need the same length, at least 3 frames")
    if kind == "signed":
        x, y = bias, values
        return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if kind != "absolute":
        raise ValueError(f"kind: {kind!r} unknown; use 'signed' or 'absolute'")
    up = sweep_direction(bias) > 0
    if up.all() or not up.any():
        return 0.0
    lo = max(bias[up].min(), bias[~up].min())
    hi = min(bias[up].max(), bias[~up].max())
    if not hi > lo:
        return 0.0
    n_bins = n_bins or max(2, min(up.sum(), (~up).sum()) // 2)
    edges = np.linspace(lo, hi, n_bins + 1)

    def binned(mask):
        idx = np.clip(np.digitize(bias[mask], edges) - 1, 0, n_bins - 1)
        inside = (bias[mask] >= lo) & (bias[mask] <= hi)
        total = np.bincount(idx[inside], values[mask][inside], n_bins)
        count = np.bincount(idx[inside], minlength=n_bins)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    gap = np.abs(binned(up) - binned(~up))
    return float(np.nansum(gap) * (hi - lo) / n_bins)


def read_bias(path: str | os.PathLike, frames: Sequence[int] | None = None) -> np.ndarray:
    """Read a bias per frame from a CSV or from a sample ``.npz``.

    A CSV has columns ``frame, bias`` or a single ``bias`` column (one row
    per frame); a ``.npz`` (e.g. ``napari-rvae sample domain-movie``) holds a
    ``bias`` array with one value per frame.

    Returns
    -------
    (T,) float64
        Bias for each frame in ``frames`` (default: the frames in the file, sorted).
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "bias" not in data.files:
                    raise ValueError(f"{path}: no 'bias' array in this file (has {', '.join(data.files)})")
                values = np.asarray(data["bias"], dtype=np.float64).ravel()
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: cannot read ({err})") from None
        table = pd.DataFrame({"frame": np.arange(len(values)), "bias": values})
    else:
        try:
            table = pd.read_csv(path)
        except Exception as err:
            raise ValueError(f"{path}: cannot read a bias table ({type(err).__name__}: {err})") from None
    if "bias" not in table.columns:
        raise ValueError(f"{path}: needs a 'bias' column (and optionally 'frame')")
    if "frame" not in table.columns:
        table["frame"] = np.arange(len(table))
    series = table.set_index("frame")["bias"].astype(float).sort_index()
    if frames is None:
        return series.to_numpy()
    missing = sorted(set(int(f) for f in frames) - set(series.index.astype(int)))
    if missing:
        raise ValueError(f"{path}: no bias for frame(s) {missing[:5]}{' …' if len(missing) > 5 else ''}")
    return series.loc[list(frames)].to_numpy()
