"""Round columns (``napari_rvae.columns``): astigmatism measured and compensated against rendered truth.

Spots are rendered with ``synth.render.render_spots``: ellipticity ``e`` makes
σ_major = σ(1 + e), σ_minor = σ/(1 + e) along ``orientation`` (radians from +x,
y up), so the extra variance the short axis lacks is ``d = σ²((1+e)² − (1+e)⁻²)``.
"""

import json
import warnings

import numpy as np
import pytest

from napari_rvae.columns import estimate_astigmatism, extra_variance, round_columns, round_frame
from napari_rvae.io.sites import make_sites
from napari_rvae.patches import cut_windows, cut_windows_1d, recipe_options
from napari_rvae.synth import make_sample
from napari_rvae.synth.render import add_noise, render_spots


def _extra(sigma, e):
    return sigma**2 * ((1 + e) ** 2 - (1 + e) ** -2)


def _lattice(size=256, spacing=16.0, seed=0):
    rng = np.random.default_rng(seed)
    g = np.arange(spacing, size - spacing / 2, spacing)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    return np.c_[yy.ravel(), xx.ravel()] + rng.uniform(-0.5, 0.5, (yy.size, 2))


def _moments(image):
    """Centroid (row, col) and covariance (pixels²) of a background-free image."""
    yy, xx = np.indices(image.shape, dtype=np.float64)
    w = image / image.sum()
    cy, cx = (w * yy).sum(), (w * xx).sum()
    cov = np.array([[(w * (yy - cy) ** 2).sum(), (w * (yy - cy) * (xx - cx)).sum()],
                    [(w * (yy - cy) * (xx - cx)).sum(), (w * (xx - cx) ** 2).sum()]])
    return np.array([cy, cx]), cov


def _angle_diff(a, b):
    """Difference of two axis orientations (radians, modulo π)."""
    return abs((a - b + np.pi / 2) % np.pi - np.pi / 2)


@pytest.mark.parametrize("e, orientation", [(0.15, 0.6), (0.25, 2.2), (0.08, 0.0)])
def test_estimator_recovers_ellipticity_and_orientation(e, orientation):
    """Noisy lattice (196 spots) of identical elliptical spots: e within 0.01, orientation within
    0.03 rad; the extra variance field (1.9–5.8 px² here) within 0.15 px² at its median and
    0.3 px² everywhere (the quadratic surface fitted to noisy columns wanders most near the corners)."""
    rng = np.random.default_rng(1)
    sigma = 2.5
    image = render_spots((256, 256), _lattice(), 1.0, sigma, ellipticity=e, orientation=orientation) + 0.05
    image = add_noise(image, rng, dose=100.0, read_noise=0.02)
    est = estimate_astigmatism(image)
    assert est["applied"] and est["columns"] >= 150
    assert abs(est["ellipticity"] - e) < 0.01
    assert _angle_diff(est["orientation"], orientation) < 0.03
    assert est["sigma_major"] == pytest.approx(sigma * (1 + e), rel=0.03)
    d = extra_variance(est, image.shape)[32:-32, 32:-32]
    assert abs(np.median(d) - _extra(sigma, e)) < 0.15
    np.testing.assert_allclose(d, _extra(sigma, e), atol=0.3)


def test_estimator_follows_a_varying_ellipticity_and_ignores_bright_neighbours():
    """The ferroic sample without scan jitter: dim polar columns 14 px from columns 2.2× brighter,
    ellipticity 0.15–0.225 varying across x (extra variance 3.8–5.6 px²). The fitted extra
    variance follows the true one within 0.25 px² on average and 0.5 px² everywhere, the
    orientation within 0.02 rad."""
    sample = make_sample("ferroic", seed=0, frames=1, jitter=0.0)
    p = json.loads(str(sample["params"]))
    est = estimate_astigmatism(sample["data"])
    assert _angle_diff(est["orientation"], 0.6) < 0.02
    x = np.arange(p["size"])
    e = p["ellipticity"] * (1 + 0.5 * np.sin(np.pi * x / p["size"]))
    d = extra_variance(est, (p["size"], p["size"]))
    inner = slice(32, -32)
    error = (d - _extra(p["column_sigma"], e)[None, :])[inner, inner]
    assert abs(error.mean()) < 0.25
    assert np.abs(error).max() < 0.5


def test_rounded_spots_are_round_and_stay_in_place():
    """After the correction the spot's covariance is isotropic (σ_major²) within 1 % and its centroid
    moves by < 0.01 px."""
    sigma, e, orientation = 2.6, 0.2, 0.6
    spot = render_spots((64, 64), [[31.3, 32.6]], 1.0, sigma, ellipticity=e, orientation=orientation)
    correction = {"applied": True, "orientation": orientation, "coefficients": [_extra(sigma, e), 0, 0, 0, 0, 0],
                  "variance_range": [0.0, 100.0], "frame_shape": [64, 64]}
    before, cov_before = _moments(spot)
    after, cov = _moments(round_frame(spot, correction).astype(np.float64))
    assert np.linalg.eigvalsh(cov_before)[1] / np.linalg.eigvalsh(cov_before)[0] > 1.7  # really elliptical
    np.testing.assert_allclose(np.linalg.eigvalsh(cov), (sigma * (1 + e)) ** 2, rtol=0.01)
    np.testing.assert_allclose(after, before, atol=0.01)


