"""Angle wrapping, histogram peaks and variant assignment."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_rvae.analysis import agreement, angle_histogram, assign_variants, find_angle_peaks, wrap_angle
from napari_rvae.analysis.angles import angle_difference


@settings(deadline=None)  # no timing in unit tests (shared, busy machine)
@given(st.floats(-1e4, 1e4), st.floats(-10, 10))
def test_wrap_angle_range_and_direction(a, offset):
    w = float(wrap_angle(a, offset))
    assert -np.pi < w <= np.pi
    assert np.cos(w) == pytest.approx(np.cos(a + offset), abs=1e-6)
    assert np.sin(w) == pytest.approx(np.sin(a + offset), abs=1e-6)


def test_wrap_angle_edges():
    assert wrap_angle(np.pi) == pytest.approx(np.pi)
    assert wrap_angle(-np.pi) == pytest.approx(np.pi)
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2)
    assert angle_difference(np.pi - 0.1, -np.pi + 0.1) == pytest.approx(-0.2)


def variant_angles(offset, n=3000, noise=0.12, seed=0, encoder_offset=0.0, background=0.0):
    """4 variants with directions offset + k·π/2 (unequal populations), as an unbounded
    rVAE angle would come out (shifted by ``encoder_offset`` and by random turns of 2π)."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    angle = offset + variant * np.pi / 2 + rng.normal(0, noise, n)
    angle = angle + encoder_offset + 2 * np.pi * rng.integers(-3, 4, n)
    nb = int(background * n)
    angle = np.concatenate([angle, rng.uniform(-np.pi, np.pi, nb)])
    return angle, np.concatenate([variant, -np.ones(nb, int)])


@pytest.mark.parametrize("offset", [0.0, np.pi / 4, np.pi - 0.05, 1.0])
def test_four_variants_give_four_peaks_pi_over_2_apart(offset):
    angle, _ = variant_angles(offset, background=0.1)
    peaks = find_angle_peaks(angle)
    assert len(peaks) == 4, peaks
    assert np.all(np.abs(peaks["spacing"] - np.pi / 2) <= 0.15), peaks
    assert peaks["spacing"].sum() == pytest.approx(2 * np.pi)
    truth = np.sort(wrap_angle(offset + np.arange(4) * np.pi / 2))
    err = np.abs(angle_difference(np.sort(peaks["angle"].to_numpy()), truth))
    assert err.max() < 0.1


def test_user_offset_registers_the_angle():
    # the encoder reports the variants 100° off (paper 003's −100° registration)
    angle, variant = variant_angles(0.3, encoder_offset=np.deg2rad(100), seed=1)
    peaks = find_angle_peaks(angle, offset=-np.deg2rad(100))
    truth = np.sort(wrap_angle(0.3 + np.arange(4) * np.pi / 2))
    assert np.abs(angle_difference(peaks["angle"].to_numpy(), truth)).max() < 0.1
    labels = assign_variants(angle, offset=-np.deg2rad(100))
    assert agreement(labels, variant) >= 0.99
    far = assign_variants(angle, peaks["angle"], offset=-np.deg2rad(100), max_distance=0.2)
    assert 0 < (far == -1).mean() < 0.15


def test_histogram_is_a_density_and_inputs_are_checked():
    centres, density = angle_histogram(np.random.default_rng(0).uniform(-10, 10, 1000), bins=36)
    assert len(centres) == 36 and centres[0] > -np.pi and centres[-1] < np.pi
    assert density.sum() * 2 * np.pi / 36 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bins"):
        angle_histogram([0.1], bins=2)
    with pytest.raises(ValueError, match="peaks"):
        assign_variants([0.1, 0.2], peaks=[])


def test_a_single_peak_is_found_once_across_the_wrap():
    angle = np.pi + np.random.default_rng(2).normal(0, 0.1, 2000)
    peaks = find_angle_peaks(angle)
    assert len(peaks) == 1
    assert abs(angle_difference(peaks["angle"].iloc[0], np.pi)) < 0.05
    assert peaks["spacing"].iloc[0] == pytest.approx(2 * np.pi)


def test_flat_angle_distribution_gives_few_or_no_peaks():
    # a non-polar phase: angles uniform on the circle; peaks must beat the counting noise
    found = [len(find_angle_peaks(np.random.default_rng(seed).uniform(-np.pi, np.pi, 3000))) for seed in range(10)]
    assert np.mean(found) < 0.5, found


@pytest.mark.parametrize("gap_deg", [60.0, 180.0, 300.0])
def test_threefold_motifs_show_their_two_orientations_60_degrees_apart(gap_deg):
    """Graphene's sublattices are one 60° turn apart; for a 3-fold motif a 180° (or 300°) turn is the
    same orientation, and folding modulo 120° shows both as two peaks 60° apart."""
    from napari_rvae.analysis.angles import find_angle_peaks, fold

    rng = np.random.default_rng(0)
    a = np.r_[rng.normal(0.3, 0.05, 2000), rng.normal(0.3 + np.radians(gap_deg), 0.05, 2000)]
    peaks = find_angle_peaks(a, symmetry=3)
    assert len(peaks) == 2
    np.testing.assert_allclose(np.degrees(peaks["spacing"]), [60.0, 60.0], atol=3.0)
    assert np.all(np.abs(fold(a, 3)) <= np.pi / 3 + 1e-12)
