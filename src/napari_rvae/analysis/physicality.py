"""Physicality map of the latent plane (paper 002, Figs. 6–7).

The rVAE of paper 002 is trained on *segmented* windows whose pixels are 0
(domain) or 1 (wall / other class). A decoded window that is physically
realisable keeps that full contrast; latent regions between the populated
clusters decode to washed-out windows with intermediate values. So:

* **maximal contrast** of the window decoded at a latent point is
  ``max(decoded) / level`` — the largest decoded pixel value in units of the
  training windows' physical level ``level`` (1 for 0/1 segmentation maps;
  pass the level of your normalisation otherwise);
* the **physical region** is where it lies within ``(0.95, 1.05)`` (paper:
  "regions where contrast maximum is within (0.95, 1.05)");
* **histogram NMF**: the histogram of each decoded window's pixel values
  (``bins`` bins over ``value_range``) is factorised by NMF
  (:func:`napari_rvae.analysis.density_nmf`); physical windows load on
  components peaked at 0 and 1, unphysical ones on intermediate-value
  components. Loadings are returned as ``(k, D, D)`` maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dynamics import density_nmf
from .latent_grid import as_decoder, decoded_batches, grid_points


@dataclass
class PhysicalityMap:
    """Maps ``(D, D)`` over the latent plane (rows = second latent, row 0 lowest).

    Attributes
    ----------
    grid : (D,) latent values along each axis.
    contrast : (D, D) maximal decoded value / ``level``.
    physical : (D, D) bool, ``bounds[0] < contrast < bounds[1]``.
    histograms : (D, D, bins) fraction of pixels per value bin.
    bin_edges : (bins + 1,)
    level, bounds : the parameters used.
    """

    grid: np.ndarray
    contrast: np.ndarray
    physical: np.ndarray
    histograms: np.ndarray
    bin_edges: np.ndarray
    level: float
    bounds: tuple


@dataclass
class HistogramNMF:
    """NMF of decoded-window histograms: ``components (k, bins)`` (pixel-value
    distributions), ``loadings (k, D, D)`` maps, ``bin_centres (bins,)``, relative ``error``."""

    components: np.ndarray
    loadings: np.ndarray
    bin_centres: np.ndarray
    error: float


def physicality_map(decoder, d: int = 100, *, span: float = 3.0, level: float = 1.0, bounds=(0.95, 1.05),
                    bins: int = 20, value_range=(0.0, 1.0), batch: int = 512, progress=None) -> PhysicalityMap:
    """Maximal decoded contrast and value histograms over a ``d × d`` latent grid.

    Parameters
    ----------
    decoder : InvariantVAE or callable
        A model (content latents 0 and 1, others 0, angle 0) or a callable
        ``z (N, 2) → windows (N, h, w)``.
    d : int
        Grid points per axis; the grid is ``linspace(−span, span, d)``.
    level : float
        Physical contrast level of the training windows (1 for 0/1 maps).
    bounds : (low, high)
        Physical when ``low < max(decoded)/level < high``.
    bins, value_range : int, (float, float)
        Histogram of decoded pixel values (values outside are clipped into the end bins).
    progress : callable, optional
        ``progress(fraction)`` after each batch; raise from it to cancel.
    """
    decoder = as_decoder(decoder)
    if not level > 0:
        raise ValueError(f"level: must be > 0 (the physical contrast of the training windows), got {level}")
    lo, hi = float(bounds[0]), float(bounds[1])
    if not lo < hi:
        raise ValueError(f"bounds: expected (low, high) with low < high, got {bounds}")
    if int(bins) < 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"bins ≥ 2 and value_range (low, high) with low < high needed, got {bins}, {value_range}")
    grid, points = grid_points(d, span)
    edges = np.linspace(value_range[0], value_range[1], int(bins) + 1)
    contrast = np.empty(len(points))
    hist = np.empty((len(points), int(bins)))
    for s, windows in decoded_batches(decoder, points, batch):
        flat = windows.reshape(len(windows), -1)
        e = s + len(windows)
        contrast[s:e] = np.nanmax(flat, axis=1) / level
        idx = np.clip(np.searchsorted(edges, flat, side="right") - 1, 0, int(bins) - 1)
        counts = np.zeros((len(windows), int(bins)))
        np.add.at(counts, (np.repeat(np.arange(len(windows)), flat.shape[1]), idx.ravel()), 1.0)
        hist[s:e] = counts / flat.shape[1]
        if progress is not None:
            progress(e / len(points))
    shape = (len(grid), len(grid))
    return PhysicalityMap(grid, contrast.reshape(shape), ((contrast > lo) & (contrast < hi)).reshape(shape),
                          hist.reshape(shape + (int(bins),)), edges, float(level), (lo, hi))


def histogram_nmf(physicality: PhysicalityMap, n_components: int = 3, *, seed: int = 0) -> HistogramNMF:
    """NMF of the decoded-window histograms of a :class:`PhysicalityMap`.

    Components are ordered by the position of their peak (lowest value bin first).
    """
    h = physicality.histograms
    d = h.shape[0]
    result = density_nmf(h.reshape(d * d, -1), n_components, seed=seed)
    centres = 0.5 * (physicality.bin_edges[1:] + physicality.bin_edges[:-1])
    loadings = result.loadings.T.reshape(-1, d, d)
    return HistogramNMF(result.components, loadings, centres, result.error)