def test_rounded_lattice_measures_round():
    """Measure → correct → measure again: the corrected image's columns have ellipticity < 0.01."""
    rng = np.random.default_rng(2)
    image = render_spots((256, 256), _lattice(), 1.0, 2.4, ellipticity=0.2, orientation=1.0) + 0.05
    image = add_noise(image, rng, dose=200.0)
    rounded, correction = round_columns(image)
    assert correction["applied"]
    again = estimate_astigmatism(np.asarray(rounded[0]))
    assert again["ellipticity"] < 0.01
    assert not again["applied"]


def test_round_columns_is_a_no_op_with_a_warning_on_round_columns():
    image = render_spots((128, 128), _lattice(128), 1.0, 2.4) + 0.05
    sites = make_sites(np.zeros(4, int), [40.0, 40.5, 80.2, 60.0], [40.0, 70.3, 50.0, 90.0])
    with pytest.warns(UserWarning, match="already round"):
        cut = cut_windows(image, sites, 12, round_columns=True)
    plain = cut_windows(image, sites, 12)
    np.testing.assert_array_equal(cut.windows, plain.windows)
    assert cut.normalisation["round_columns"]["applied"] is False


def test_bad_input():
    with pytest.raises(ValueError, match="too small"):
        estimate_astigmatism(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="round_columns"):
        cut_windows(np.zeros((32, 32)), make_sites([0], [16.0], [16.0]), 8, round_columns="yes")
    with pytest.raises(ValueError, match="1D signals"):
        cut_windows_1d(np.zeros(64), make_sites([0], [0.0], [30.0]), 8, round_columns=True)
    with pytest.raises(ValueError, match="lacks"):
        round_columns(np.zeros((32, 32)), {"applied": True})
    # nothing measurable (blank frames): a no-op with a message, not a crash
    with pytest.warns(UserWarning, match="columns could be fitted"):
        _, correction = round_columns(np.zeros((2, 64, 64)))
    assert not correction["applied"]


def test_nan_pixels_and_frames():
    """NaN pixels stay NaN without spreading; an all-NaN frame is skipped by the estimator."""
    rng = np.random.default_rng(3)
    frame = add_noise(render_spots((128, 128), _lattice(128), 1.0, 2.4, ellipticity=0.2, orientation=0.3) + 0.05,
                      rng, dose=200.0)
    frame[10:14, 20:30] = np.nan
    movie = np.stack([frame, np.full_like(frame, np.nan)])
    rounded, correction = round_columns(movie)
    assert correction["applied"] and abs(correction["ellipticity"] - 0.2) < 0.02
    out = rounded[0]
    assert np.array_equal(np.isnan(out), np.isnan(frame))
    assert np.isnan(rounded[1]).all()


def test_recipe_repeats_the_same_correction():
    """A cut's recipe (through JSON, as stored with a model) cuts identical windows; a model's
    ``encode_sites`` repeats it."""
    from napari_rvae.vae import VAEConfig, build_model, encode
    from napari_rvae.vae.latents import encode_sites

    rng = np.random.default_rng(4)
    movie = np.stack([add_noise(render_spots((128, 128), _lattice(128), 1.0, 2.4, ellipticity=0.2, orientation=0.6)
                                + 0.05, rng, dose=200.0) for _ in range(2)])
    sites = make_sites(np.repeat([0, 1], 20), rng.uniform(20, 108, 40), rng.uniform(20, 108, 40))
    cut = cut_windows(movie, sites, 12, normalisation="global", centring="subpixel", round_columns=True)
    recipe = json.loads(json.dumps(cut.normalisation))
    assert recipe["round_columns"]["applied"]
    again = cut_windows(movie, sites, 12, **recipe_options(recipe))
    np.testing.assert_array_equal(again.windows, cut.windows)
    plain = cut_windows(movie, sites, 12, normalisation="global", centring="subpixel")
    assert np.abs(plain.windows - cut.windows).max() > 0.05  # the correction did change the windows
    model = build_model(VAEConfig(arch="rvae", window=(12, 12), latent=1), seed=0)
    model.normalisation = recipe
    table, _ = encode_sites(model, movie, sites)
    np.testing.assert_allclose(table["angle"].to_numpy()[cut.rows], encode(model, cut.windows)["angle"].to_numpy(),
                               atol=1e-5)


def test_few_columns_give_a_constant_correction():
    """With fewer than 60 fitted columns the extra variance is one number (no surface to overfit)."""
    rng = np.random.default_rng(5)
    image = add_noise(render_spots((96, 96), _lattice(96, 12.0), 1.0, 2.0, ellipticity=0.2, orientation=0.5) + 0.05,
                      rng, dose=200.0)
    est = estimate_astigmatism(image)
    assert est["applied"] and est["columns"] < 60
    assert est["coefficients"][1:] == [0.0] * 5
    assert abs(est["coefficients"][0] - _extra(2.0, 0.2)) < 0.3
