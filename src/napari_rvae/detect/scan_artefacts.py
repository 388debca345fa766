"""Scan artefacts of a PFM domain map: streaks (the tip skipped) and bands (a tip change) along
either image axis. Used by :mod:`.phase_quality`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage


def stripe_mask(domains, usable=None, *, thickness: int = 3, min_length: int | None = None,
                jump: float = 0.5, max_band: float = 0.45) -> np.ndarray:
    """Scan artefacts on a ``(T, Y, X)`` domain map: ``(T, Y, X)`` bool.

    * **Streaks**: a domain (either sign) at most ``thickness`` lines thick across a scan
      axis and at least ``min_length`` pixels (default 1/16 of the frame, ≥ 8) long along it.
    * **Bands**: consecutive whole lines (or columns) whose fraction of True pixels jumps by at
      least ``jump`` from one line to the next and back, are nearly uniform inside (≥ 85 % one
      sign), differ by ``jump`` from the frame's normal content (its longest stretch between
      jumps) and span at most ``max_band`` of the frame; a band may touch the frame's edge.
    Lines with less than half of their pixels ``usable`` (not noise) take no part in bands.
    """
    d = np.asarray(domains, dtype=bool)
    if d.ndim == 2:
        d = d[None]
    usable = np.ones_like(d) if usable is None else np.asarray(usable, dtype=bool).reshape(d.shape)
    out = np.zeros_like(d)
    for t in range(len(d)):
        for transpose in (False, True):
            frame = d[t].T if transpose else d[t]
            ok = usable[t].T if transpose else usable[t]
            found = _streaks(frame, thickness, min_length) | _bands(frame, ok, jump, max_band)
            out[t] |= found.T if transpose else found
    return out


def _streaks(frame: np.ndarray, thickness: int, min_length: int | None) -> np.ndarray:
    """Thin features along rows (the scan lines)."""
    length = min_length or max(8, frame.shape[1] // 16)
    column = np.ones((thickness + 2, 1), dtype=bool)
    found = np.zeros_like(frame)
    for sign in (frame, ~frame):
        thin = sign & ~ndimage.binary_opening(sign, structure=column)
        lab, n = ndimage.label(thin)
        if not n:
            continue
        for k, sl in enumerate(ndimage.find_objects(lab), start=1):
            height, width = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            if width >= length and width >= 3 * height:
                found[sl] |= lab[sl] == k
    return found


def _bands(frame: np.ndarray, ok: np.ndarray, jump: float, max_band: float) -> np.ndarray:
    """Whole rows forming a band whose domain content jumps in and out in one row each."""
    weight = ok.sum(axis=1)
    fraction = np.where(weight >= 0.5 * frame.shape[1], (frame & ok).sum(axis=1) / np.maximum(weight, 1), np.nan)
    if np.isnan(fraction).all():
        return np.zeros_like(frame)
    fraction = pd.Series(fraction).interpolate(limit_direction="both").to_numpy()
    n = len(fraction)
    steps = np.flatnonzero(np.abs(np.diff(fraction)) >= jump) + 1  # a band edge lies before row k
    edges = [0] + list(steps) + [n]
    found = np.zeros_like(frame)
    if len(edges) <= 2:
        return found
    segments = list(zip(edges[:-1], edges[1:]))
    longest = max(segments, key=lambda ab: ab[1] - ab[0])
    background = fraction[longest[0]:longest[1]].mean()  # the frame's normal content
    for a, b in segments:
        if b - a > max_band * n or (a, b) == longest:
            continue
        inside = fraction[a:b].mean()
        if 0.15 < inside < 0.85:
            continue
        if abs(background - inside) >= jump:
            found[a:b] = True
    return found


