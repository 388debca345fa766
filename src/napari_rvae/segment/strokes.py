"""Simulated painted strokes and thin-structure scores, for testing training from sparse labels.

A napari user labels a frame with a few short brush strokes: along a wall, across a domain,
over a contaminant. :func:`simulate_strokes` does the same on a ground-truth label image (brush
lines a few pixels wide, each stroke's pixels labelled with the ground truth under it), and
:func:`thin_iou` scores a predicted thin class (walls) with and without a pixel tolerance.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import line


def _stroke_mask(shape, y0, x0, y1, x1, width: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    rr, cc = line(int(round(y0)), int(round(x0)), int(round(y1)), int(round(x1)))
    ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    mask[rr[ok], cc[ok]] = True
    if width > 1:
        r = (width - 1) / 2
        yy, xx = np.mgrid[-int(np.ceil(r)): int(np.ceil(r)) + 1, -int(np.ceil(r)): int(np.ceil(r)) + 1]
        mask = ndimage.binary_dilation(mask, yy ** 2 + xx ** 2 <= r * r + 0.25)
    return mask


def _direction(truth_class: np.ndarray, y: int, x: int, radius: int = 6) -> np.ndarray:
    """Unit (dy, dx) along which the class's pixels near (y, x) extend (principal axis)."""
    y0, x0 = max(0, y - radius), max(0, x - radius)
    pts = np.argwhere(truth_class[y0: y + radius + 1, x0: x + radius + 1]).astype(float)
    if len(pts) < 3:
        return np.array([1.0, 0.0])
    pts -= pts.mean(0)
    _, vecs = np.linalg.eigh(pts.T @ pts)
    return vecs[:, -1]


