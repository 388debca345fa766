"""Clusters in latent space: GMM / k-means on chosen sites-table columns.

The angle latent is a circular variable: ``-π + ε`` and ``π - ε`` are the same
direction. Before clustering it is embedded as ``(cos, sin)`` so that the two
ends of its range fall together; linear columns are standardised to zero
mean and unit variance. The cluster labels go back into the sites table as a
``cluster`` column (``-1`` where a site has no value for a chosen column).

Helpers turn labels into what the papers plot: the mean window of every
cluster minus the global mean window (paper 003), the fraction of every
cluster in each frame, and, for tests and reports against synthetic ground
truth, an optimal (Hungarian) matching of cluster labels to true labels.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits

CIRCULAR_COLUMNS = ("angle",)
METHODS = ("gmm", "kmeans")
COVARIANCES = ("full", "diag", "tied", "spherical")


def _default_columns(sites: pd.DataFrame) -> list[str]:
    from ..io.sites import latent_columns

    cols = [c for c in latent_columns(sites) if c not in ("dx", "dy")]  # positions, not content
    if not cols:
        raise ValueError(
            "sites: no latent columns (angle, z0, z1 …) to cluster on; pass columns=[...] "
            "or encode the sites with a model first"
        )
    return cols


def latent_features(
    sites: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    circular: Iterable[str] = CIRCULAR_COLUMNS,
    angle_weight: float = 1.0,
    standardise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix for clustering, with circular columns embedded as cos/sin.

    Parameters
    ----------
    sites : DataFrame
        A sites table (or any table) holding ``columns``.
    columns : list of str, optional
        Columns to use; default: ``angle`` and every ``z`` latent present
        (``dx``/``dy`` are left out, they only say where the window sat).
    circular : iterable of str
        Columns holding angles in radians (default ``("angle",)``). Each one
        becomes two features ``(cos a, sin a)``, centred and divided by
        ``sqrt(1 - R²)`` (``R`` the mean resultant length) so that, like a
        standardised linear column, the pair carries a total variance of 1.
    angle_weight : float
        Extra factor on the circular features (> 1 makes the angle matter more).
    standardise : bool
        Standardise linear columns to zero mean and unit variance.

    Returns
    -------
    features : (M, F) float64
        One row per site whose chosen columns are all finite.
    valid : (N,) bool
        Which rows of ``sites`` the feature rows belong to.
    """
    if not isinstance(sites, pd.DataFrame):
        raise ValueError(f"sites: expected a pandas DataFrame, got {type(sites).__name__}")
    columns = list(columns) if columns is not None else _default_columns(sites)
    if not columns:
        raise ValueError("columns: choose at least one column to cluster on")
    missing = [c for c in columns if c not in sites.columns]
    if missing:
        raise ValueError(f"columns: {', '.join(missing)} not in the sites table (has {', '.join(map(str, sites.columns))})")
    if not angle_weight > 0:
        raise ValueError(f"angle_weight: must be > 0, got {angle_weight}")
    circular = set(circular)
    values = sites[columns].to_numpy(dtype=np.float64)
    valid = np.isfinite(values).all(axis=1)
    values = values[valid]
    parts = []
    for j, name in enumerate(columns):
        v = values[:, j]
        if name in circular:
            pair = np.stack([np.cos(v), np.sin(v)], axis=1)
            if len(pair):
                pair = pair - pair.mean(axis=0)
                spread = float((pair**2).sum(axis=1).mean())  # = 1 - R²
                if standardise and spread > 1e-12:
                    pair = pair / np.sqrt(spread)
            parts.append(angle_weight * pair)
        else:
            col = v - v.mean() if len(v) else v
            if standardise and len(v) and col.std() > 1e-12:
                col = col / col.std()
            parts.append(col[:, None])
    return np.concatenate(parts, axis=1), valid


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0..K-1 by decreasing cluster size (ties: old label)."""
    labels = np.asarray(labels, dtype=np.int64)
    if not labels.size:
        return labels
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.lexsort((ids, -counts))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank[inverse.ravel()]


def cluster_features(
    features: np.ndarray,
    n_clusters: int = 5,
    *,
    method: str = "gmm",
    covariance: str = "full",
    seed: int = 0,
    n_init: int = 10,
    max_fit: int | None = 50_000,
) -> tuple[np.ndarray, object]:
    """Cluster rows of a feature matrix with a GMM or k-means.

    Parameters
    ----------
    features : (N, F) array
    n_clusters : int
        Number of mixture components / k-means centres.
    method : {"gmm", "kmeans"}
    covariance : {"full", "diag", "tied", "spherical"}
        GMM covariance type (ignored by k-means).
    seed : int
        Random state; same seed and data give the same labels.
    n_init : int
        Restarts (k-means++ initialisations); the best fit is kept. A
        ring-shaped cluster (a non-polar phase with random angle) traps
        single starts in a local optimum, hence the default of 10.
    max_fit : int or None
        Fit on at most this many rows (a seeded random subset), then label
        every row with the fitted model; keeps a GMM on a million sites to
        seconds. ``None`` fits on all rows.

    Returns
    -------
    labels : (N,) int64
        Cluster of every row, numbered by decreasing cluster size.
    model : fitted sklearn estimator
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features: expected an (N, F) array, got shape {features.shape}")
    if method not in METHODS:
        raise ValueError(f"method: {method!r} unknown; use one of {', '.join(METHODS)}")
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance: {covariance!r} unknown; use one of {', '.join(COVARIANCES)}")
    n_clusters = int(n_clusters)
    if n_clusters < 1:
        raise ValueError(f"n_clusters: must be ≥ 1, got {n_clusters}")
    if len(features) < n_clusters:
        raise ValueError(f"features: {len(features)} site(s) with values, fewer than n_clusters={n_clusters}")
    if not np.isfinite(features).all():
        raise ValueError("features: contain NaN or infinite values; drop those sites first")
    if method == "gmm":
        model = GaussianMixture(
            n_clusters, covariance_type=covariance, random_state=seed, n_init=n_init, init_params="k-means++", reg_covar=1e-5
        )
    else:
        model = KMeans(n_clusters, random_state=seed, n_init=n_init)
    # a few latent columns: BLAS threads only fight each other (15x slower on a busy 2-core machine)
    with threadpool_limits(1):
        if max_fit is not None and len(features) > int(max_fit):
            subset = np.random.default_rng(seed).choice(len(features), int(max_fit), replace=False)
            model.fit(features[np.sort(subset)])
            labels = model.predict(features)
        else:
            labels = model.fit_predict(features)
    return _relabel_by_size(np.asarray(labels)), model


