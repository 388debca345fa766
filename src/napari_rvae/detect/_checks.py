"""Input validation shared by the detection modules (private)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_movie(movie, name: str = "movie") -> np.ndarray:
    """Return ``movie`` as a floating ``(T, Y, X)`` array; a 2D image becomes ``T = 1``.

    Float input keeps its dtype and is not copied (frames are converted one at a
    time downstream); integers and booleans become float32. Raises
    ``ValueError`` for other dimensionalities, tiny frames and non-numeric
    data. NaN pixels are allowed here (callers decide what to do).
    """
    try:
        data = np.asarray(movie)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric (T, Y, X) array or (Y, X) image") from None
    if data.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a numeric (T, Y, X) array or (Y, X) image, got dtype {data.dtype}")
    if data.dtype.kind != "f":
        data = data.astype(np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(
            f"{name}: expected a (T, Y, X) movie or a (Y, X) image, got an array with shape {data.shape}; "
            "pick one channel of multi-channel data first"
        )
    if data.shape[1] < 3 or data.shape[2] < 3 or data.shape[0] < 1:
        raise ValueError(f"{name}: frames of shape {data.shape[1:]} with {data.shape[0]} frame(s) are too small")
    return data


def lazy_movie(movie, name: str = "movie"):
    """``movie`` checked like :func:`as_movie` without reading it when it is lazy (a dask array or
    another array-like that is not numpy: frames are read when indexed); numpy input goes through
    :func:`as_movie`."""
    if isinstance(movie, np.ndarray) or not (hasattr(movie, "shape") and hasattr(movie, "dtype")
                                             and hasattr(movie, "__getitem__")):
        return as_movie(movie, name)
    shape, dtype = tuple(movie.shape), np.dtype(movie.dtype)
    if dtype.kind not in "fiub" or len(shape) not in (2, 3):
        as_movie(np.zeros((1,) * len(shape), dtype=dtype), name)  # raises the same message
    if len(shape) == 2:
        return as_movie(np.asarray(movie), name)
    if shape[1] < 3 or shape[2] < 3 or shape[0] < 1:
        raise ValueError(f"{name}: frames of shape {shape[1:]} with {shape[0]} frame(s) are too small")
    return movie


def as_probabilities(probabilities, name: str = "probabilities") -> np.ndarray:
    """Return probability maps as float64 ``(T, C, Y, X)``; ``(C, Y, X)`` becomes ``T = 1``."""
    try:
        data = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric (T, C, Y, X) array") from None
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4:
        raise ValueError(
            f"{name}: expected probability maps (T, C, Y, X) (channel 0 = background), got shape {data.shape}"
        )
    if data.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 channels (background + one class), got {data.shape[1]}")
    return data


def frame_is_usable(frame: np.ndarray) -> str | None:
    """Why a frame cannot be analysed (``None`` when it can)."""
    finite = np.isfinite(frame)
    if not finite.any():
        return "all pixels are NaN or infinite"
    values = frame[finite]
    if float(values.max()) <= float(values.min()):
        return "the frame is constant"
    return None


def positions_of(sites: pd.DataFrame, name: str = "sites") -> tuple[np.ndarray, np.ndarray]:
    """``(frame (N,), yx (N, 2))`` from a sites table, checking columns."""
    if not isinstance(sites, pd.DataFrame):
        raise ValueError(f"{name}: expected a sites table (pandas DataFrame), got {type(sites).__name__}")
    missing = [c for c in ("frame", "y", "x") if c not in sites.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    frame = sites["frame"].to_numpy(dtype=np.int64)
    yx = sites[["y", "x"]].to_numpy(dtype=np.float64)
    if len(yx) and not np.isfinite(yx).all():
        raise ValueError(f"{name}: some positions are NaN or infinite")
    return frame, yx


def nearest_neighbour_distance(yx: np.ndarray) -> float:
    """Median nearest-neighbour distance (pixels) of a point set; NaN for < 2 points."""
    from scipy.spatial import cKDTree

    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    if len(yx) < 2:
        return float("nan")
    d, _ = cKDTree(yx).query(yx, k=2)
    d = d[:, 1]
    d = d[d > 0]
    return float(np.median(d)) if d.size else float("nan")
