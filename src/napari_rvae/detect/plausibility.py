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


#: the stars of bonds tried: (nearest neighbours, fold) for a honeycomb / centred square, a square, a triangle
STARS = ((3, 6), (4, 4), (6, 6))
_TRIALS = {"hexagonal": [("honeycomb", 1 / np.sqrt(3), 3, 6)], "square": [("square", 1 / np.sqrt(2), 4, 4)],
           "unknown": [("honeycomb", 1 / np.sqrt(3), 3, 6), ("square", 1 / np.sqrt(2), 4, 4)]}
_CONFIRM_STARS = {"honeycomb": [(3, 6)], "hexagonal": [(6, 6)], "square": [(4, 4)]}


@dataclasses.dataclass
class SiteGeometry:
    """What the checks of this module read from a sites table, measured frame by frame, so that a movie
    detected in chunks is checked on a few numbers per site instead of the whole table (frame order).

    counts : sites in each frame that holds any.
    nn : each site's nearest-neighbour distance (NaN in a frame of one site).
    orders : ``{(neighbours, fold): (N,)}`` local bond order (:func:`bond_order`) for the stars measured.
    border : each site's distance to the frame's edge (pixels), when measured.
    """

    counts: np.ndarray
    nn: np.ndarray
    orders: dict
    border: np.ndarray | None = None

    @classmethod
    def of(cls, sites: pd.DataFrame, shape: tuple | None = None, stars=STARS) -> "SiteGeometry":
        """Measure ``sites`` (``frame, y, x``); ``shape``: the frames' ``(.., Y, X)`` (for ``border``)."""
        counts, nn, border, orders = [], [], [], {star: [] for star in stars}
        for _, frame in sites.groupby("frame", sort=True):
            yx = frame[["y", "x"]].to_numpy(dtype=np.float64)
            counts.append(len(yx))
            nn.append(_nearest(yx)[0] if len(yx) >= 2 else np.full(len(yx), np.nan))
            for k, fold in stars:
                orders[(k, fold)].append(bond_order(yx, k, fold))
            if shape is not None:
                border.append(np.min(np.concatenate([yx, np.asarray(shape[-2:]) - 1 - yx], axis=1), axis=1))
        cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0))
        return cls(np.asarray(counts, dtype=np.int64), cat(nn), {star: cat(v) for star, v in orders.items()},
                   cat(border) if shape is not None else None)

    def to_arrays(self) -> dict:
        """Plain named arrays (``counts``, ``nn``, ``border``, ``order_K_FOLD``), e.g. for ``np.savez``."""
        out = {"counts": self.counts, "nn": self.nn, **{f"order_{k}_{f}": v for (k, f), v in self.orders.items()}}
        return out if self.border is None else {**out, "border": self.border}

    @classmethod
    def from_arrays(cls, arrays) -> "SiteGeometry":
        """The geometry :meth:`to_arrays` gave (a dict or an ``np.load`` of ``.npz``)."""
        orders = {tuple(int(v) for v in key.split("_")[1:]): np.asarray(arrays[key]) for key in arrays
                  if key.startswith("order_")}
        return cls(np.asarray(arrays["counts"]), np.asarray(arrays["nn"]), orders,
                   np.asarray(arrays["border"]) if "border" in arrays else None)

    def in_frames_of(self, n: int) -> np.ndarray:
        """Which sites lie in frames of at least ``n`` sites."""
        return np.repeat(self.counts >= n, self.counts)

    def order(self, neighbours: int, fold: int) -> np.ndarray:
        if (neighbours, fold) not in self.orders:
            raise ValueError(f"bond order ({neighbours}, {fold}) was not measured for these sites")
        return self.orders[(neighbours, fold)]


def stars_needed(lattice: Lattice, spacing_given: bool = False) -> tuple:
    """The stars of bonds :func:`decorated` and :func:`confirms` may ask of sites detected on ``lattice``."""
    stars = set()
    if lattice.found or lattice.candidate:
        stars |= {(k, fold) for _, _, k, fold in _TRIALS.get(lattice.kind, [])}
    if (lattice.candidate or not lattice.regular) and not spacing_given:
        stars |= set(STARS)
    return tuple(s for s in STARS if s in stars)


def _geometry(sites, shape=None, stars=STARS) -> SiteGeometry:
    return sites if isinstance(sites, SiteGeometry) else SiteGeometry.of(sites, shape, stars)


