"""Baselines on raw windows, and scores of how well an embedding separates classes.

Papers 001 and 003 compare the rVAE with what one would do without it: PCA
or NMF of the flattened windows, a Gaussian mixture on the raw pixels (16
components, diagonal covariance in paper 001) and a plain convolutional
autoencoder. None of them is rotation invariant, so rotated copies of one
structure end up in separate classes; the rVAE puts them together. The
scores here quantify that against ground truth.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd


def _flat(windows) -> np.ndarray:
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 3 or windows.shape[1] < 2 or windows.shape[2] < 2:
        raise ValueError(f"windows: expected an (N, w, w) stack, got shape {windows.shape}")
    if not np.isfinite(windows).all():
        raise ValueError("windows: contain NaN or infinite pixels; drop those windows first")
    return windows.reshape(len(windows), -1)


def pca_embedding(windows, n_components: int = 2, *, seed: int = 0) -> np.ndarray:
    """PCA scores of the flattened windows, shape (N, n_components)."""
    from sklearn.decomposition import PCA

    return PCA(n_components, random_state=seed).fit_transform(_flat(windows))


def nmf_embedding(windows, n_components: int = 2, *, seed: int = 0, max_iter: int = 400) -> np.ndarray:
    """NMF loadings of the flattened windows (shifted to be ≥ 0), shape (N, n_components)."""
    from sklearn.decomposition import NMF

    flat = _flat(windows)
    flat = flat - min(0.0, float(flat.min()))
    return NMF(n_components, init="nndsvda", random_state=seed, max_iter=max_iter, tol=1e-3).fit_transform(flat)


def gmm_windows(
    windows, n_components: int = 16, *, covariance: str = "diag", seed: int = 42
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian mixture on the raw pixels (paper 001's baseline).

    Returns
    -------
    labels : (N,) int64
    means : (K, w, w) float64
        Component means as windows (what the paper shows).
    posteriors : (N, K) float64
        Membership probabilities (used as the GMM's "embedding" for scoring).
    """
    from sklearn.mixture import GaussianMixture

    flat = _flat(windows)
    model = GaussianMixture(n_components, covariance_type=covariance, random_state=seed, reg_covar=1e-4)
    model.fit(flat)
    shape = np.asarray(windows).shape[1:]
    return model.predict(flat).astype(np.int64), model.means_.reshape(n_components, *shape), model.predict_proba(flat)


