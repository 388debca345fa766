"""The shipped default atom finder: offline, small, and accurate on held-out synthetic frames.

Held-out frames come from random streams never used in training
(training used ``make_training_set(..., seed=0)``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_rvae.segment import ATOM_CHANNEL, DEFAULT_ATOM_MODEL_DIR, load_default_atom_model, predict
from napari_rvae.segment.atom_lattices import make_atom_image
from napari_rvae.segment.evaluate import atom_centroids, score_atoms


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_default_atom_model()


def test_default_weights_ship_inside_the_package_and_are_small():
    weights = DEFAULT_ATOM_MODEL_DIR / "model.safetensors"
    assert weights.exists() and (DEFAULT_ATOM_MODEL_DIR / "model.json").exists()
    assert weights.stat().st_size <= 5 * 1024 * 1024
    model, config = load_default_atom_model(with_config=True)
    assert config["kind"] == "segmenter" and model.config.n_classes == 2
    assert config["training"]["history"], "the training record must ship with the weights"


@pytest.mark.parametrize("spacing, seed", [(12.0, 2024), (12.0, 77), (7.0, 5)])
def test_finds_graphene_atoms_and_nothing_in_holes(model, spacing, seed):
    rng = np.random.default_rng(seed)
    frame = make_atom_image(rng, (256, 256), kind="graphene", spacing=spacing, holes=True, contamination=False)
    assert frame["hole_mask"].sum() > 2000  # the frame really has a hole
    prob = predict(model, frame["image"])[0, ATOM_CHANNEL]
    score = score_atoms(prob, frame["positions"], tol=2.0)
    assert score["f1"] >= 0.99, score
    # no atoms inside holes: nothing found deeper than 3 px inside the vacuum
    deep = ndimage.binary_erosion(frame["hole_mask"], iterations=3)
    found = np.rint(atom_centroids(prob)).astype(int)
    assert not deep[found[:, 0], found[:, 1]].any()


@pytest.mark.parametrize("kind, spacing", [("perovskite", 9.0), ("square", 20.0)])
def test_other_lattices_in_the_trained_range(model, kind, spacing):
    frame = make_atom_image(np.random.default_rng(31), (256, 256), kind=kind, spacing=spacing, holes=False,
                            contamination=False)
    score = score_atoms(predict(model, frame["image"])[0, ATOM_CHANNEL], frame["positions"], tol=2.0)
    assert score["f1"] >= 0.98, score


def test_rescale_handles_spacings_outside_the_trained_range(model):
    """Atoms 45 px apart (beyond the 6–25 px range) are found when predicting at rescale 12/45."""
    frame = make_atom_image(np.random.default_rng(8), (384, 384), kind="square", spacing=45.0, holes=False,
                            contamination=False, label_radius=3.0)
    prob = predict(model, frame["image"], rescale=12.0 / 45.0)[0, ATOM_CHANNEL]
    assert prob.shape == frame["image"].shape
    score = score_atoms(prob, frame["positions"], tol=2.0, margin=10.0)
    assert score["f1"] >= 0.98, score


def test_entropy_is_high_on_ambiguous_atom_edges(model):
    """Atom centres and empty vacuum are unambiguous; the rim of each atom (where the label disk ends) is not."""
    from napari_rvae.segment import predictive_entropy

    frame = make_atom_image(np.random.default_rng(11), (192, 192), kind="square", spacing=16.0, holes=True,
                            contamination=False)
    h = predictive_entropy(predict(model, frame["image"]))[0]
    yy, xx = np.mgrid[0:192, 0:192]
    pos = frame["positions"]
    d = np.min(np.hypot(yy[..., None] - pos[:, 0], xx[..., None] - pos[:, 1]), axis=-1)
    r = float(np.clip(0.22 * 16.0, 1.5, 3.0))
    centre, rim = d < 1.0, np.abs(d - r) < 0.7
    vacuum = ndimage.binary_erosion(frame["hole_mask"], iterations=8)
    assert vacuum.any()
    assert h[rim].mean() > 3 * max(h[centre].mean(), h[vacuum].mean())


def test_graphene_movie_sample_when_available(model):
    """The project's graphene movie (synth branch): every atom found, none in holes, on whole frames."""
    synth = pytest.importorskip("napari_rvae.synth.graphene")
    movie = synth.graphene_movie(seed=11, frames=2, size=384)
    probs = predict(model, movie["data"])
    atoms = movie["atoms"]
    for t in range(2):
        a = atoms[atoms["frame"] == t]
        score = score_atoms(probs[t, ATOM_CHANNEL], np.column_stack([a["y"], a["x"]]), tol=2.0)
        assert score["f1"] >= 0.99, (t, score)
        deep = ndimage.binary_erosion(movie["hole_masks"][t], iterations=3)
        found = np.rint(atom_centroids(probs[t, ATOM_CHANNEL])).astype(int)
        assert not deep[found[:, 0], found[:, 1]].any()
