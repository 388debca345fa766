"""Ferroic variants from an rVAE's angle (paper 003): peaks, variant labels, the substrate cluster, figures.

The encoded angle of B-site-centred windows turns with the B-site off-centring, so the
polarisation variants (related by 90° turns) are peaks of the angle histogram, a quarter
turn apart. :func:`symmetric_rereading` reads again, among the readings the lattice's symmetry
makes equivalent, the windows the encoder's reading explains poorly,
:func:`common_frame_angle` reads every encoded angle in the frame of one common
template (the rVAE's template changes with the content latents, its turn included),
:func:`variant_peaks` finds the peaks, :func:`assign_variants` gives each site its nearest peak,
:func:`variant_accuracy` scores that against known labels (best peak ↔ variant matching),
:func:`angle_registration` finds the sign and offset that carry true polarisation angles into the
encoded frame (the paper's manual −100° offset, found instead of typed), and
:func:`cluster_variants` runs the GMM on (angle, latents) with the angle as a polarisation vector,
:func:`class_cluster` says how well one cluster of a GMM holds one class (the non-polar
substrate). :func:`write_variant_figures` draws the paper's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .angles import angle_difference, angle_histogram, assign_variants, find_angle_peaks, wrap_angle
from .clusters import agreement

N_VARIANTS = 4
POLARISATION_WEIGHT = 6.0  # weight of the (angle × off-centring) pair against each standardised content latent


def variant_peaks(angle, n_variants: int = N_VARIANTS, **options) -> pd.DataFrame:
    """The ``n_variants`` most prominent peaks of the angle histogram (:func:`find_angle_peaks`),
    sorted by angle, with the spacing to the next one (radians)."""
    return find_angle_peaks(np.asarray(angle, dtype=np.float64), max_peaks=int(n_variants), **options)


def variant_accuracy(angle, truth, peaks) -> float:
    """Share of sites whose nearest angle peak is their true variant, after the best one-to-one
    matching of peaks to variants (Hungarian); sites with a negative true label are ignored."""
    peaks = np.asarray(peaks, dtype=np.float64).ravel()
    if not len(peaks):
        return 0.0
    return agreement(assign_variants(np.asarray(angle, dtype=np.float64), peaks), np.asarray(truth))


def angle_registration(encoded, true_angle) -> tuple[int, float]:
    """``(sign, offset)`` with ``encoded ≈ sign · true_angle + offset`` (radians), fitted on the circle.

    The rVAE's angle has no origin (its prior leaves the mean free) and turns clockwise or
    counter-clockwise depending on the image's axes; the sign whose residuals are the most
    concentrated wins."""
    e, t = np.asarray(encoded, dtype=np.float64).ravel(), np.asarray(true_angle, dtype=np.float64).ravel()
    ok = np.isfinite(e) & np.isfinite(t)
    best = (1, 0.0, -1.0)
    for sign in (1, -1):
        mean = np.exp(1j * (e[ok] - sign * t[ok])).mean() if ok.any() else 0.0
        if abs(mean) > best[2]:
            best = (sign, float(np.angle(mean)), float(abs(mean)))
    return best[0], best[1]


def _inscribed_disc(h: int, w: int) -> np.ndarray:
    """``(h, w)`` bool: the pixels of the disc inscribed in a window (what any turn keeps inside it)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) <= (min(h, w) - 1) / 2


REREAD_MARGIN = 0.1  # an alternative reading must explain a window this much better (relative squared error)