def autoencoder_embedding(
    windows,
    latent_dim: int = 2,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int | None = None,
) -> np.ndarray:
    """Latents of a small convolutional autoencoder trained on the windows.

    Two stride-2 convolutions (8, 16 channels) → linear to ``latent_dim``;
    the decoder mirrors it with transposed convolutions. Windows are min-max
    scaled to [0, 1]; MSE loss, Adam. Deterministic for a given seed on CPU.

    Parameters
    ----------
    windows : (N, w, w)
    latent_dim : int
    epochs, batch_size, lr : training settings
    seed : int
    threads : int, optional
        torch threads; default from :func:`napari_rvae._compute.set_torch_threads`.
        The previous thread count is restored afterwards.

    Returns
    -------
    (N, latent_dim) float64
    """
    import torch
    from torch import nn

    from .._compute import set_torch_threads

    flat = _flat(windows)
    n, w = len(flat), np.asarray(windows).shape[1]
    if n < 2:
        raise ValueError("windows: need at least 2 windows to train an autoencoder")
    lo, span = float(flat.min()), float(np.ptp(flat)) or 1.0
    data = torch.as_tensor(((flat - lo) / span).reshape(n, 1, w, -1), dtype=torch.float32)
    h = np.asarray(windows).shape[2]
    s_y, s_x = -(-w // 4), -(-h // 4)

    previous = torch.get_num_threads()
    if threads is None:
        set_torch_threads()
    else:
        torch.set_num_threads(max(1, int(threads)))
    try:
        gen = torch.Generator().manual_seed(int(seed))
        torch.manual_seed(int(seed))
        encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(16 * s_y * s_x, latent_dim),
        )
        decoder = nn.Sequential(
            nn.Linear(latent_dim, 16 * s_y * s_x), nn.ReLU(), nn.Unflatten(1, (16, s_y, s_x)),
            nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),
        )
        params = list(encoder.parameters()) + list(decoder.parameters())
        optimiser = torch.optim.Adam(params, lr=lr)
        for _ in range(int(epochs)):
            for batch in torch.randperm(n, generator=gen).split(int(batch_size)):
                x = data[batch]
                recon = decoder(encoder(x))[:, :, :w, :h]
                loss = ((recon - x) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        with torch.no_grad():
            latents = torch.cat([encoder(chunk) for chunk in data.split(1024)])
    finally:
        torch.set_num_threads(previous)
    return latents.numpy().astype(np.float64)


def _check_scoring(embedding, truth) -> tuple[np.ndarray, np.ndarray]:
    embedding = np.asarray(embedding, dtype=np.float64)
    embedding = embedding[:, None] if embedding.ndim == 1 else embedding
    truth = np.asarray(truth).ravel()
    if embedding.ndim != 2 or len(embedding) != len(truth):
        raise ValueError(f"embedding and truth: need (N, d) and (N,), got {embedding.shape} and {truth.shape}")
    keep = np.isfinite(embedding).all(axis=1)
    return embedding[keep], truth[keep]


def knn_accuracy(embedding, truth, *, k: int = 15, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated k-nearest-neighbour accuracy of predicting ``truth`` from the embedding.

    Each embedding dimension is standardised first. Chance level is the
    fraction of the most common class.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _check_scoring(embedding, truth)
    smallest = np.unique(y, return_counts=True)[1].min()
    folds = int(min(folds, smallest))
    if folds < 2:
        raise ValueError("truth: every class needs at least 2 members to cross-validate")
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(min(k, len(y) - len(y) // folds - 1)))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, x, y, cv=split).mean())


def silhouette(embedding, truth, *, sample_size: int = 3000, seed: int = 0) -> float:
    """Silhouette of the true classes in the (standardised) embedding, in [-1, 1]."""
    from sklearn.metrics import silhouette_score

    x, y = _check_scoring(embedding, truth)
    if len(np.unique(y)) < 2:
        raise ValueError("truth: need at least two classes for a silhouette")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return float(silhouette_score(x, y, sample_size=min(sample_size, len(y)), random_state=seed))


def compare_baselines(
    windows,
    truth,
    rvae_latents=None,
    *,
    methods: Sequence[str] = ("pca", "nmf", "gmm", "autoencoder"),
    n_gmm: int = 16,
    gmm_covariance: str = "diag",
    autoencoder_epochs: int = 10,
    autoencoder_threads: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Score raw-window baselines (and optionally rVAE latents) against ground truth.

    Parameters
    ----------
    windows : (N, w, w)
    truth : (N,) labels, or a mapping name → (N,) labels
        Known classes; several labellings (e.g. ``"motif"`` and
        ``"rotation"``) give one row each. Entries < 0 are left out of that
        labelling's scores.
    rvae_latents : (N, d) array or mapping name → (N, d), optional
        Embeddings from models (e.g. the rVAE's ``z`` latents) scored alongside.
    methods : subset of ``("pca", "nmf", "gmm", "autoencoder")``
    n_gmm, gmm_covariance : GMM settings (paper 001: 16, ``"diag"``)
    autoencoder_epochs, autoencoder_threads : autoencoder settings
    seed : int

    Returns
    -------
    DataFrame
        Columns ``method, truth, knn_accuracy, silhouette, nmi, chance, spread``.
        ``knn_accuracy`` (cross-validated, k = 15) and ``silhouette`` are
        computed on each method's embedding (2D for PCA / NMF / autoencoder,
        the 16 membership probabilities for the GMM); ``nmi`` is the
        normalised mutual information between the GMM's labels and the truth
        (NaN for the others); ``chance`` is the majority-class accuracy;
        ``spread`` is the median standard deviation of the embedding's
        dimensions before standardising: near 0 for a collapsed latent
        space (e.g. an rVAE whose latents all sit at the prior mean), whose
        scores then only reflect tiny differences and should not be trusted.
        A high ``knn_accuracy`` for a labelling that an invariant method
        should *not* see (e.g. the rotation of one motif) means the method
        splits those variants apart.
    """
    from sklearn.metrics import normalized_mutual_info_score

    known = ("pca", "nmf", "gmm", "autoencoder")
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; choose from {', '.join(known)}")
    n = len(_flat(windows))
    truths = dict(truth) if isinstance(truth, Mapping) else {"truth": truth}
    for name, labels in truths.items():
        if len(np.asarray(labels).ravel()) != n:
            raise ValueError(f"truth {name!r}: {len(np.asarray(labels).ravel())} labels for {n} windows")
    embeddings: dict[str, np.ndarray] = {}
    cluster_labels: dict[str, np.ndarray] = {}
    if "pca" in methods:
        embeddings["pca"] = pca_embedding(windows, seed=seed)
    if "nmf" in methods:
        embeddings["nmf"] = nmf_embedding(windows, seed=seed)
    if "gmm" in methods:
        labels, _, posteriors = gmm_windows(windows, n_gmm, covariance=gmm_covariance, seed=seed)
        embeddings["gmm"], cluster_labels["gmm"] = posteriors, labels
    if "autoencoder" in methods:
        embeddings["autoencoder"] = autoencoder_embedding(
            windows, epochs=autoencoder_epochs, seed=seed, threads=autoencoder_threads
        )
    if rvae_latents is not None:
        extra = dict(rvae_latents) if isinstance(rvae_latents, Mapping) else {"rvae": rvae_latents}
        for name, latents in extra.items():
            latents = np.asarray(latents, dtype=np.float64)
            if len(latents) != n:
                raise ValueError(f"rvae_latents {name!r}: {len(latents)} rows for {n} windows")
            embeddings[name] = latents
    rows = []
    for tname, labels in truths.items():
        labels = np.asarray(labels).ravel()
        keep = labels >= 0
        chance = float(np.unique(labels[keep], return_counts=True)[1].max() / keep.sum())
        for method, emb in embeddings.items():
            e = emb[keep]
            nmi = np.nan
            if method in cluster_labels:
                nmi = float(normalized_mutual_info_score(labels[keep], cluster_labels[method][keep]))
            rows.append({
                "method": method, "truth": tname,
                "knn_accuracy": knn_accuracy(e, labels[keep], seed=seed),
                "silhouette": silhouette(e, labels[keep], seed=seed),
                "nmi": nmi, "chance": chance, "spread": float(np.median(np.std(e, axis=0))),
            })
    return pd.DataFrame(rows, columns=["method", "truth", "knn_accuracy", "silhouette", "nmi", "chance", "spread"])