def cluster_sites(
    sites: pd.DataFrame,
    columns: Sequence[str] | None = None,
    n_clusters: int = 5,
    *,
    method: str = "gmm",
    covariance: str = "full",
    seed: int = 0,
    circular: Iterable[str] = CIRCULAR_COLUMNS,
    angle_weight: float = 1.0,
    standardise: bool = True,
    column: str = "cluster",
    max_fit: int | None = 50_000,
) -> pd.DataFrame:
    """Cluster the sites on chosen latent columns; return a copy with a ``cluster`` column.

    The angle (radians) is treated as circular (see :func:`latent_features`),
    so sites at ``+π`` and ``-π`` land in the same cluster. Sites with a NaN in
    a chosen column get cluster ``-1``. Clusters are numbered by decreasing
    size, so label 0 is always the largest. Tables larger than ``max_fit``
    rows are fitted on a random subset and then labelled in full.

    Examples
    --------
    >>> table = cluster_sites(sites, ["angle", "z0", "z1"], n_clusters=5)  # doctest: +SKIP
    >>> table["cluster"].value_counts()  # doctest: +SKIP
    """
    features, valid = latent_features(
        sites, columns, circular=circular, angle_weight=angle_weight, standardise=standardise
    )
    labels, _ = cluster_features(features, n_clusters, method=method, covariance=covariance, seed=seed,
                                 max_fit=max_fit)
    out = sites.copy()
    full = np.full(len(sites), -1, dtype=np.int64)
    full[valid] = labels
    out[column] = full
    return out


