"""Honest validation of a segmenter trained from painted strokes.

A user paints a few strokes per class. Validating on pixels *next to* training pixels
measures nothing (neighbouring pixels of one stroke look alike), and validating on a
held-out square that happens to hold only background gives "IoU 1.000" for a model that
finds no atom. So:

* :func:`split_strokes` holds out whole **strokes** (connected painted regions of one
  class in one frame), about ``fraction`` of each class's painted pixels, never a class's
  last stroke;
* :func:`confusion` / :func:`quality` score predictions on the held-out pixels: a
  confusion matrix, the IoU of **each** class and the pixel accuracy;
* :func:`quality` also says when the held-out set is too small to trust (a class with no
  held-out stroke, or fewer than ``min_pixels`` held-out pixels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_PIXELS = 50  # held-out pixels per class below which its IoU is not trusted
MIN_STROKES = 1


def strokes(labels: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Painted strokes: ``(frame, label, flat pixel indices)`` per connected region of one label.

    ``labels`` is ``(T, Y, X)`` in napari's convention (0 = unpainted).
    """
    out = []
    structure = np.ones((3, 3), bool)
    for t in range(labels.shape[0]):
        frame = labels[t]
        for value in np.unique(frame[frame > 0]):
            regions, n = ndimage.label(frame == value, structure=structure)
            if n == 0:
                continue
            order = np.argsort(regions, axis=None, kind="stable")
            sorted_regions = regions.ravel()[order]
            bounds = np.searchsorted(sorted_regions, np.arange(1, n + 2))
            offset = t * frame.size
            for k in range(n):
                out.append((t, int(value), order[bounds[k]:bounds[k + 1]] + offset))
    return out


def split_strokes(labels, fraction: float = 0.2, rng: np.random.Generator | None = None):
    """Hold out whole strokes for validation: about ``fraction`` of each class's painted pixels.

    Parameters
    ----------
    labels : (T, Y, X) int array
        0 unpainted, 1 background, 2 … classes.
    fraction : float
        Target share of each class's painted pixels held out (0 = none).
    rng : numpy Generator, optional

    Returns
    -------
    train, validation : (T, Y, X) int arrays
        The painted labels split in two (each pixel in exactly one).
    held : dict
        ``label -> {"strokes": held-out strokes, "pixels": held-out pixels, "painted_strokes": all}``.
    """
    labels = np.asarray(labels)
    rng = rng or np.random.default_rng(0)
    train, val = labels.copy(), np.zeros_like(labels)
    held: dict[int, dict] = {}
    by_label: dict[int, list] = {}
    for t, value, pixels in strokes(labels):
        by_label.setdefault(value, []).append(pixels)
    for value, parts in sorted(by_label.items()):
        total = sum(len(p) for p in parts)
        info = {"strokes": 0, "pixels": 0, "painted_strokes": len(parts), "painted_pixels": int(total)}
        held[value] = info
        if fraction <= 0 or len(parts) < 2:
            continue
        order = rng.permutation(len(parts))
        target = fraction * total
        for i in order[:-1]:  # never the last stroke: the class must stay in training
            if info["pixels"] >= target:
                break
            flat = parts[i]
            val.ravel()[flat] = value
            train.ravel()[flat] = 0
            info["strokes"] += 1
            info["pixels"] += int(len(flat))
    return train, val, held


def confusion(predicted, truth, n_classes: int) -> np.ndarray:
    """``(C, C)`` counts over painted pixels: row = painted label − 1, column = predicted label − 1."""
    predicted = np.asarray(predicted).ravel()
    truth = np.asarray(truth).ravel()
    painted = truth > 0
    t = truth[painted].astype(np.int64) - 1
    p = np.clip(predicted[painted].astype(np.int64) - 1, 0, n_classes - 1)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def quality(matrix: np.ndarray, names=None, held: dict | None = None, min_pixels: int = MIN_PIXELS) -> dict:
    """IoU per class, pixel accuracy and a trust note from a confusion matrix.

    Returns ``{"iou": [per class, NaN where the class has no held-out pixel], "mean_iou",
    "accuracy", "pixels": [held-out pixels per class], "confusion": matrix as lists,
    "trusted": bool, "note": str}``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    names = list(names) if names is not None else [f"label {c + 1}" for c in range(n)]
    tp = np.diag(m)
    pixels = m.sum(1)
    union = pixels + m.sum(0) - tp
    iou = np.where(pixels > 0, tp / np.maximum(union, 1), np.nan)
    accuracy = float(tp.sum() / m.sum()) if m.sum() else float("nan")
    problems = []
    painted = [c for c in range(n) if held is None or (c + 1) in held]
    for c in painted:
        name = names[c] if c < len(names) else f"label {c + 1}"
        if pixels[c] == 0:
            strokes_painted = (held or {}).get(c + 1, {}).get("painted_strokes")
            why = " (only one stroke painted)" if strokes_painted == 1 else ""
            problems.append(f"{name}: nothing held out{why}")
        elif pixels[c] < min_pixels:
            problems.append(f"{name}: {int(pixels[c])} held-out pixels")
    trusted = not problems and m.sum() > 0
    note = "" if trusted else ("validation set too small to trust — " + "; ".join(problems or ["no held-out pixels"])
                               + ": paint more strokes of each class")
    return {"iou": [float(v) for v in iou], "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
            "accuracy": accuracy, "pixels": [int(v) for v in pixels], "confusion": m.astype(int).tolist(),
            "trusted": bool(trusted), "note": note}


def tiles_with(labels: np.ndarray, size: int, limit: int = 64) -> list[tuple[int, int, int]]:
    """Corners ``(t, y0, x0)`` of the ``size``-pixel tiles of a grid that hold painted pixels (≤ ``limit``)."""
    out = []
    T, Y, X = labels.shape
    for t in range(T):
        if not labels[t].any():
            continue
        for y0 in range(0, Y, size):
            for x0 in range(0, X, size):
                if labels[t, y0:y0 + size, x0:x0 + size].any():
                    out.append((t, y0, x0))
    if len(out) > limit:
        keep = np.linspace(0, len(out) - 1, limit).round().astype(int)
        out = [out[i] for i in keep]
    return out


def report_lines(report: dict, names) -> list[str]:
    """:func:`quality`'s report as text lines: held-out pixels, IoU per class, the confusion matrix, the note."""
    names = list(names)
    width = max(len(name) for name in names)
    lines = ["held out: " + ", ".join(f"{name} {p} px" for name, p in zip(names, report["pixels"])),
             "IoU: " + ", ".join(f"{name} {v:.2f}" if np.isfinite(v) else f"{name} —"
                                 for name, v in zip(names, report["iou"]))
             + (f"; accuracy {report['accuracy']:.2f}" if np.isfinite(report["accuracy"]) else ""),
             "confusion (painted → predicted):",
             " " * (width + 2) + " ".join(f"{name[:7]:>7}" for name in names)]
    for name, row in zip(names, report["confusion"]):
        lines.append(f"{name:>{width}}  " + " ".join(f"{v:>7d}" for v in row))
    if report["note"]:
        lines.append("⚠ " + report["note"])
    return lines
