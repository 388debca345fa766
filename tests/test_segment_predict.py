"""Tiled prediction, uncertainty, input validation and self-training labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_rvae.segment import (
    Predictor,
    UNet,
    UNetConfig,
    labels_from_predictions,
    predict,
    predict_with_uncertainty,
    predictive_entropy,
)
from napari_rvae.segment.predict import fold_batchnorm
from napari_rvae.synth.render import render_spots


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_model(seed=0, dropout=0.0, n_classes=3):
    torch.manual_seed(seed)
    model = UNet(UNetConfig(n_classes=n_classes, filters=4, depth=2, convs_per_level=[1, 1], dropout=dropout))
    with torch.no_grad():
        model.train()(torch.randn(4, 1, 32, 32))  # non-trivial BatchNorm statistics
    return model.eval()


def spots_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, shape, (shape[0] * shape[1] // 150, 2))
    return (render_spots(shape, pos, 1.0, 2.0) + rng.normal(0, 0.05, shape)).astype(np.float32)


def test_batchnorm_folding_is_exact():
    model = small_model()
    x = torch.randn(2, 1, 48, 40)
    with torch.no_grad():
        assert torch.allclose(model(x), fold_batchnorm(model)(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(model).modules())


@pytest.mark.parametrize("shape", [(37, 53), (64, 65), (9, 200)])
def test_any_frame_size_gives_normalised_probabilities(shape):
    probs = predict(small_model(), spots_image(shape))
    assert probs.shape == (1, 3) + shape and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_tiled_equals_whole_image_away_from_seams():
    """Tiles of 64 px with 32 px overlap vs one pass over the 150×171 frame.

    The cosine blending gives each tile weight ~1 in its centre and ~0 at its
    border, so everywhere (not only between seams) the blend is dominated by
    tile centres. Zero padding at tile borders only changes the outputs within
    a receptive field of that border, so the blended map must agree closely.
    """
    model = small_model(1)
    frames = np.stack([spots_image((150, 171), s) for s in (0, 1, 2)])
    whole = predict(model, frames, tile=512)
    tiled = predict(model, frames, tile=64, overlap=32, batch=5)
    assert tiled.shape == whole.shape
    diff = np.abs(tiled - whole)
    assert np.median(diff) < 1e-3 and np.percentile(diff, 99) < 0.01, (np.median(diff), diff.max())
    assert diff.max() < 0.02


def test_movie_batched_equals_frame_by_frame():
    model = small_model(2)
    frames = np.stack([spots_image((64, 64), s) for s in range(5)])
    together = predict(model, frames, batch=3)
    one_by_one = np.concatenate([predict(model, f) for f in frames])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_per_frame_normalisation_makes_prediction_invariant_to_gain_and_offset():
    model = small_model(3)
    image = spots_image((64, 64), 3)
    np.testing.assert_allclose(predict(model, image), predict(model, 250.0 * image + 1000.0), atol=1e-4)


def test_rescale_maps_back_to_the_original_grid():
    model = small_model(4)
    probs = predict(model, spots_image((90, 70)), rescale=0.5)
    assert probs.shape == (1, 3, 90, 70)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="rescale"):
        predict(model, spots_image((32, 32)), rescale=0.0)


def test_bad_inputs_raise_clear_errors():
    model = small_model()
    good = spots_image((32, 32))
    nan_movie = np.stack([good, np.full_like(good, np.nan)])
    with pytest.raises(ValueError, match="frame 1 has no finite pixels"):
        predict(model, nan_movie)
    with pytest.raises(ValueError, match="frame 0 is constant"):
        predict(model, np.full((32, 32), 7.0))
    with pytest.raises(ValueError, match=r"\(T, Y, X\)"):
        predict(model, np.zeros((2, 2, 32, 32)))
    with pytest.raises(ValueError, match="RGB"):
        predict(model, np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="too small"):
        predict(model, np.zeros((4, 32)))
    with pytest.raises(ValueError, match="UNet"):
        predict(torch.nn.Identity(), good)
    # a few NaN pixels are filled with the frame median, not propagated
    holey = good.copy()
    holey[3:6, 3:6] = np.nan
    assert np.all(np.isfinite(predict(model, holey)))


def test_entropy_bounds_and_ambiguity():
    certain = np.zeros((1, 3, 4, 4), np.float32)
    certain[:, 0] = 1
    uniform = np.full((1, 3, 4, 4), 1 / 3, np.float32)
    np.testing.assert_allclose(predictive_entropy(certain), 0, atol=1e-6)
    np.testing.assert_allclose(predictive_entropy(uniform), 1, atol=1e-6)
    np.testing.assert_allclose(predictive_entropy(uniform, normalised=False), np.log(3), atol=1e-6)


def test_entropy_is_high_where_an_ensemble_disagrees_and_mc_dropout_varies():
    frames = spots_image((64, 64), 5)
    ensemble = [small_model(s) for s in range(3)]
    out = predict_with_uncertainty(ensemble, frames)
    assert out["probs"].shape == (1, 3, 64, 64) and out["variance"].shape == (1, 64, 64)
    # where members disagree most, the mean is less certain than where they agree
    v, h = out["variance"].ravel(), out["entropy"].ravel()
    hi, lo = v > np.percentile(v, 90), v < np.percentile(v, 10)
    assert h[hi].mean() > h[lo].mean()
    mc = predict_with_uncertainty(small_model(0, dropout=0.3), frames, mc_samples=4)
    assert mc["variance"].max() > 0
    with pytest.raises(ValueError, match="dropout"):
        predict_with_uncertainty(small_model(0), frames, mc_samples=2)


def test_labels_from_confident_predictions():
    probs = np.zeros((3, 2, 4, 4), np.float32)
    probs[:, 0] = 0.95
    probs[:, 1] = 0.05
    probs[:, :, 0, 0] = [0.6, 0.4]  # unconfident pixel
    probs[:, :, 1, 1] = [0.02, 0.98]
    labels = labels_from_predictions(probs, frames=[1], confidence=0.9)
    assert labels.shape == (3, 4, 4)
    assert np.all(labels[[0, 2]] == 0)  # frames not chosen stay unlabelled
    assert labels[1, 0, 0] == 0 and labels[1, 1, 1] == 2 and labels[1, 3, 3] == 1
    with pytest.raises(ValueError, match="frames"):
        labels_from_predictions(probs, frames=[5])


def test_predictor_rejects_bad_settings():
    with pytest.raises(ValueError, match="tile"):
        Predictor(small_model(), tile=2)


@pytest.mark.slow
def test_bench_vs_atomai_runs_both_sides():
    """The AtomAI comparison runner (needs an AtomAI environment; skipped without one)."""
    import os

    from benchmarks.segment import bench_vs_atomai

    python = os.environ.get("ATOMAI_PYTHON", str(Path(__file__).resolve().parents[1] / ".venv-atomai" / "bin" / "python"))
    if not os.path.isfile(python):
        pytest.skip("no AtomAI environment (set ATOMAI_PYTHON)")
    result = bench_vs_atomai(python, n_frames=1, repeats=1, threads=1)
    assert result["atomai"]["n_parameters"] > 500_000  # AtomAI's default U-Net was really built
    assert set(result["frames_per_s"]) == {"atomai", "ours_atomai_size", "ours_atomai_size_int8", "ours_default_atom_model",
                                          "ours_default_atom_model_int8"}
    assert all(result["int8_active"].values())
    assert all(v > 0 for v in result["frames_per_s"].values())
    with pytest.raises(ValueError, match="atomai_python"):
        bench_vs_atomai("/nonexistent/python")
