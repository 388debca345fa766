"""The shipped default atom finder: offline, small, and accurate on frames from generators it never saw.

Training used scripts/atom_finder/training_data.py only; the frames here come from
``synth.instrument.low_dose_graphene`` (a different generator: graphene sheet with grain boundaries,
probe tails, amorphous cover, scan distortion, 3–40 counts per atom), the ferroic and graphene-movie
samples. Frames are rescaled to the model's training spacing from their true spacing, as the
detector does from the estimated one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_rvae.segment import ATOM_CHANNEL, DEFAULT_ATOM_MODEL_DIR, load_default_atom_model, predict
from napari_rvae.segment.evaluate import atom_centroids, inside, match_points
from napari_rvae.synth import make_sample
from napari_rvae.synth.instrument import low_dose_graphene


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return load_default_atom_model(with_config=True)


def f1(prob, truth, spacing, shape, border=10.0):
    found = atom_centroids(prob)
    found, truth = found[inside(found, shape, border)], truth[inside(truth, shape, border)]
    return match_points(found, truth, 0.2 * spacing)


def test_default_weights_ship_inside_the_package_and_are_small(shipped):
    weights = DEFAULT_ATOM_MODEL_DIR / "model.safetensors"
    assert weights.exists() and (DEFAULT_ATOM_MODEL_DIR / "model.json").exists()
    assert weights.stat().st_size <= 5 * 1024 * 1024
    model, config = shipped
    assert config["kind"] == "segmenter" and model.config.n_classes == 2
    assert config["training"]["history"], "the training record must ship with the weights"
    assert config["canonical_spacing_px"] == 10.0


@pytest.mark.parametrize("seed", [2001, 2002, 2003])
def test_low_dose_graphene_from_an_independent_generator(shipped, seed):
    model, config = shipped
    scene = low_dose_graphene(seed, size=384)
    prob = predict(model, scene["image"], rescale=config["canonical_spacing_px"] / scene["spacing"])[0, ATOM_CHANNEL]
    score = f1(prob, scene["positions"], scene["spacing"], scene["image"].shape)
    assert score["f1"] >= 0.9, (score, scene["params"])


def test_perovskite_a_and_b_columns(shipped):
    model, config = shipped
    sample = make_sample("ferroic", seed=31, a=20.0)
    truth = np.vstack([np.column_stack([sample[k]["y"], sample[k]["x"]]) for k in ("asites", "bsites")])
    spacing = 20.0 / np.sqrt(2)
    prob = predict(model, sample["data"][0], rescale=config["canonical_spacing_px"] / spacing)[0, ATOM_CHANNEL]
    assert f1(prob, truth, spacing, sample["data"].shape[1:])["f1"] >= 0.98


def test_graphene_movie_every_atom_and_nothing_in_holes(shipped):
    model, config = shipped
    movie = make_sample("graphene-movie", seed=11, frames=2, size=384)
    probs = predict(model, movie["data"], rescale=config["canonical_spacing_px"] / 12.0)
    atoms = movie["atoms"]
    for t in range(2):
        a = atoms[atoms["frame"] == t]
        score = f1(probs[t, ATOM_CHANNEL], np.column_stack([a["y"], a["x"]]), 12.0, movie["data"].shape[1:])
        assert score["f1"] >= 0.98, (t, score)
        deep = ndimage.binary_erosion(movie["hole_masks"][t], iterations=3)
        found = np.rint(atom_centroids(probs[t, ATOM_CHANNEL])).astype(int)
        assert not deep[found[:, 0], found[:, 1]].any()


def test_tiles_and_whole_frames_agree(shipped):
    """The network is run on tiles of its recorded size; whole frames must give the same atoms
    (a U-Net trained on small crops can fail far from any border)."""
    model, config = shipped
    scene = low_dose_graphene(2004, size=384)
    rescale = config["canonical_spacing_px"] / scene["spacing"]
    tiled = predict(model, scene["image"], rescale=rescale)[0, ATOM_CHANNEL]
    whole = predict(model, scene["image"], rescale=rescale, tile=512)[0, ATOM_CHANNEL]
    a, b = atom_centroids(tiled), atom_centroids(whole)
    assert match_points(a, b, 1.0)["f1"] >= 0.98


def test_entropy_is_high_on_ambiguous_atom_edges(shipped):
    """Atom centres and empty vacuum are unambiguous; the rim of each atom's label disk is not."""
    from napari_rvae.segment import predictive_entropy

    model, config = shipped
    movie = make_sample("graphene-movie", seed=12, frames=12, size=256, n_holes=3, dose=200.0)
    last = movie["data"].shape[0] - 1  # the holes have grown by the last frame
    h = predictive_entropy(predict(model, movie["data"][last:], rescale=config["canonical_spacing_px"] / 12.0))[0]
    atoms = movie["atoms"][movie["atoms"]["frame"] == last]
    pos = np.column_stack([atoms["y"], atoms["x"]])
    yy, xx = np.mgrid[0:256, 0:256]
    d = np.min(np.hypot(yy[..., None] - pos[:, 0], xx[..., None] - pos[:, 1]), axis=-1)
    r = 0.25 * 12.0  # the label disk radius at the training scale, in original pixels
    centre, rim = d < 1.0, np.abs(d - r) < 1.0
    vacuum = ndimage.binary_erosion(movie["hole_masks"][last], iterations=8)
    assert vacuum.any()
    assert h[rim].mean() > 3 * max(h[centre].mean(), h[vacuum].mean())
