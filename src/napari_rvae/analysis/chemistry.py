"""Latent chemistry map (paper 000, Figs. 2–4): which rings does each latent point decode to?

Recipe (ChemDisc, ``science.md`` §1 step 4):

1. decode a ``D × D`` grid over two content latents (batched);
2. on each decoded window find atoms: pixels ``> threshold`` (default 0.5),
   4-connected components, centroid of each component;
3. bond graph: a bond between atoms at ``low·L < d < high·L`` (default
   ``0.5 L < d < 1.2 L``, ``L`` the bond length in pixels);
4. count the 5-, 6-, 7- and 8-membered rings (faces of the plane bond graph,
   :func:`napari_rvae.detect.rings_at`) through the *centre atom*, the atom
   nearest the window centre;
5. a grid point is **unphysical** when the centre atom lies in ≥ 4 rings, or
   when there is no structure: no atom, or no ring and a bonded cluster of
   ≤ 3 atoms around the centre atom.

Hollow-site-centred windows (``mode="hollow"``, paper 000 Fig. 4) give the
simpler map of the size of the ring that encloses the window centre.

Map orientation: ``map[i, j]`` is the latent point ``(z_a, z_b) =
(grid[j], grid[i])`` — columns follow the first latent, rows the second,
row 0 at the *lowest* value (draw with the origin at the bottom).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import ndimage

from ..detect import rings_at
from ..detect.rings import RING_SIZES
from .latent_grid import as_decoder, decoded_batches, grid_points

MODES = ("atom", "hollow")


# ----------------------------------------------------------------- decoders
def model_decoder(model, dims=(0, 1), fixed=None, angle: float = 0.0, batch_size: int = 64) -> Callable:
    """A decoder callable ``z (N, 2) → windows (N, h, w)`` from a trained VAE.

    Parameters
    ----------
    model : InvariantVAE
        A 2D-window model with at least ``max(dims) + 1`` content latents.
    dims : (int, int)
        Which content latents the two map axes are.
    fixed : array (k,), optional
        Values of the other content latents (default 0).
    angle : float
        Decoding angle in radians (rVAE models); shifts are 0.
    """
    from ..vae import decode

    cfg = model.config
    if cfg.dims != 2:
        raise ValueError("model: the chemistry map needs a model of 2D windows")
    if cfg.latent < 2 or max(dims) >= cfg.latent or dims[0] == dims[1]:
        raise ValueError(f"dims: need two different content latents of the {cfg.latent} the model has, got {dims}")
    base = np.zeros(cfg.latent, dtype=np.float32) if fixed is None else np.asarray(fixed, np.float32).copy()
    if base.shape != (cfg.latent,):
        raise ValueError(f"fixed: expected {cfg.latent} values, got shape {base.shape}")

    def decoder(z):
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        full = np.repeat(base[None], len(z), axis=0)
        full[:, dims[0]], full[:, dims[1]] = z[:, 0], z[:, 1]
        return decode(model, full, angle=angle, batch_size=batch_size)

    decoder.model = model  # what the map reads the recorded scale from (bond length, atom threshold)
    return decoder


# ------------------------------------------------------------------- atoms
_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)
_PLANE_CROSS[1] = ndimage.generate_binary_structure(2, 1)  # never connects neighbouring windows


def find_atoms_batch(windows, threshold: float = 0.5, min_pixels: int = 1, return_edge: bool = False):
    """Atoms of many windows at once: threshold, connected components, centroids.

    Labelling runs once over the whole ``(B, h, w)`` stack with a structuring
    element that connects pixels only within a window (4-connectivity).

    Parameters
    ----------
    windows : array (B, h, w)
        Decoded windows (atom probability, 0–1).
    threshold : float
        Pixels above it are atom pixels.
    min_pixels : int
        Components smaller than this are ignored (noise).

    Returns
    -------
    window_index : (M,) int64
        Window of each atom, sorted ascending.
    yx : (M, 2) float64
        Centroid (row, column) of each atom in pixels of its window.
    edge : (M,) bool
        Only with ``return_edge``: the atom touches the window border (its
        centroid is biased inwards).
    """
    w = np.asarray(windows)
    if w.ndim != 3:
        raise ValueError(f"windows: expected a (B, h, w) stack, got shape {w.shape}")
    labels, n = ndimage.label(w > threshold, structure=_PLANE_CROSS)
    if n == 0:
        empty = (np.zeros(0, np.int64), np.zeros((0, 2)))
        return empty + (np.zeros(0, bool),) if return_edge else empty
    flat = labels.ravel()
    on = np.flatnonzero(flat)
    lab = flat[on]
    b, rem = np.divmod(on, w.shape[1] * w.shape[2])
    y, x = np.divmod(rem, w.shape[2])
    size = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)
    cy = np.bincount(lab, weights=y, minlength=n + 1)[1:] / size
    cx = np.bincount(lab, weights=x, minlength=n + 1)[1:] / size
    win = np.zeros(n + 1, dtype=np.int64)
    win[lab] = b
    win = win[1:]
    keep = size >= max(1, int(min_pixels))
    # labels are numbered in raster order, so windows come out sorted
    out = (win[keep], np.stack([cy[keep], cx[keep]], axis=1))
    if not return_edge:
        return out
    border = (y == 0) | (x == 0) | (y == w.shape[1] - 1) | (x == w.shape[2] - 1)
    edge = np.bincount(lab, weights=border, minlength=n + 1)[1:] > 0
    return out + (edge[keep],)


def estimate_bond_length(window_index, yx, max_windows: int = 400) -> float:
    """Median nearest-neighbour distance (pixels) of atoms within the same window.

    Pass only atoms that do not touch the window border (their centroids are biased).
    """
    from scipy.spatial import cKDTree

    d = []
    starts = np.searchsorted(window_index, np.unique(window_index))
    bounds = list(zip(starts, list(starts[1:]) + [len(window_index)]))
    step = max(1, len(bounds) // max_windows)
    for s, e in bounds[::step]:
        if e - s >= 2:
            dist, _ = cKDTree(yx[s:e]).query(yx[s:e], k=2)
            d.append(dist[:, 1])
    if not d:
        raise ValueError("decoded windows: fewer than two atoms in every window, so no bond length can be measured "
                         "in them; give the bond length (--bond-length), and check that the model learned its "
                         "windows (the latent check after training)")
    return float(np.median(np.concatenate(d)))


# ------------------------------------------------------------------- rings
def _cluster_size(yx: np.ndarray, start: int, low: float, high: float) -> int:
    d2 = ((yx[:, None] - yx[None]) ** 2).sum(-1)
    adjacency = (d2 > low * low) & (d2 < high * high)
    seen = np.zeros(len(yx), bool)
    seen[start] = True
    frontier = seen.copy()
    while frontier.any():
        frontier = adjacency[frontier].any(0) & ~seen
        seen |= frontier
    return int(seen.sum())


def centre_chemistry(yx, centre, bond_limits, mode: str = "atom"):
    """Rings at the centre of one window.

    Parameters
    ----------
    yx : (n, 2) array
        Atom positions (pixels) of the window.
    centre : (2,) array
        Window centre (pixels), ``((h − 1)/2, (w − 1)/2)``.
    bond_limits : (low, high)
        Bond distance limits in pixels.
    mode : {"atom", "hollow"}

    Returns
    -------
    atom mode: ``(counts (4,) int, centre_index, physical)``;
    hollow mode: ``(ring_size, centre_index, physical)`` where ``ring_size`` is
    the size of the ring enclosing the centre (0 if none).
    """
    from skimage.measure import points_in_poly

    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    if len(yx) == 0:
        return (np.zeros(4, np.int64) if mode == "atom" else 0), -1, False
    c = int(np.argmin(((yx - centre) ** 2).sum(1)))
    rings = rings_at(yx, c, bond_limits)
    if mode == "hollow":
        for ring in rings:
            if points_in_poly(np.asarray(centre, float)[None], yx[ring])[0]:
                return len(ring), c, True
        return 0, c, False
    counts = np.zeros(4, dtype=np.int64)
    for ring in rings:
        counts[len(ring) - 5] += 1
    total = int(counts.sum())
    if total >= 4:
        return counts, c, False
    if total == 0 and _cluster_size(yx, c, *bond_limits) <= 3:
        return counts, c, False
    return counts, c, True


# --------------------------------------------------------------------- map
@dataclass
class ChemistryMap:
    """Result of :func:`chemistry_map` (arrays ``(D, D)`` indexed ``[row = z_b, column = z_a]``).

    Attributes
    ----------
    grid : (D,) latent values along each axis (row 0 / column 0 = lowest).
    counts : (D, D, 4) int, rings of 5, 6, 7, 8 members through the centre
        atom (atom mode; zeros in hollow mode).
    ring_size : (D, D) int, size of the ring enclosing the centre (hollow
        mode; 0 where none; zeros in atom mode).
    physical : (D, D) bool
    n_atoms : (D, D) int, atoms found in each decoded window.
    bond_length : float, ``L`` in pixels.
    params : dict, every parameter used.
    """

    grid: np.ndarray
    counts: np.ndarray
    ring_size: np.ndarray
    physical: np.ndarray
    n_atoms: np.ndarray
    bond_length: float
    mode: str = "atom"
    params: dict = field(default_factory=dict)

    def n(self, size: int) -> np.ndarray:
        """Map of the number of ``size``-membered rings at the centre atom (−1 where unphysical)."""
        if size not in RING_SIZES:
            raise ValueError(f"size: ring size must be one of {RING_SIZES}, got {size}")
        out = self.counts[..., size - 5].astype(np.int64)
        return np.where(self.physical, out, -1)

    def summary(self) -> str:
        """One sentence on the plane: how much of it is unphysical and why, and the ring pattern of the rest."""
        n = self.physical.size
        bad = ~self.physical
        if self.mode == "hollow":
            reasons = f"no ring encloses the centre" if bad.any() else ""
            common = np.bincount(self.ring_size[self.physical].ravel(), minlength=9)
        else:
            crowded = bad & (self.counts.sum(-1) >= 4)
            reasons = ", ".join(part for part in (
                f"{(bad & ~crowded).sum() / n:.0%} no lattice (no atom, or ≤ 3 bonded atoms and no ring)"
                if (bad & ~crowded).any() else "",
                f"{crowded.sum() / n:.0%} ≥ 4 rings at the centre atom" if crowded.any() else "") if part)
            common = None
        text = f"{bad.mean():.0%} of the latent plane unphysical" + (f" ({reasons})" if reasons else "")
        if not self.physical.any():
            return text + "; no point of the plane decodes to rings a lattice can have"
        if common is not None:
            size = int(np.argmax(common))
            return text + f"; the ring around the centre is most often a {size}-ring ({common[size] / self.physical.sum():.0%} of the physical region)"
        patterns, counts = np.unique(self.counts[self.physical][:, :3], axis=0, return_counts=True)
        top = patterns[int(np.argmax(counts))]
        return text + (f"; most of the physical region ({counts.max() / self.physical.sum():.0%}) has "
                       f"(n5, n6, n7) = ({top[0]}, {top[1]}, {top[2]}) at the centre atom")

    def rgb(self) -> np.ndarray:
        """``(D, D, 3)`` float in [0, 1]: (n5, n6, n7) each divided by its maximum over
        the physical points (hollow mode: red 5-, green 6-, blue 7-rings); unphysical points black."""
        if self.mode == "hollow":
            rgb = np.stack([self.ring_size == k for k in (5, 6, 7)], axis=-1).astype(np.float64)
        else:
            rgb = self.counts[..., :3].astype(np.float64)
            peak = np.where(self.physical[..., None], rgb, 0).reshape(-1, 3).max(0)
            rgb = rgb / np.where(peak > 0, peak, 1.0)
        rgb[~self.physical] = 0.0
        return rgb

    def index_of(self, z) -> tuple[np.ndarray, np.ndarray]:
        """Grid ``(row, column)`` nearest to latent points ``z (N, 2)`` (clipped to the map)."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        if z.shape[1] != 2:
            raise ValueError(f"z: expected (N, 2) latent points, got shape {z.shape}")
        g = self.grid
        step = (g[-1] - g[0]) / max(len(g) - 1, 1) or 1.0
        col = np.clip(np.rint((z[:, 0] - g[0]) / step), 0, len(g) - 1).astype(np.int64)
        row = np.clip(np.rint((z[:, 1] - g[0]) / step), 0, len(g) - 1).astype(np.int64)
        return row, col

    def classify(self, z) -> np.ndarray:
        """``(N, 4)`` ring counts (n5..n8) of the map cell of each latent point; −1 rows where unphysical
        (hollow mode: column 0 holds the ring size)."""
        row, col = self.index_of(z)
        if self.mode == "hollow":
            out = np.zeros((len(row), 4), np.int64)
            out[:, 0] = self.ring_size[row, col]
        else:
            out = self.counts[row, col].astype(np.int64)
        out[~self.physical[row, col]] = -1
        return out