def symmetric_rereading(windows, angle, latents, decode, *, n_fold: int = N_VARIANTS, reference=None,
                        margin: float = REREAD_MARGIN, block: int = 512):
    """Read again the windows whose encoder reading the decoder explains poorly, among readings
    the lattice's symmetry makes equally likely a priori.

    The encoder is amortised: it reads every window in one pass and can be wrong where the model
    itself is not. On a lattice of ``n_fold``-fold symmetry the variants are the same cell turned by
    ``2π/n_fold``, and a window the encoder sends to unusual latents (a template that is nearly
    symmetric, or one that does not match) gets an angle whose turn by a multiple of ``2π/n_fold`` is
    arbitrary. For each window the decoder's reconstruction (inscribed disc, squared error) is
    compared for the encoder's latents and for the reference latents (default: the median), each at
    the encoded angle plus ``k·2π/n_fold``; the best reading replaces the encoder's only where its
    error is at least ``margin`` (relative) lower. The decoder and the data decide; nothing is fitted.

    Parameters
    ----------
    windows : (N, h, w)
        The windows that were encoded (as the model saw them).
    angle : (N,) radians
        Encoded angles.
    latents : (N, k)
        Content latents (``k ≥ 1``).
    decode : callable
        ``decode(z (n, k) float32, angle (n,) float32) -> (n, h, w)`` reconstructions.

    Returns
    -------
    angle : (N,) radians, wrapped
    latents : (N, k) float32
    info : dict
        ``reread`` ((N,) bool, the windows given another reading), ``error_ratio`` ((N,) best
        error over the encoder reading's), ``reference`` (latents), ``n_fold``, ``margin``.
    """
    windows = np.asarray(windows, dtype=np.float32)
    angle = np.asarray(angle, dtype=np.float64).ravel()
    z = np.asarray(latents, dtype=np.float32).reshape(len(angle), -1)
    if len(windows) != len(angle):
        raise ValueError(f"{len(windows)} windows for {len(angle)} angles")
    if int(n_fold) < 2 or z.shape[1] == 0:
        raise ValueError("a symmetric re-reading needs n_fold ≥ 2 and at least one content latent")
    ok = np.isfinite(angle) & np.isfinite(z).all(axis=1)
    ref_z = (np.median(z[ok], axis=0) if reference is None else np.asarray(reference, np.float32).ravel()
             ).astype(np.float32)
    disc = _inscribed_disc(*windows.shape[1:])
    turns = 2 * np.pi * np.arange(int(n_fold)) / int(n_fold)
    new_angle, new_z = angle.copy(), z.copy()
    reread, ratio = np.zeros(len(angle), bool), np.ones(len(angle))
    rows = np.flatnonzero(ok)
    for lo in range(0, len(rows), int(block)):
        r = rows[lo:lo + int(block)]
        data = windows[r][:, disc]
        errors, readings = [], []
        for own in (True, False):
            zz = z[r] if own else np.repeat(ref_z[None], len(r), 0)
            for t in turns:
                a = wrap_angle(angle[r] + t).astype(np.float32)
                errors.append(((np.asarray(decode(zz, a), dtype=np.float32)[:, disc] - data) ** 2).mean(axis=1))
                readings.append((own, t))
        errors = np.stack(errors, axis=1)
        best = errors.argmin(axis=1)
        ratio[r] = errors[np.arange(len(r)), best] / np.maximum(errors[:, 0], 1e-30)
        switch = ratio[r] < 1.0 - float(margin)
        for j in np.unique(best[switch]):
            own, t = readings[j]
            s = r[switch & (best == j)]
            new_angle[s] = angle[s] + t
            if not own:
                new_z[s] = ref_z
            reread[s] = True
    return wrap_angle(new_angle), new_z, {"reread": reread, "error_ratio": ratio,
                                          "reference": [float(v) for v in ref_z], "n_fold": int(n_fold),
                                          "margin": float(margin)}


