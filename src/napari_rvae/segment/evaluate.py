"""Scoring helpers for segmenters against synthetic ground truth.

``atom_centroids`` is a deliberately simple locator (threshold, connected
components, probability-weighted centroids) used to score the shipped model;
the full atom finder with refinement lives in ``napari_rvae.detect``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


def atom_centroids(prob: np.ndarray, threshold: float = 0.5, min_area: int = 2) -> np.ndarray:
    """Centres ``(N, 2)`` (y, x pixels) of connected regions where ``prob >= threshold``."""
    from ..detect.atoms import component_centroids

    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"prob must be a (Y, X) map, got shape {prob.shape}")
    return component_centroids(prob, np.nextafter(threshold, -np.inf), min_area)


def _assign(found: np.ndarray, truth: np.ndarray, tol: float):
    """One-to-one assignment within ``tol`` px minimising total distance: (found idx, truth idx, distances)."""
    if len(found) and len(truth):
        sparse = cKDTree(found).sparse_distance_matrix(cKDTree(truth), tol, output_type="coo_matrix")
        if sparse.nnz:
            cost = np.full((len(found), len(truth)), 1e6)
            cost[sparse.row, sparse.col] = sparse.data
            r, c = linear_sum_assignment(cost)
            ok = cost[r, c] <= tol
            return r[ok], c[ok], cost[r[ok], c[ok]]
    return np.zeros(0, int), np.zeros(0, int), np.zeros(0)


def _counts(tp: int, fp: int, fn: int, err: np.ndarray) -> dict:
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    f1 = 2 * precision * recall / max(1e-12, precision + recall)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
            "rmse": float(np.sqrt(np.mean(err**2))) if len(err) else float("nan")}


def match_points(found: np.ndarray, truth: np.ndarray, tol: float = 2.0) -> dict:
    """One-to-one matching within ``tol`` pixels; returns counts, precision, recall, F1 and RMSE (pixels)."""
    found = np.asarray(found, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    r, _, err = _assign(found, truth, tol)
    return _counts(len(r), len(found) - len(r), len(truth) - len(r), err)


def inside(points: np.ndarray, shape: tuple, margin: float) -> np.ndarray:
    """Boolean mask of points at least ``margin`` pixels from the frame border."""
    points = np.asarray(points).reshape(-1, 2)
    return (points[:, 0] >= margin) & (points[:, 0] <= shape[0] - 1 - margin) & \
        (points[:, 1] >= margin) & (points[:, 1] <= shape[1] - 1 - margin)


def score_atoms(prob: np.ndarray, truth: np.ndarray, tol: float = 2.0, margin: float = 4.0,
                threshold: float = 0.5) -> dict:
    """Score :func:`atom_centroids` against true positions ``(N, 2)``.

    All found and true atoms are matched one-to-one within ``tol`` pixels; then
    only true atoms at least ``margin`` from the border count (missed → FN), and
    only unmatched found atoms that far inside count as false positives, so
    atoms cut by the border are neither rewarded nor punished.
    """
    found = atom_centroids(prob, threshold)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    keep_t = inside(truth, prob.shape, margin)
    keep_f = inside(found, prob.shape, margin)
    r, c, err = _assign(found, truth, tol)
    matched_f = np.zeros(len(found), bool)
    matched_t = np.zeros(len(truth), bool)
    matched_f[r] = True
    matched_t[c] = True
    tp = int(np.sum(matched_t & keep_t))
    fn = int(np.sum(~matched_t & keep_t))
    fp = int(np.sum(~matched_f & keep_f))
    return _counts(tp, fp, fn, err[keep_t[c]])