def simulate_strokes(truth: np.ndarray, n_strokes: dict, *, width: int = 3, length: tuple = (15, 40),
                     regions: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Paint short brush strokes on a frame the way a user would, labels from the ground truth.

    Parameters
    ----------
    truth : (Y, X) int array
        Ground-truth labels (1 background / domain, 2 … classes).
    n_strokes : dict
        ``{label value: number of strokes}``. A stroke for a thin class (e.g. walls) starts on one
        of its pixels and follows the class's local direction; a stroke for a blob class (e.g.
        contaminants) crosses the blob through a pixel of it; a stroke for label 1 is a random
        line that starts on label 1.
    width : int
        Brush width (pixels).
    length : (min, max)
        Stroke length range (pixels); blob strokes are clipped to the blob's size plus the brush.
    regions : (Y, X) int array, optional
        A map of visibly different areas (e.g. the domain orientation); the label-1 strokes take
        turns among its values, as a user paints each kind of area at least once.
    seed : int

    Returns
    -------
    (Y, X) int64 array: 0 where not painted, else the ground truth under the stroke (so a stroke
    that slips off a 2-px wall also paints the domain pixels beside it, as a real brush would).
    """
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"truth must be a (Y, X) label image, got shape {truth.shape}")
    if width < 1:
        raise ValueError("width must be >= 1 pixel")
    if regions is not None and np.shape(regions) != truth.shape:
        raise ValueError(f"regions {np.shape(regions)} must have the shape of truth {truth.shape}")
    rng = np.random.default_rng(seed)
    painted = np.zeros(truth.shape, bool)
    for value, count in n_strokes.items():
        cls = truth == value
        pixels = np.argwhere(cls)
        if count and not len(pixels):
            raise ValueError(f"label {value} does not occur in truth; cannot paint strokes on it")
        groups = [pixels]
        if value == 1 and regions is not None:
            kinds = regions[pixels[:, 0], pixels[:, 1]]
            groups = [pixels[kinds == k] for k in np.unique(kinds)]
        for i in range(int(count)):
            group = groups[i % len(groups)]
            y, x = group[rng.integers(len(group))]
            half = rng.uniform(*length) / 2
            if value == 1:
                th = rng.uniform(0, np.pi)
                d = np.array([np.sin(th), np.cos(th)])
            else:
                d = _direction(cls, y, x)
                # a blob (as wide as long) gets a stroke across it, no longer than the blob
                lab, _ = ndimage.label(cls[max(0, y - 20): y + 21, max(0, x - 20): x + 21])
                ly, lx = y - max(0, y - 20), x - max(0, x - 20)
                blob = lab == lab[ly, lx]
                extent = np.ptp(np.argwhere(blob), axis=0).max() + 1
                if blob.sum() > 0.3 * extent ** 2:  # compact: a contaminant, not a line
                    half = min(half, extent / 2)
            painted |= _stroke_mask(truth.shape, y - half * d[0], x - half * d[1], y + half * d[0],
                                    x + half * d[1], width)
    return np.where(painted, truth, 0).astype(np.int64)


def thin_iou(predicted: np.ndarray, truth: np.ndarray, tolerance: int = 1) -> dict:
    """IoU of a thin class (e.g. walls), strict and with a pixel tolerance.

    Parameters
    ----------
    predicted, truth : (..., Y, X) bool arrays (per frame if 3-D; scores pool all pixels).
    tolerance : int
        Pixels (chessboard distance) a predicted pixel may lie from a true one and still count.

    Returns
    -------
    dict with ``strict`` (|P ∩ T| / |P ∪ T|), ``precision`` (share of predicted pixels within
    ``tolerance`` of a true pixel), ``recall`` (share of true pixels within ``tolerance`` of a
    predicted pixel) and ``tolerant`` = 1 / (1/precision + 1/recall − 1) — the IoU that these
    tolerant precision and recall would give (it equals the strict IoU when ``tolerance`` is 0).
    """
    predicted = np.asarray(predicted, bool)
    truth = np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} must have the same shape")
    inter, union = np.sum(predicted & truth), np.sum(predicted | truth)
    strict = float(inter / union) if union else 1.0
    st = np.ones((3, 3), bool)
    if predicted.ndim == 3:
        st = np.zeros((3, 3, 3), bool)
        st[1] = True
    grow = (lambda m: ndimage.binary_dilation(m, st, iterations=tolerance)) if tolerance > 0 else (lambda m: m)
    precision = float(np.sum(predicted & grow(truth)) / max(1, predicted.sum())) if predicted.any() else 0.0
    recall = float(np.sum(truth & grow(predicted)) / max(1, truth.sum())) if truth.any() else 1.0
    tolerant = 1.0 / (1.0 / precision + 1.0 / recall - 1.0) if precision > 0 and recall > 0 else 0.0
    return {"strict": strict, "tolerant": tolerant, "precision": precision, "recall": recall,
            "tolerance_px": int(tolerance)}


#: ~20 strokes as a user would paint them on a domain-movie frame: walls (label 2), domains
#: (label 1) and contaminants (label 3).
STROKE_RECIPE = {2: 10, 1: 6, 3: 4}


def stroke_training_settings(n_classes: int = 3, epochs: int = 24):
    """``(UNetConfig, TrainSettings)`` for training a small U-Net from a few strokes on one frame.

    Crops of 64² centred on painted pixels (classes drawn uniformly), class
    weights off (the crops already balance the classes; weighting on top over-predicts walls), the
    default augmentation, learning rate 2·10⁻³, and only 10 % of the painted blocks
    held out for validation (with ~20 strokes every stroke counts). 24 epochs × 32 steps: at 8 the
    walls are already in the right places (1-px-tolerant IoU ≈ 0.95) but often a pixel too thick
    or off to one side (strict IoU 0.72–0.79); the extra epochs are what puts them on the truth's
    pixels (strict IoU ≈ 0.85). About 1–2 minutes on 2 quiet cores.
    """
    from .train import TrainSettings
    from .unet import UNetConfig

    return UNetConfig(n_classes=n_classes), TrainSettings(epochs=epochs, crop=64, batch=8, steps_per_epoch=32,
                                                          lr=2e-3, val_fraction=0.1, class_weighting=False, seed=0)