def recorded_bond_length(model) -> float | None:
    """Bond length (pixels) from the scale a model's windows were cut at: the sites' nearest-neighbour
    spacing recorded with its windows (``site_spacing_px``; atoms: one bond; hollow sites of a
    honeycomb: √3 bonds). ``None`` for models without the record."""
    norm = getattr(model, "normalisation", None) or {}
    spacing = norm.get("site_spacing_px")
    if not spacing or not np.isfinite(spacing) or spacing <= 0:
        return None
    return float(spacing) / np.sqrt(3.0) if norm.get("site_kind") == "hollow" else float(spacing)


def recorded_threshold(model) -> float | None:
    """Atom threshold from the scale a model's windows were recorded at: 0.5 (the papers' threshold,
    half of the windows' 0–1 range) where its training windows were cut from the atom probability
    map or each was scaled to [0, 1] on its own; ``None`` where the record does not fix the scale
    (raw-image windows scaled for the whole movie, or models without the record)."""
    norm = getattr(model, "normalisation", None) or {}
    if norm.get("source") == "map" or norm.get("mode") == "window":
        return 0.5
    return None


def _model_of(decoder):
    """The trained model behind ``decoder`` (a model, or a :func:`model_decoder` callable), else ``None``."""
    if hasattr(decoder, "config") and hasattr(decoder, "normalisation"):
        return decoder
    return getattr(decoder, "model", None)


