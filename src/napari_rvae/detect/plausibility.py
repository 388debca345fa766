"""Does a detection look like atoms of the estimated lattice? Say so when it does not.

After detection, each frame's site density and nearest-neighbour distances are
compared with the lattice estimated from the image (:mod:`.lattice`):

- **too many sites**: the median nearest-neighbour distance is well below the
  spacing, or the density is far above what a full lattice holds: noise maxima
  or atoms split in two;
- **no peak at the spacing**: fewer than half of the sites have their nearest
  neighbour within 20 % of the spacing;
- **too few sites**: much less than a full lattice's density (fine where the
  frame has holes, vacuum or contamination, suspicious otherwise).

A decorated lattice is recognised instead of flagged: sites whose neighbours sit
at the spacing / √3 (honeycomb, e.g. the second species of a TMD that the
autocorrelation alone could not see) or / √2 (a centred square lattice such as
perovskite A + B), all along the lattice's own directions, update the lattice.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .lattice import DENSITY, Lattice

TOO_CLOSE = 0.7  # median nearest-neighbour distance below this × spacing: too many sites
TOO_DENSE = 1.6  # density above this × a full lattice's: too many sites
TOO_SPARSE = 0.35  # density below this × a full lattice's: too few


def _nearest(yx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour distance (pixels) and direction (radians) of every site."""
    d, i = cKDTree(yx).query(yx, k=2)
    vec = yx[i[:, 1]] - yx
    return d[:, 1], np.arctan2(vec[:, 0], vec[:, 1])


def _aligned(angles: np.ndarray, fold: int) -> float:
    """How much the directions share a ``fold``-fold orientation (1 = all, 0 = random)."""
    return float(np.abs(np.mean(np.exp(1j * fold * angles)))) if len(angles) else 0.0


def decorated(sites: pd.DataFrame, lattice: Lattice) -> Lattice:
    """The lattice updated when the sites reveal a second species the estimate missed (see the module
    docstring); otherwise ``lattice`` unchanged."""
    if not lattice.found or lattice.kind not in ("hexagonal", "square") or len(sites) < 20:
        return lattice
    ratio, fold = (1 / np.sqrt(3), 6) if lattice.kind == "hexagonal" else (1 / np.sqrt(2), 4)
    distances, angles = [], []
    for _, frame in sites.groupby("frame"):
        if len(frame) >= 3:
            d, a = _nearest(frame[["y", "x"]].to_numpy(dtype=np.float64))
            distances.append(d)
            angles.append(a)
    if not distances:
        return lattice
    d, a = np.concatenate(distances), np.concatenate(angles)
    inner = np.abs(d / lattice.spacing - ratio) <= 0.12
    if inner.mean() >= 0.5 and _aligned(a[inner], fold) >= 0.5:
        kind = "honeycomb" if lattice.kind == "hexagonal" else "square"
        note = (f"{lattice.note}; " if lattice.note else "") + \
            f"a second sublattice was found between the atoms (spacing {lattice.spacing:.2f} → {np.median(d[inner]):.2f} px)"
        return dataclasses.replace(lattice, spacing=float(np.median(d[inner])), kind=kind, note=note)
    return lattice


def bond_order(yx: np.ndarray, neighbours: int, fold: int) -> np.ndarray:
    """Local bond-orientational order ``|mean exp(i·fold·θ)|`` of each site over its ``neighbours``
    nearest neighbours (1: the bonds form a ``fold``-fold star, as in a lattice; about 1/√k for k
    neighbours in random directions)."""
    k = min(neighbours, len(yx) - 1)
    if k < 2:
        return np.full(len(yx), np.nan)
    _, idx = cKDTree(yx).query(yx, k=k + 1)
    vec = yx[idx[:, 1:]] - yx[:, None, :]
    return np.abs(np.mean(np.exp(1j * fold * np.arctan2(vec[..., 0], vec[..., 1])), axis=1))


def confirms(sites: pd.DataFrame, lattice: Lattice) -> bool:
    """Whether the sites make a candidate lattice real: most have their nearest neighbour within 20 %
    of the spacing, and their bonds to their nearest neighbours form the lattice's star (median local
    bond order ≥ 0.75: 3 bonds 6-fold for a honeycomb, 6 for a triangular, 4 for a square lattice). Maxima of correlated noise, kept the minimum distance apart, can match the first test
    but point every which way."""
    if not np.isfinite(lattice.spacing):
        return False
    frames = [f[["y", "x"]].to_numpy(dtype=np.float64) for _, f in sites.groupby("frame") if len(f) >= 3]
    if not frames:
        return False
    nn = np.concatenate([_nearest(yx)[0] for yx in frames]) / lattice.spacing
    stars = {"honeycomb": [(3, 6)], "hexagonal": [(6, 6)], "square": [(4, 4)]}.get(lattice.kind, [(3, 6), (4, 4), (6, 6)])
    order = max(float(np.nanmedian(np.concatenate([bond_order(yx, k, f) for yx in frames]))) for k, f in stars)
    return bool(np.mean(np.abs(nn - 1) <= 0.2) >= 0.5 and np.median(nn) >= TOO_CLOSE and order >= 0.75)


def check_sites(sites: pd.DataFrame, lattice: Lattice, shape: tuple, *, method: str = "") -> list[str]:
    """Findings, one sentence each with the likely cause and what to try; empty when all is plausible.

    Parameters
    ----------
    sites : DataFrame
        ``frame, y, x`` in pixels.
    lattice : Lattice
        The estimate the detection used.
    shape : (T, Y, X)
        Movie shape (frame area for the densities).
    method : str
        The detection method used, for the suggested fix.
    """
    if not lattice.found or len(sites) == 0:
        return []
    d = lattice.spacing
    area = float(shape[-2] * shape[-1])
    full = DENSITY.get(lattice.kind, DENSITY["hexagonal"]) / d**2  # the densest kind when unknown
    sparse_full = DENSITY.get(lattice.kind, DENSITY["honeycomb"]) / d**2
    other = "the shipped atom finder (--method model)" if method != "model" else "peak finding (--method peaks)"
    findings = []
    counts = sites.groupby("frame").size()
    nn = []
    for _, frame in sites.groupby("frame"):
        if len(frame) >= 3:
            nn.append(_nearest(frame[["y", "x"]].to_numpy(dtype=np.float64))[0])
    nn = np.concatenate(nn) if nn else np.zeros(0)
    density = float(counts.median()) / area
    median_nn = float(np.median(nn)) if len(nn) else float("nan")
    if (len(nn) and median_nn < TOO_CLOSE * d) or density > TOO_DENSE * full:
        findings.append(
            f"too many sites: {density / full:.1f}× the atoms a full lattice of spacing {d:.1f} px holds, nearest "
            f"neighbours {median_nn:.1f} px apart (noise maxima or split atoms); try {other}, or give the "
            "spacing (--spacing) if the estimate is wrong")
    elif len(nn) and np.mean(np.abs(nn / d - 1) <= 0.2) < 0.5:
        findings.append(
            f"no peak at the spacing: only {100 * np.mean(np.abs(nn / d - 1) <= 0.2):.0f} % of the sites have their "
            f"nearest neighbour within 20 % of {d:.1f} px (median {median_nn:.1f} px); check the spacing (--spacing) "
            f"or try {other}")
    if density < TOO_SPARSE * sparse_full:
        findings.append(
            f"few sites: {100 * density / sparse_full:.0f} % of a full lattice's atoms; fine if much of the frame is "
            f"vacuum, holes or contamination, otherwise atoms are missed (try {other} or a lower --threshold)")
    return findings
