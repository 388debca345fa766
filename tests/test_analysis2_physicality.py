"""Physicality map with a decoder whose contrast and physical region are known exactly."""

import numpy as np
import pytest

from napari_rvae.analysis.physicality import histogram_nmf, physicality_map

W = 16
XX = np.arange(W)[None, None, :]


def decoder(z):
    """Left of z0 = 0: a sharp 0/1 wall whose full contrast is 1 + 0.1·z1 (physical band: |z1| < 0.5).
    Right: a washed-out window of uniform grey 0.5 (unphysical everywhere)."""
    z = np.asarray(z, float)
    sharp = (XX >= W // 2) * (1 + 0.1 * z[:, 1])[:, None, None]
    grey = np.full((len(z), W, W), 0.5)
    return np.where((z[:, 0] < 0)[:, None, None], sharp, grey).astype(np.float32)


def test_contrast_and_physical_region_are_exact():
    m = physicality_map(decoder, d=40, span=2.0, bins=10)  # no grid point on the band edges
    z0, z1 = np.meshgrid(m.grid, m.grid, indexing="xy")
    expected_contrast = np.where(z0 < 0, 1 + 0.1 * z1, 0.5)
    np.testing.assert_allclose(m.contrast, expected_contrast, rtol=1e-6)
    np.testing.assert_array_equal(m.physical, (z0 < 0) & (np.abs(z1) < 0.5))
    np.testing.assert_allclose(m.histograms.sum(-1), 1.0)
    # a level of 2 (windows normalised to 0..2) halves the contrast
    m2 = physicality_map(lambda z: 2 * decoder(z), d=5, span=2.0, level=2.0)
    np.testing.assert_allclose(m2.contrast, physicality_map(decoder, d=5, span=2.0).contrast, rtol=1e-6)


def test_histogram_nmf_separates_sharp_and_grey_regions():
    m = physicality_map(decoder, d=21, span=2.0, bins=10)
    nmf = histogram_nmf(m, n_components=2)
    assert nmf.components.shape == (2, 10) and nmf.loadings.shape == (2, 21, 21)
    z0 = np.meshgrid(m.grid, m.grid, indexing="xy")[0]
    grey = int(np.argmax(nmf.components[:, 5]))  # the component holding the 0.5 bin
    other = 1 - grey
    assert (nmf.loadings[grey][z0 > 0] > nmf.loadings[other][z0 > 0]).all()
    assert (nmf.loadings[other][z0 < 0] > nmf.loadings[grey][z0 < 0]).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="level"):
        physicality_map(decoder, d=3, level=0)
    with pytest.raises(ValueError, match="bounds"):
        physicality_map(decoder, d=3, bounds=(1.05, 0.95))
    with pytest.raises(ValueError, match="decoder"):
        physicality_map("not a model", d=3)