def atom_threshold(decoder, d: int = 200, span: float = 3.0, progress: Callable[[float], None] | None = None) -> float:
    """The decoded pixel value that separates atoms from background, from the pixels decoded on a
    sub-grid of the latent plane: 0.5 (the papers' threshold) where they look like a 0–1 probability
    map (99.8 % of them within −0.15 … 1.15, atoms' peaks above 0.6); otherwise halfway between the background
    (5th percentile) and the atoms' peaks (99.5th percentile), whatever the windows' scale (cut from
    an image, normalised per window or not)."""
    from .latent_grid import subgrid_pixels

    values = subgrid_pixels(decoder, d, span, max_side=16)
    if progress is not None:
        progress(0.0)  # a cancel before anything is said of the decoded pixels
    values = values[np.isfinite(values)]
    if values.size == 0 or not values.max() > values.min():
        raise ValueError("decoded windows: every pixel has the same value; the model decodes no atoms "
                         "(it learned nothing; see the latent check of its training)")
    floor, low, high, top = np.percentile(values, [0.1, 5.0, 99.5, 99.9])
    if floor >= -0.15 and top <= 1.15 and high > 0.6:
        return 0.5
    return float(0.5 * (low + high))


def _check_window(shape, L: float, mode: str) -> None:
    """Rings through the centre atom reach two bonds from it (one bond around a hollow site): the
    window must hold them, or every grid point would be unphysical for want of room."""
    need = 2.2 if mode == "atom" else 1.2
    half = min(shape) / 2.0
    if half < need * L:
        side = 2 * int(np.ceil(need * L + 1))
        raise ValueError(
            f"windows of {min(shape)} px show {half / L:.1f} bond lengths ({L:.1f} px) around the "
            f"{'centre atom' if mode == 'atom' else 'centre'}; its rings reach {need - 0.2:g} bond lengths: "
            f"train on windows of at least {side} px (analyze --arch skip-rvae chooses them; or --window {side})"
            + (", or map hollow-site-centred windows (--mode hollow)" if mode == "atom" else ""))