def common_frame_angle(angle, latents, decode, *, reference=None, steps: int = 360, block: int = 2048):
    """Encoded angles read in the frame of one common template.

    An rVAE's angle says how far *its own* template was turned, and the template changes with the
    content latents: a decoder may learn latents whose template is the cell turned part of the way
    (a weakly polar, nearly four-fold symmetric cell, as at domain walls), so two sites with the same
    polarisation get angles a quarter turn apart. Each site's template (decoded at angle 0) is
    registered to the reference template (decoded at ``reference``, default the median latents) by
    the turn ``φ`` of the best correlation over the inscribed disc (``steps`` turns, refined by a
    parabola); the angle in the common frame is ``angle + φ``.

    Parameters
    ----------
    angle : (N,) radians
        Encoded angles.
    latents : (N, k)
        Content latents of the same sites (``k = 0``: the angles are returned as they are).
    decode : callable
        ``decode(z (n, k) float32, angle (n,) float32) -> (n, h, w)`` templates.
    reference : (k,), optional
        Latents of the common template.

    Returns
    -------
    angle : (N,) radians, wrapped
    info : dict
        ``reference`` (latents of the common template or None), ``turn`` ((N,) the ``φ`` added).
    """
    angle = np.asarray(angle, dtype=np.float64).ravel()
    z = np.asarray(latents, dtype=np.float32).reshape(len(angle), -1)
    ok = np.isfinite(angle) & np.isfinite(z).all(axis=1)
    turn = np.zeros(len(angle))
    if z.shape[1] == 0 or not ok.any():
        return wrap_angle(angle), {"reference": None, "turn": turn}
    ref_z = np.median(z[ok], axis=0) if reference is None else np.asarray(reference, dtype=np.float32).ravel()
    turns = np.linspace(-np.pi, np.pi, int(steps), endpoint=False)
    ref = np.asarray(decode(np.repeat(ref_z[None].astype(np.float32), len(turns), 0), turns.astype(np.float32)))
    disc = _inscribed_disc(*ref.shape[1:])
    ref = ref[:, disc]
    ref = ref - ref.mean(axis=1, keepdims=True)
    rows = np.flatnonzero(ok)
    for lo in range(0, len(rows), int(block)):
        r = rows[lo:lo + int(block)]
        own = np.asarray(decode(z[r], np.zeros(len(r), np.float32)))[:, disc]
        score = (own - own.mean(axis=1, keepdims=True)) @ ref.T
        k = score.argmax(axis=1)
        left, mid, right = (score[np.arange(len(r)), (k + d) % len(turns)] for d in (-1, 0, 1))
        curve = left - 2 * mid + right
        step = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
        turn[r] = turns[k] + np.clip(step, -0.5, 0.5) * (turns[1] - turns[0])
    return wrap_angle(angle + turn), {"reference": [float(v) for v in ref_z], "turn": turn}


def cluster_variants(table: pd.DataFrame, latents=("z0", "z1"), n_clusters: int = 5, *,
                     polarity: str | None = "disp", weight: float = POLARISATION_WEIGHT, seed: int = 0):
    """GMM (full covariance) on (angle, latents) for ferroic variants, the angle taken as a polarisation vector.

    A non-polar cell (a substrate, a paraelectric phase) is four-fold symmetric: the rVAE turns
    its template to any of the variant angles, so its angles sit at the same peaks as the film's
    and a Gaussian per cluster on ``(cos, sin)`` of the angle would need four of them. Here the
    angle enters as ``p · (cos, sin)`` with ``p`` the site's measured off-centring (column
    ``polarity``, e.g. the B column's displacement from its four A neighbours) divided by its
    median: polar sites keep their direction, non-polar ones fall together at the origin. The pair
    is centred and scaled to an RMS length of ``weight``; each content latent is standardised.

    Without the ``polarity`` column (or ``polarity=None``) every ``p`` is 1: the plain circular angle.
    Sites without a finite angle or latent get −1; a missing off-centring counts as the median.

    Returns
    -------
    labels : (N,) int64
        Cluster per row (largest cluster 0).
    info : dict
        ``polarity`` (column used or None), ``weight``, ``n_clusters``.
    """
    from .clusters import cluster_features

    latents = [c for c in latents if c in table]
    angle = table["angle"].to_numpy(dtype=np.float64)
    values = table[latents].to_numpy(dtype=np.float64) if latents else np.zeros((len(table), 0))
    valid = np.isfinite(angle) & np.isfinite(values).all(axis=1)
    used = polarity if polarity is not None and polarity in table else None
    p = np.ones(len(table))
    if used is not None:
        length = np.abs(table[used].to_numpy(dtype=np.float64))
        scale = np.nanmedian(length[valid]) if np.isfinite(length[valid]).any() else np.nan
        if scale > 0:
            p = np.where(np.isfinite(length), length / scale, 1.0)
        else:
            used = None
    pair = (p * np.stack([np.cos(angle), np.sin(angle)]))[:, valid].T
    pair = pair - pair.mean(axis=0)
    rms = float(np.sqrt((pair**2).sum(axis=1).mean())) if len(pair) else 0.0
    pair = pair * (float(weight) / rms if rms > 1e-12 else 1.0)
    content = values[valid] - values[valid].mean(axis=0)
    content = content / np.where(content.std(axis=0) > 1e-12, content.std(axis=0), 1.0)
    labels = np.full(len(table), -1, dtype=np.int64)
    labels[valid], _ = cluster_features(np.concatenate([pair, content], axis=1), n_clusters, covariance="full",
                                        seed=seed)
    return labels, {"polarity": used, "weight": float(weight), "n_clusters": int(n_clusters)}


