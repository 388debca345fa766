"""Baselines on raw windows: they split rotated copies of one motif (paper 003's point)."""

import numpy as np
import pytest

from napari_rvae.analysis import (
    autoencoder_embedding,
    compare_baselines,
    gmm_windows,
    knn_accuracy,
    pca_embedding,
    silhouette,
)
from napari_rvae.synth.render import render_spots


def motif_windows(n_per=150, w=24, seed=0, noise=0.08):
    """Motif A in four 90° rotations, plus motif B.

    Motif A: square lattice (6 px) whose brighter central atom is displaced by
    0.3 a along one lattice axis (an off-centred B site); the window is
    rotated by k·90°, k = 0..3. Motif B: the same lattice with a central
    vacancy. Each window has a random sub-pixel centre offset, 5 % intensity
    jitter and Gaussian noise (recipe as in shared/bench/synth.py make_patches).
    """
    rng = np.random.default_rng(seed)
    a, c = 6.0, (w - 1) / 2
    ij = np.arange(-3, 4)
    lattice = np.stack(np.meshgrid(ij, ij, indexing="ij"), -1).reshape(-1, 2) * a
    centre = np.flatnonzero((lattice == 0).all(1))[0]
    windows, motif, rotation = [], [], []
    for kind in range(5):  # 0..3 motif A rotated kind·90°, 4 motif B
        for _ in range(n_per):
            pos = lattice + c + rng.uniform(-0.5, 0.5, 2)
            amp = 1 + 0.05 * rng.standard_normal(len(lattice))
            if kind < 4:
                pos[centre] += (0.0, 0.3 * a)
                amp[centre] *= 1.5
            else:
                amp[centre] = 0.0
            image = render_spots((w, w), pos, amp, 1.2)
            windows.append(np.rot90(image, kind % 4) + noise * rng.standard_normal((w, w)))
            motif.append(int(kind == 4))
            rotation.append(kind if kind < 4 else -1)
    return np.asarray(windows, np.float32), np.asarray(motif), np.asarray(rotation)


def radial_profiles(windows):
    """A rotation-invariant embedding (azimuthal averages), standing in for rVAE latents."""
    w = windows.shape[1]
    c = (w - 1) / 2
    yy, xx = np.mgrid[:w, :w]
    ring = np.hypot(yy - c, xx - c).astype(int).ravel()
    counts = np.bincount(ring)
    profiles = np.stack([np.bincount(ring, win.ravel()) / counts for win in windows])[:, : w // 2]
    centred = profiles - profiles.mean(0)
    return centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T


@pytest.fixture(scope="module")
def motifs():
    return motif_windows()


def test_raw_window_methods_split_rotations_an_invariant_embedding_does_not(motifs):
    windows, motif, rotation = motifs
    table = compare_baselines(
        windows, {"motif": motif, "rotation": rotation}, {"invariant": radial_profiles(windows)},
        methods=("pca", "gmm"), seed=0,
    )
    score = table.set_index(["method", "truth"])
    chance_rotation = score.loc[("pca", "rotation"), "chance"]
    assert chance_rotation == pytest.approx(0.25)
    # PCA and a GMM on raw pixels tell the four rotations of ONE motif apart ...
    assert score.loc[("pca", "rotation"), "knn_accuracy"] >= 0.7
    assert score.loc[("gmm", "rotation"), "knn_accuracy"] >= 0.9
    assert score.loc[("gmm", "rotation"), "nmi"] >= 0.5
    # ... while the rotation-invariant embedding cannot (chance) but separates the motifs
    assert score.loc[("invariant", "rotation"), "knn_accuracy"] <= chance_rotation + 0.15
    assert score.loc[("invariant", "motif"), "knn_accuracy"] >= 0.95
    assert list(table.columns) == ["method", "truth", "knn_accuracy", "silhouette", "nmi", "chance", "spread"]


def test_gmm_components_are_rotation_specific(motifs):
    windows, motif, rotation = motifs
    labels, means, posteriors = gmm_windows(windows, 16, covariance="diag", seed=42)
    assert means.shape == (16, 24, 24) and posteriors.shape == (len(windows), 16)
    a = rotation >= 0
    # every GMM cluster holding motif-A windows is (almost) purely one rotation
    pure = 0
    for k in np.unique(labels[a]):
        pure += np.bincount(rotation[a][labels[a] == k]).max()
    assert pure / a.sum() >= 0.9
    # and the four rotations never share their dominant cluster
    dominant = {int(np.bincount(labels[rotation == r]).argmax()) for r in range(4)}
    assert len(dominant) == 4


def test_autoencoder_is_seeded_and_restores_threads(motifs):
    import torch

    windows = motifs[0][::10]
    before = torch.get_num_threads()
    a = autoencoder_embedding(windows, epochs=2, seed=3, threads=1)
    b = autoencoder_embedding(windows, epochs=2, seed=3, threads=1)
    assert a.shape == (len(windows), 2) and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert torch.get_num_threads() == before


def test_scores_on_known_embeddings():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 200)
    separated = rng.normal(0, 0.3, (600, 2)) + np.array([[0, 0], [5, 0], [0, 5]])[truth]
    assert knn_accuracy(separated, truth) == pytest.approx(1.0)
    assert silhouette(separated, truth) > 0.7
    noise = rng.normal(size=(600, 2))
    assert abs(knn_accuracy(noise, truth) - 1 / 3) < 0.1
    assert abs(silhouette(noise, truth)) < 0.1
    with pytest.raises(ValueError, match="embedding and truth"):
        knn_accuracy(noise, truth[:10])


def test_inputs_are_checked(motifs):
    windows = motifs[0]
    with pytest.raises(ValueError, match="windows"):
        pca_embedding(windows[0])
    with pytest.raises(ValueError, match="methods"):
        compare_baselines(windows, motifs[1], methods=("tsne",))
    with pytest.raises(ValueError, match="truth"):
        compare_baselines(windows, motifs[1][:5], methods=("pca",))