def decorated(sites: pd.DataFrame | SiteGeometry, lattice: Lattice) -> Lattice:
    """The lattice updated when the sites reveal atoms the estimate missed (see the module docstring):
    most sites' nearest neighbours at spacing / √3 with a 3-fold star of bonds (honeycomb; tried for a
    hexagonal or unknown estimate) or at spacing / √2 with a 4-fold star (centred square; tried for a
    square or unknown estimate). Otherwise ``lattice`` unchanged."""
    if not (lattice.found or lattice.candidate):
        return lattice
    geo = _geometry(sites, stars=[(k, f) for _, _, k, f in _TRIALS.get(lattice.kind, [])])
    if len(geo.nn) < 20:
        return lattice
    used = geo.in_frames_of(5)
    if not used.any():
        return lattice
    d = geo.nn[used]
    for kind, ratio, neighbours, fold in _TRIALS.get(lattice.kind, []):
        inner = np.abs(d / lattice.spacing - ratio) <= 0.12
        if inner.mean() < 0.5:
            continue
        order = float(np.nanmedian(geo.order(neighbours, fold)[used]))
        if order >= 0.75:
            spacing = float(np.median(d[inner]))
            note = (f"{lattice.note}; " if lattice.note else "") + \
                f"atoms found between those the autocorrelation saw (spacing {lattice.spacing:.2f} → {spacing:.2f} px)"
            return dataclasses.replace(lattice, spacing=spacing, kind=kind, note=note)
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


def confirms(sites: pd.DataFrame | SiteGeometry, lattice: Lattice, shape: tuple | None = None) -> bool:
    """Whether the sites make a candidate lattice real: most have their nearest neighbour within 20 %
    of the spacing (or of spacing / √3, / √2: atoms between those the autocorrelation saw), and the bonds to their nearest neighbours form the lattice's star (median local
    bond order of the sites 1.5 spacings or more from the border ≥ 0.6: 3 bonds 6-fold for a honeycomb,
    6 for a triangular, 4 for a square lattice). Maxima of correlated noise, kept the minimum distance
    apart, can match the first test but point every which way (median 0.4–0.5); defects and grain
    boundaries lower a lattice's (0.65–0.7 on a 128² crop of the graphene movie, 0.9+ on most frames)."""
    if not np.isfinite(lattice.spacing):
        return False
    stars = _CONFIRM_STARS.get(lattice.kind, list(STARS))
    geo = _geometry(sites, shape, stars)
    used = geo.in_frames_of(3)
    if not used.any():
        return False
    nn = geo.nn[used] / lattice.spacing
    margin = 1.5 * lattice.spacing
    # border sites miss neighbours, so their stars are wrong: only sites inside, unless a frame has few
    keep = np.ones(len(geo.nn), bool)
    if shape is not None and geo.border is not None:
        inside = geo.border >= margin
        starts = np.concatenate([[0], np.cumsum(geo.counts)])
        for a, b in zip(starts[:-1], starts[1:]):
            if inside[a:b].sum() >= 10:
                keep[a:b] = inside[a:b]
    keep &= used
    order = max(float(np.nanmedian(geo.order(k, f)[keep])) for k, f in stars)
    # the atoms may sit at the spacing, or between the atoms the autocorrelation saw (honeycomb / centred)
    at_spacing = max(np.mean(np.abs(nn / r - 1) <= 0.2) for r in (1.0, 1 / np.sqrt(3), 1 / np.sqrt(2)))
    return bool(at_spacing >= 0.5 and np.median(nn) >= 0.5 and order >= 0.6)


def check_sites(sites: pd.DataFrame | SiteGeometry, lattice: Lattice, shape: tuple, *,
                method: str = "") -> list[str]:
    """Findings, one sentence each with the likely cause and what to try; empty when all is plausible.

    Parameters
    ----------
    sites : DataFrame or SiteGeometry
        ``frame, y, x`` in pixels, or their :class:`SiteGeometry`.
    lattice : Lattice
        The estimate the detection used.
    shape : (T, Y, X)
        Movie shape (frame area for the densities).
    method : str
        The detection method used, for the suggested fix.
    """
    if not lattice.found:
        return []
    geo = _geometry(sites, stars=())
    if len(geo.nn) == 0:
        return []
    d = lattice.spacing
    area = float(shape[-2] * shape[-1])
    full = DENSITY.get(lattice.kind, DENSITY["hexagonal"]) / d**2  # the densest kind when unknown
    sparse_full = DENSITY.get(lattice.kind, DENSITY["honeycomb"]) / d**2
    other = "the shipped atom finder (--method model)" if method != "model" else "peak finding (--method peaks)"
    findings = []
    counts = geo.counts
    nn = geo.nn[geo.in_frames_of(3)]
    density = float(np.median(counts)) / area
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