def class_cluster(labels, member) -> dict:
    """The cluster that best holds one class (e.g. the substrate): highest F1 of cluster vs class.

    Returns ``cluster`` (label, −1 when the class is empty), ``purity`` (share of the cluster in the
    class), ``recall`` (share of the class in the cluster) and ``f1``."""
    labels, member = np.asarray(labels).ravel(), np.asarray(member, bool).ravel()
    best = {"cluster": -1, "purity": 0.0, "recall": 0.0, "f1": 0.0}
    if not member.any():
        return best
    for c in np.unique(labels[labels >= 0]):
        inside = labels == c
        both = float((inside & member).sum())
        purity, recall = both / inside.sum(), both / member.sum()
        f1 = 2 * purity * recall / (purity + recall) if both else 0.0
        if f1 > best["f1"]:
            best = {"cluster": int(c), "purity": purity, "recall": recall, "f1": f1}
    return best


def density_2d(x, y, *, bins: int = 64, sigma: float = 1.5, circular_x: bool = False):
    """Smoothed 2D histogram (a Gaussian kernel density on a grid, as the paper's figures).

    ``x`` is an angle (radians, over one turn, smoothed circularly) when ``circular_x``.
    Returns ``(density (bins, bins), extent (x0, x1, y0, y1))``, row 0 at the bottom (low ``y``)."""
    from scipy.ndimage import gaussian_filter

    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if circular_x:
        x = wrap_angle(x)
        xr = (-np.pi, np.pi)
    else:
        xr = tuple(np.percentile(x, [0.5, 99.5])) if len(x) else (0.0, 1.0)
    yr = tuple(np.percentile(y, [0.5, 99.5])) if len(y) else (0.0, 1.0)
    xr = xr if xr[1] > xr[0] else (xr[0] - 1, xr[0] + 1)
    yr = yr if yr[1] > yr[0] else (yr[0] - 1, yr[0] + 1)
    hist, _, _ = np.histogram2d(y, x, bins=bins, range=[yr, xr])
    mode = ("nearest", "wrap") if circular_x else "nearest"
    density = gaussian_filter(hist, sigma, mode=mode)
    return density / max(density.sum(), 1e-12), (xr[0], xr[1], yr[0], yr[1])