def cluster_mean_windows(
    windows: np.ndarray,
    clusters: np.ndarray,
    index: np.ndarray | None = None,
    *,
    subtract_global: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean window of every cluster, minus the global mean window (paper 003).

    Parameters
    ----------
    windows : (N, w, w) array
        Windows, one per site that was windowed.
    clusters : (M,) int array
        Cluster label per row of the sites table (e.g. ``sites["cluster"]``).
        Label ``-1`` (unclustered) is skipped.
    index : (N,) int array, optional
        Row of the sites table each window belongs to (positional). Default:
        window ``i`` belongs to row ``i`` (requires ``M == N``).
    subtract_global : bool
        Subtract the mean over all clustered windows, which shows what makes
        each cluster different.

    Returns
    -------
    ids : (K,) int64
        Cluster labels, sorted.
    means : (K, w, w) float64
    """
    windows = np.asarray(windows)
    if windows.ndim != 3:
        raise ValueError(f"windows: expected an (N, w, w) array, got shape {windows.shape}")
    clusters = np.asarray(clusters).ravel().astype(np.int64)
    if index is None:
        if len(clusters) != len(windows):
            raise ValueError(
                f"clusters: {len(clusters)} labels for {len(windows)} windows; pass index= (the sites row of each window)"
            )
        labels = clusters
    else:
        index = np.asarray(index).ravel().astype(np.int64)
        if len(index) != len(windows):
            raise ValueError(f"index: {len(index)} entries for {len(windows)} windows; need one row index per window")
        if len(index) and (index.min() < 0 or index.max() >= len(clusters)):
            raise ValueError(f"index: values must lie in [0, {len(clusters)}) (rows of the sites table)")
        labels = clusters[index]
    keep = labels >= 0
    if not keep.any():
        raise ValueError("clusters: no window has a cluster label ≥ 0; cluster the sites first")
    ids = np.unique(labels[keep])
    w = windows[keep].astype(np.float64)
    means = np.stack([w[labels[keep] == k].mean(axis=0) for k in ids])
    if subtract_global:
        means = means - w.mean(axis=0)
    return ids, means


def cluster_fractions(
    sites: pd.DataFrame, column: str = "cluster", *, frames: Sequence[int] | None = None
) -> pd.DataFrame:
    """Fraction of each cluster in every frame.

    Returns
    -------
    DataFrame
        Index: frame (all frames in ``frames``, or those present); columns:
        cluster labels (``-1`` excluded). Each row sums to 1 (0 for a frame
        without clustered sites).
    """
    for name in ("frame", column):
        if name not in sites.columns:
            raise ValueError(f"sites: missing column {name!r}; cluster the sites first")
    table = sites.loc[sites[column] >= 0, ["frame", column]]
    counts = pd.crosstab(table["frame"], table[column])
    if frames is not None:
        counts = counts.reindex(list(frames), fill_value=0)
    totals = counts.sum(axis=1).replace(0, 1)
    out = counts.div(totals, axis=0)
    out.index.name, out.columns.name = "frame", column
    return out


def match_clusters(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """Optimal one-to-one matching of cluster labels to true labels (Hungarian).

    Maximises the number of sites whose matched cluster equals their true
    label. With more clusters than true classes, the extra clusters stay
    unmatched (absent from the result); entries ``< 0`` are ignored.

    Returns
    -------
    dict
        cluster label → true label.
    """
    labels, truth = np.asarray(labels).ravel(), np.asarray(truth).ravel()
    if labels.shape != truth.shape:
        raise ValueError(f"labels and truth: need the same length, got {labels.size} and {truth.size}")
    keep = (labels >= 0) & (truth >= 0)
    la, tr = labels[keep], truth[keep]
    ids_l, ids_t = np.unique(la), np.unique(tr)
    if not len(ids_l) or not len(ids_t):
        return {}
    table = np.zeros((len(ids_l), len(ids_t)), dtype=np.int64)
    np.add.at(table, (np.searchsorted(ids_l, la), np.searchsorted(ids_t, tr)), 1)
    rows, cols = linear_sum_assignment(-table)
    return {int(ids_l[r]): int(ids_t[c]) for r, c in zip(rows, cols)}


def agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of sites whose cluster, after :func:`match_clusters`, equals the truth.

    Sites with a negative true label are ignored; unmatched clusters and
    unclustered sites (``-1``) count as wrong.
    """
    labels, truth = np.asarray(labels).ravel(), np.asarray(truth).ravel()
    mapping = match_clusters(labels, truth)
    scored = truth >= 0
    if not scored.any():
        raise ValueError("truth: no non-negative true labels to compare with")
    mapped = np.full(labels[scored].shape, -2, dtype=np.int64)
    for cluster, true in mapping.items():
        mapped[labels[scored] == cluster] = true
    return float((mapped == truth[scored]).mean())
