"""Tracks: link sites across frames (e.g. Si dopants hopping under the beam).

Frame-to-frame linking is a one-to-one assignment (Hungarian,
``scipy.optimize.linear_sum_assignment``) of the sites of frame ``t`` to the
tracks still alive, with cost = distance and no link beyond ``r_max``. A track
may skip up to ``max_gap`` frames (a missed detection). Sample drift is
removed first: ``drift="auto"`` links once, takes the median displacement of
the links per frame and links again on drift-corrected positions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import positions_of

_NO_LINK = 1e12


def _link(frames: np.ndarray, yx: np.ndarray, r_max: float, max_gap: int) -> np.ndarray:
    """Track label per row (consecutive integers from 0); every row gets one."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    labels = np.full(len(frames), -1, dtype=np.int64)
    last_pos = np.zeros((0, 2))
    last_frame = np.zeros(0, dtype=np.int64)
    n_tracks = 0
    for t in np.unique(frames):
        rows = np.flatnonzero(frames == t)
        alive = np.flatnonzero(t - last_frame <= max_gap + 1)
        assigned = np.full(len(rows), -1, dtype=np.int64)
        if len(alive) and len(rows):
            gap = (t - last_frame[alive] - 1).astype(np.float64)
            sparse = cKDTree(yx[rows]).sparse_distance_matrix(cKDTree(last_pos[alive]), r_max, output_type="coo_matrix")
            if sparse.nnz:
                cost = np.full((len(rows), len(alive)), _NO_LINK)
                # prefer a track seen in the previous frame over one that skipped frames
                cost[sparse.row, sparse.col] = sparse.data + 1e-3 * r_max * gap[sparse.col]
                r, c = linear_sum_assignment(cost)
                ok = cost[r, c] < _NO_LINK
                assigned[r[ok]] = alive[c[ok]]
        new = assigned < 0
        assigned[new] = np.arange(n_tracks, n_tracks + new.sum())
        n_tracks += int(new.sum())
        if n_tracks > len(last_pos):
            last_pos = np.vstack([last_pos, np.zeros((n_tracks - len(last_pos), 2))])
            last_frame = np.concatenate([last_frame, np.zeros(n_tracks - len(last_frame), dtype=np.int64)])
        last_pos[assigned] = yx[rows]
        last_frame[assigned] = t
        labels[rows] = assigned
    return labels


def estimate_drift(frames: np.ndarray, yx: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Cumulative drift ``(dy, dx)`` (pixels) per frame from the median step of linked sites."""
    order = np.lexsort((frames, labels))
    f, p, lab = frames[order], yx[order], labels[order]
    same = lab[1:] == lab[:-1]
    steps = (p[1:] - p[:-1])[same]
    dt = (f[1:] - f[:-1])[same]
    to_frame = f[1:][same]
    drift = {}
    total = np.zeros(2)
    previous = None
    for t in np.unique(frames):
        if previous is not None:
            sel = to_frame == t
            if sel.any():
                total = total + np.median(steps[sel] / dt[sel, None], axis=0) * (t - previous)
        drift[int(t)] = total.copy()
        previous = t
    return drift


def link_tracks(
    sites: pd.DataFrame,
    *,
    r_max: float,
    classes=None,
    kind: str | None = "atom",
    min_length: int = 2,
    max_gap: int = 0,
    drift: str | None = "auto",
) -> pd.DataFrame:
    """Add a ``track_id`` column: sites linked across frames (−1 = not in a track).

    Parameters
    ----------
    sites : DataFrame
        Sites table (``frame, y, x``, and ``class`` / ``kind`` for filtering).
    r_max : float
        Largest displacement (pixels) between linked sites of consecutive frames
        (after drift correction).
    classes : int or sequence of int, optional
        Only link sites of these classes (e.g. ``1`` for Si); others get −1.
    kind : str, optional
        Only link sites of this kind (``None`` = all kinds).
    min_length : int
        Tracks with fewer sites are dropped (their sites get −1).
    max_gap : int
        Frames a track may skip (0 = no gap closing; 1–2 bridge missed detections).
    drift : {"auto", None}
        Remove global drift before linking (see module docstring).

    Returns
    -------
    sites : DataFrame
        Copy with ``track_id`` (int64; tracks numbered from 0 by first appearance).
    """
    frames, yx = positions_of(sites)
    if not r_max > 0:
        raise ValueError(f"r_max: must be a positive distance in pixels, got {r_max}")
    if max_gap < 0 or min_length < 1:
        raise ValueError("max_gap must be ≥ 0 and min_length ≥ 1")
    if drift not in ("auto", None):
        raise ValueError(f"drift: expected 'auto' or None, got {drift!r}")
    use = np.ones(len(sites), dtype=bool)
    if kind is not None and "kind" in sites.columns:
        use &= (sites["kind"] == kind).to_numpy()
    if classes is not None:
        if "class" not in sites.columns:
            raise ValueError("classes: the sites table has no 'class' column")
        use &= np.isin(sites["class"].to_numpy(), np.atleast_1d(classes))
    out = sites.copy()
    track = np.full(len(sites), -1, dtype=np.int64)
    rows = np.flatnonzero(use)
    if len(rows):
        f, p = frames[rows], yx[rows]
        labels = _link(f, p, r_max, max_gap)
        if drift == "auto" and len(np.unique(f)) > 1:
            shift = estimate_drift(f, p, labels)
            corrected = p - np.stack([shift[int(t)] for t in f])
            labels = _link(f, corrected, r_max, max_gap)
        ids, counts = np.unique(labels, return_counts=True)
        long_enough = ids[counts >= min_length]
        keep = np.isin(labels, long_enough)
        # renumber by first appearance
        _, first = np.unique(labels[keep], return_index=True)
        order = labels[keep][np.sort(first)]
        renumber = {int(old): new for new, old in enumerate(order)}
        track[rows[keep]] = [renumber[int(v)] for v in labels[keep]]
    out["track_id"] = track
    return out


def tracks_layer_data(sites: pd.DataFrame) -> np.ndarray:
    """napari Tracks data ``(M, 4)``: ``track_id, t, y, x`` for sites with ``track_id ≥ 0``, sorted."""
    if "track_id" not in sites.columns:
        raise ValueError("sites: no 'track_id' column; run link_tracks first")
    frames, yx = positions_of(sites)
    tid = sites["track_id"].to_numpy(dtype=np.int64)
    sel = tid >= 0
    data = np.column_stack([tid[sel], frames[sel], yx[sel]]).astype(np.float64)
    return data[np.lexsort((data[:, 1], data[:, 0]))] if len(data) else np.zeros((0, 4))