def write_variant_figures(folder, table: pd.DataFrame, peaks, *, windows=None, clusters=None,
                          true_angles=None, film=None) -> list[tuple[str, str]]:
    """The paper's figures from an encoded sites table (``x, y, angle, z0, z1``), written as PNG.

    Parameters
    ----------
    table : DataFrame
        One row per window: ``x, y`` (pixels), ``angle`` (radians), ``z0`` (``z1`` optional).
    peaks : (K,) radians
        The variant peaks (marked on the histogram).
    windows : (N, w, w), optional
        The windows of the rows, for the mean window per cluster minus the global mean.
    clusters : (N,) int, optional
        GMM cluster per row.
    true_angles : (K,) radians, optional
        True variant angles already carried into the encoded frame (:func:`angle_registration`),
        marked on the histogram beside the peaks.
    film : (N,) bool, optional
        Rows of the histogram (default all).

    Returns
    -------
    list of (file name, caption)
    """
    from .plots import plot_image, plot_lines, plot_scatter, plot_windows

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    angle = wrap_angle(table["angle"].to_numpy())
    rows = np.ones(len(table), bool) if film is None else np.asarray(film, bool)
    out: list[tuple[str, str]] = []
    centres, density = angle_histogram(angle[rows], bins=60, smooth=0.0)
    marks = list(wrap_angle(np.asarray(peaks, dtype=np.float64)))
    curves = {"encoded angle": density}
    caption = "histogram of the encoded angle (6° bins); grey lines: the peaks found"
    if true_angles is not None:
        true = wrap_angle(np.asarray(true_angles, dtype=np.float64))
        near = np.abs(angle_difference(centres[:, None], true[None, :])).min(1)
        curves["true variant angles"] = np.where(near <= np.pi / 60, 0.5 * density.max(), 0.0)
        caption += "; half-height spikes: the true variant angles carried into the encoded frame"
    plot_lines(folder / "angle_histogram.png", centres, curves, title="encoded angle", xlabel="angle (rad)",
               ylabel="density", marks=marks)
    out.append(("angle_histogram.png", caption))
    latents = [c for c in ("z0", "z1") if c in table]
    pairs = [("angle", z) for z in latents] + ([("z0", "z1")] if len(latents) == 2 else [])
    for a, b in pairs:
        dens, extent = density_2d(table[a], table[b], circular_x=a == "angle")
        name = f"density_{a}_{b}.png"
        plot_image(folder / name, dens, extent=extent, cmap="viridis", title=f"density of ({a}, {b})",
                   xlabel=a + (" (rad)" if a == "angle" else ""), ylabel=b)
        out.append((name, f"2D density (Gaussian kernel on a grid) of {a} and {b}"))
    if clusters is not None and latents:
        plot_scatter(folder / "gmm_angle_z0.png", angle, table["z0"], np.asarray(clusters), labels=True,
                     title="GMM (full covariance) on (angle, latents)", xlabel="angle (rad)", ylabel="z0")
        out.append(("gmm_angle_z0.png", "GMM clusters on (angle as a polarisation vector, z0, z1), shown on angle "
                                        "vs z0"))
        plot_scatter(folder / "gmm_map.png", table["x"], table["y"], np.asarray(clusters), labels=True, point=3,
                     invert_y=True, title="GMM clusters in real space", xlabel="x (px)", ylabel="y (px)")
        out.append(("gmm_map.png", "GMM clusters at the B sites (real space)"))
        if windows is not None:
            from .clusters import cluster_mean_windows

            ids, means = cluster_mean_windows(np.asarray(windows), np.asarray(clusters))
            plot_windows(folder / "cluster_mean_minus_global.png", means, titles=[f"cluster {i}" for i in ids])
            out.append(("cluster_mean_minus_global.png", "mean window of each cluster minus the mean of all windows"))
    plot_scatter(folder / "angle_map.png", table["x"], table["y"], angle, cmap="cyclic", point=3, invert_y=True,
                 title="B sites coloured by the encoded angle", xlabel="x (px)", ylabel="y (px)")
    out.append(("angle_map.png", "real-space map: each B site coloured by its encoded angle (hue wheel)"))
    return out