def chemistry_map(
    decoder,
    d: int = 200,
    *,
    span: float = 3.0,
    threshold: float | str = "auto",
    bond_length: float | None = None,
    bond_range=(0.5, 1.2),
    mode: str = "atom",
    min_pixels: int = 2,
    batch: int = 512,
    progress: Callable[[float], None] | None = None,
) -> ChemistryMap:
    """Decode a ``d × d`` latent grid and count the rings at each decoded window's centre.

    Parameters
    ----------
    decoder : InvariantVAE or callable
        A model (latents 0 and 1, others 0, angle 0) or a callable mapping
        ``z (N, 2)`` to windows ``(N, h, w)`` (see :func:`model_decoder`).
    d : int
        Grid points per axis (1–1000; the paper uses 200).
    span : float
        The grid is ``linspace(−span, span, d)`` on both latents.
    threshold : float or "auto"
        Atom pixels are decoded values above it; ``"auto"``: from the scale the model's windows
        were recorded at (:func:`recorded_threshold`: 0.5 on 0–1 windows), else from the decoded
        data (:func:`atom_threshold`).
    bond_length : float, optional
        ``L`` in pixels; default the scale the model's windows were cut at
        (:func:`recorded_bond_length`), else the median nearest-neighbour distance
        of the atoms found in the decoded windows.
    bond_range : (low, high)
        A bond when ``low·L < d < high·L``.
    mode : {"atom", "hollow"}
        Atom-centred windows (ring counts at the centre atom) or hollow-site-
        centred windows (size of the ring around the centre).
    min_pixels : int
        Smallest atom (connected pixels) kept.
    batch : int
        Windows decoded and analysed at a time (memory ∝ batch · h · w).
    progress : callable, optional
        Called with the fraction done (0–1) after each batch; raise from it
        to cancel.

    Returns
    -------
    ChemistryMap
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected 'atom' or 'hollow', got {mode!r}")
    lo, hi = float(bond_range[0]), float(bond_range[1])
    if not 0 <= lo < hi:
        raise ValueError(f"bond_range: expected (low, high) with 0 ≤ low < high, got {bond_range}")
    model = _model_of(decoder)
    if bond_length is None and model is not None:
        bond_length = recorded_bond_length(model)
    if isinstance(threshold, str):
        if threshold != "auto":
            raise ValueError(f"threshold: a number or 'auto', got {threshold!r}")
        threshold = recorded_threshold(model) if model is not None else None
        if threshold is None:
            if progress is not None:
                progress(0.0)  # a cancel before the threshold's own decoding
            threshold = atom_threshold(decoder, d, span, progress)
    grid, zz = grid_points(d, span)
    d = len(grid)
    n_total = len(zz)
    atom_win, atom_yx, atom_edge, shape = [], [], [], None
    for s, windows in decoded_batches(decoder, zz, batch):
        shape = windows.shape[1:]
        win, yx, edge = find_atoms_batch(windows, threshold, min_pixels, return_edge=True)
        atom_win.append(win + s)
        atom_yx.append(yx)
        atom_edge.append(edge)
        if progress is not None:
            progress(0.5 * min(s + len(windows), n_total) / n_total)
    win = np.concatenate(atom_win)
    yx = np.concatenate(atom_yx)
    inner = ~np.concatenate(atom_edge)
    if bond_length is None:
        try:
            L = estimate_bond_length(win[inner], yx[inner])
        except ValueError:  # small windows: the neighbours touch the border; their centroids still tell L
            L = estimate_bond_length(win, yx)
    else:
        L = float(bond_length)
    if not (np.isfinite(L) and L > 0):
        raise ValueError(f"bond_length: must be a positive number of pixels, got {bond_length}")
    _check_window(shape, L, mode)
    limits = (lo * L, hi * L)
    centre = (np.asarray(shape, np.float64) - 1) / 2
    counts = np.zeros((n_total, 4), np.int64)
    ring_size = np.zeros(n_total, np.int64)
    physical = np.zeros(n_total, bool)
    starts = np.searchsorted(win, np.arange(n_total + 1))
    report_every = max(1, n_total // 20)
    for k in range(n_total):
        a, b = starts[k], starts[k + 1]
        result, _, ok = centre_chemistry(yx[a:b], centre, limits, mode)
        if mode == "atom":
            counts[k] = result
        else:
            ring_size[k] = result
        physical[k] = ok
        if progress is not None and (k + 1) % report_every == 0:
            progress(0.5 + 0.5 * (k + 1) / n_total)
    n_atoms = np.diff(starts)
    params = dict(d=d, span=float(span), threshold=float(threshold), bond_length=L, bond_range=[lo, hi],
                  mode=mode, min_pixels=int(min_pixels), window=list(map(int, shape)))
    return ChemistryMap(grid, counts.reshape(d, d, 4), ring_size.reshape(d, d), physical.reshape(d, d),
                        n_atoms.reshape(d, d), L, mode, params)


def window_graph(decoder, z, *, threshold: float = 0.5, bond_length: float, bond_range=(0.5, 1.2),
                 min_pixels: int = 2, mode: str = "atom") -> dict:
    """One latent point's decoded window with its atoms and bonds (for "click shows the window").

    Parameters
    ----------
    decoder : InvariantVAE or callable
        As in :func:`chemistry_map`.
    z : (2,) array
        The latent point.
    bond_length : float
        ``L`` in pixels (e.g. ``ChemistryMap.bond_length``).

    Returns
    -------
    dict with ``window`` (h, w), ``atoms`` (n, 2) (row, column pixels),
    ``bonds`` (m, 2) atom-index pairs, ``centre_index`` (−1 if no atom),
    ``rings`` (list of atom-index lists through the centre atom),
    ``counts`` (4,) (atom mode) or ``ring_size`` (hollow mode), ``physical``.
    """
    from ..detect.rings import bond_pairs

    decoder = as_decoder(decoder)
    z = np.asarray(z, dtype=np.float64).reshape(1, 2)
    window = np.asarray(decoder(z), dtype=np.float32)[0]
    _, yx = find_atoms_batch(window[None], threshold, min_pixels)
    limits = (bond_range[0] * bond_length, bond_range[1] * bond_length)
    centre = (np.asarray(window.shape, np.float64) - 1) / 2
    result, c, ok = centre_chemistry(yx, centre, limits, mode)
    bonds = bond_pairs(yx, bond_length, bond_range) if len(yx) >= 2 else np.zeros((0, 2), np.int64)
    out = {"window": window, "atoms": yx, "bonds": bonds, "centre_index": c,
           "rings": rings_at(yx, c, limits) if c >= 0 else [], "physical": ok}
    out["counts" if mode == "atom" else "ring_size"] = result
    return out
