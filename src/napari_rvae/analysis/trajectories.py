"""Trajectories in latent space (paper 000, Fig. 5): tracked sites followed through the latent plane.

Input is a sites table with a ``track_id`` column (:func:`napari_rvae.detect.link_tracks`,
−1 = untracked) and latent columns (``z0, z1`` from
:func:`napari_rvae.vae.encode_sites`). Everything returned is plain data
(DataFrames / arrays) for the dock or a notebook:

* :func:`latent_trajectories` — each track's latent path ordered by frame, with
  the distance from the latent origin ``radius = |z|``, the latent ``step``
  from the track's previous point, and a ``jump`` flag;
* :func:`track_summary` — per track: length, path length, largest step, jumps;
* :func:`tracks_layer` — napari Tracks ``data`` and ``properties`` (e.g. coloured by a latent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _frame_filter(frames: np.ndarray, frame_range) -> np.ndarray:
    if frame_range is None:
        return np.ones(len(frames), bool)
    lo, hi = frame_range
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"frame_range: expected (first, last) with first ≤ last, got {frame_range}")
    keep = np.ones(len(frames), bool)
    if lo is not None:
        keep &= frames >= lo
    if hi is not None:
        keep &= frames <= hi
    return keep


JUMP_STEP = 1.0  # latent units: one standard deviation of the N(0, 1) latent prior


def jump_threshold(steps) -> float:
    """A robust outlier threshold for latent steps: ``median + 5 · 1.4826 · MAD`` (latent units).

    Not the default of :func:`latent_trajectories`: a tracked atom that stays on its site
    makes a step of almost 0, so on tracks that often stay (hopping Si) the median and MAD
    describe the stays and the threshold falls below ordinary hops."""
    s = np.asarray(steps, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan")
    med = float(np.median(s))
    return med + 5 * 1.4826 * float(np.median(np.abs(s - med)))


def latent_trajectories(sites: pd.DataFrame, columns=("z0", "z1"), *, track_column: str = "track_id",
                        frame_range=None, threshold: float | None = None) -> pd.DataFrame:
    """Latent paths of the tracked sites.

    Parameters
    ----------
    sites : DataFrame
        Sites table with ``frame``, ``track_column`` and the latent ``columns``.
    columns : sequence of str
        Latents forming the path (default ``z0, z1``).
    frame_range : (first, last), optional
        Keep frames ``first ≤ frame ≤ last`` (either may be None).
    threshold : float, optional
        A step larger than this (latent units) is a ``jump``; default
        ``JUMP_STEP`` = 1, one standard deviation of the latent prior
        (:func:`jump_threshold` gives a data-driven alternative).

    Returns
    -------
    DataFrame ``track_id, frame, <columns>, radius, step, jump, row`` sorted
    by track and frame; ``step`` is NaN at a track's first point; ``row`` is
    the position in ``sites``. Sites with a NaN latent are skipped.
    """
    columns = list(columns)
    missing = [c for c in ["frame", track_column, *columns] if c not in sites.columns]
    if missing:
        raise ValueError(f"sites: missing column(s) {', '.join(missing)}; link tracks and encode the sites first")
    if not columns:
        raise ValueError("columns: give at least one latent column")
    frames = sites["frame"].to_numpy()
    tid = sites[track_column].to_numpy()
    values = sites[columns].to_numpy(np.float64)
    keep = (tid >= 0) & _frame_filter(frames, frame_range) & np.isfinite(values).all(1)
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((frames[rows], tid[rows]))]
    traj = pd.DataFrame({"track_id": tid[order].astype(np.int64), "frame": frames[order].astype(np.int64)})
    for k, c in enumerate(columns):
        traj[c] = values[order, k]
    v = values[order]
    traj["radius"] = np.sqrt((v**2).sum(1))
    step = np.full(len(order), np.nan)
    if len(order) > 1:
        same = traj["track_id"].to_numpy()[1:] == traj["track_id"].to_numpy()[:-1]
        d = np.sqrt(((v[1:] - v[:-1]) ** 2).sum(1))
        step[1:][same] = d[same]
    traj["step"] = step
    t = JUMP_STEP if threshold is None else float(threshold)
    traj["jump"] = np.nan_to_num(step, nan=-np.inf) > t
    traj["row"] = order
    traj.attrs["jump_threshold"] = t
    return traj


def track_summary(traj: pd.DataFrame) -> pd.DataFrame:
    """Per track: ``n`` points, ``first``/``last`` frame, ``path_length``, ``max_step``,
    ``n_jumps`` and ``mean_radius`` (latent units)."""
    needed = {"track_id", "frame", "step", "jump", "radius"}
    if not needed <= set(traj.columns):
        raise ValueError("traj: expected the output of latent_trajectories")
    g = traj.groupby("track_id")
    return pd.DataFrame({
        "n": g.size(), "first": g["frame"].min(), "last": g["frame"].max(),
        "path_length": g["step"].sum(min_count=1).fillna(0.0), "max_step": g["step"].max(),
        "n_jumps": g["jump"].sum().astype(np.int64), "mean_radius": g["radius"].mean(),
    }).reset_index()


def tracks_layer(sites: pd.DataFrame, colour_by: str | None = None, *, frame_range=None):
    """napari Tracks layer data ``(M, 4)`` (``track_id, t, y, x``) and properties.

    ``properties`` holds ``track_id``, ``frame`` and, with ``colour_by``, that
    column (e.g. a latent) in the same row order, so
    ``viewer.add_tracks(data, properties=props, color_by=colour_by)`` colours
    the tracks by it.
    """
    from ..detect import tracks_layer_data

    if "track_id" not in sites.columns:
        raise ValueError("sites: no 'track_id' column; run detect.link_tracks first")
    if colour_by is not None and colour_by not in sites.columns:
        raise ValueError(f"colour_by: no column {colour_by!r} in the sites table")
    keep = _frame_filter(sites["frame"].to_numpy(), frame_range)
    sub = sites.loc[keep]
    data = tracks_layer_data(sub)
    tid = sub["track_id"].to_numpy()
    frames = sub["frame"].to_numpy()
    sel = np.flatnonzero(tid >= 0)
    order = sel[np.lexsort((frames[sel], tid[sel]))]
    props = {"track_id": tid[order], "frame": frames[order]}
    if colour_by is not None:
        props[colour_by] = sub[colour_by].to_numpy()[order]
    return data, props
