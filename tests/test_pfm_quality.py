"""PFM phase clean-up against synthetic scans with known truth: line offsets, stripes, streaks,
speckle, wrapping, noise."""

import numpy as np
import pytest
from scipy import ndimage

from napari_rvae.detect import find_walls
from napari_rvae.detect.phase_quality import (
    assess_phase,
    domain_levels,
    level_lines,
    min_domain_area_px,
    phase_period,
    rewrap,
    stripe_mask,
)
from napari_rvae.detect.walls import analyse_walls

SIZE = 128


def _domains(seed: int, fraction: float = 0.14) -> np.ndarray:
    """Blobs of the switched domain covering about ``fraction`` of the frame."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(SIZE, SIZE)), 6)
    return field > np.quantile(field, 1 - fraction)


def _asylum_phase(domains: np.ndarray, seed: int, noise: float = 12.0, base: float = 200.0) -> np.ndarray:
    """Degrees in Asylum's range [-90, 270): domains at base and base - 180 (wraps through the seam)."""
    rng = np.random.default_rng(seed)
    phase = np.where(domains, base - 180.0, base) + rng.normal(0, noise, domains.shape)
    return (np.mod(phase + 90.0, 360.0) - 90.0).astype(np.float32)


def _circular_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.mod(a - b + 180.0, 360.0) - 180.0
    return np.abs(d - np.median(d))


def test_period_and_rewrap_keep_domains_whole():
    phase = _asylum_phase(_domains(1), seed=1, base=260.0)  # unswitched at 260 → straddles 270/-90
    assert phase_period(phase) == 360.0 and phase_period(phase, "rad") == pytest.approx(2 * np.pi)
    assert phase_period(np.linspace(-90, 90, 100)) is None
    wrapped, seam = rewrap(phase, 360.0)
    low, high = domain_levels(wrapped, 360.0)
    assert abs((high - low) - 180.0) < 10.0
    assert np.ptp(wrapped[~_domains(1)]) < 180.0  # the unswitched domain is one continuous range now


def test_line_levelling_error_against_truth():
    domains = _domains(2, fraction=0.3)
    truth = _asylum_phase(domains, seed=2, noise=8.0)
    offsets = np.random.default_rng(3).uniform(-60, 60, SIZE)
    offsets[40:70] += 120.0  # a band of lines with a large offset
    scanned = (np.mod(truth + offsets[:, None] + 90.0, 360.0) - 90.0).astype(np.float32)
    before = _circular_error(scanned, truth)
    levelled = level_lines(scanned, period=360.0)[0]
    after = _circular_error(levelled, truth)
    assert np.median(before) > 25.0
    assert np.median(after) < 5.0 and np.quantile(after, 0.95) < 15.0


def test_poly_levelling_removes_a_tilt_along_lines():
    domains = _domains(4, fraction=0.3)
    truth = np.where(domains, 1.0, -1.0).astype(np.float32)
    x = np.linspace(-1, 1, SIZE)
    tilt = np.random.default_rng(5).normal(0, 0.3, (SIZE, 1)) * x[None, :]
    levelled = level_lines(truth + tilt, method="poly", order=1)[0]
    assert np.abs(levelled - truth).max() < 0.05


def _stripe_scene(seed: int):
    domains = _domains(seed)
    artefact = np.zeros_like(domains)
    scanned = domains.copy()
    artefact[:, 90:114] = True  # a vertical band of columns read as switched
    scanned[:, 90:114] = True
    rng = np.random.default_rng(seed + 100)
    for _ in range(6):  # streaks: the tip skipped for a stretch of one or two lines
        row, col = rng.integers(5, SIZE - 5), rng.integers(0, 50)
        length, thick = rng.integers(20, 40), rng.integers(1, 3)
        region = (slice(row, row + thick), slice(col, col + length))
        scanned[region] = ~domains[region]
        artefact[region] = True
    return domains, scanned, artefact


@pytest.mark.parametrize("seed", range(6, 12))
def test_stripe_and_streak_mask_iou(seed):
    _, scanned, artefact = _stripe_scene(seed)
    found = stripe_mask(scanned)[0]
    iou = (found & artefact).sum() / (found | artefact).sum()
    assert iou >= 0.9, f"stripe mask IoU {iou:.3f}"


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_switched_fraction_on_the_reliable_area_within_0_02(seed):
    domains, scanned, artefact = _stripe_scene(seed)
    phase = _asylum_phase(scanned, seed=seed)
    offsets = np.random.default_rng(seed + 1).uniform(-30, 30, SIZE)
    phase = (np.mod(phase + offsets[:, None] + 90.0, 360.0) - 90.0).astype(np.float32)
    truth = domains[~artefact].mean()
    result = analyse_walls(phase, unit="deg")
    measured = result.report["switched_fraction"].iloc[0]
    assert abs(measured - truth) <= 0.02, (measured, truth)
    with_band = (result.domains[0] | artefact).mean()
    assert with_band - truth > 0.1  # counted as a domain, the band would add > 0.1
    assert result.report["masked_fraction"].iloc[0] >= artefact.mean() - 0.01


def test_speckle_removed_by_minimum_domain_area():
    domains = _domains(10)
    rng = np.random.default_rng(11)
    speckled = domains ^ (rng.random(domains.shape) < 0.03)
    phase = _asylum_phase(speckled, seed=10, noise=5.0)
    assert min_domain_area_px((10.0, 10.0), 1000.0) == 10
    result = analyse_walls(phase, unit="deg", pixel_size_nm=(10.0, 10.0))
    measured = result.report["switched_fraction"].iloc[0]
    assert abs(measured - domains.mean()) <= 0.02
    wrong = (result.domains[0] != domains).mean()
    assert wrong < 0.03


def test_noise_frame_is_reported_without_walls():
    rng = np.random.default_rng(12)
    good = _asylum_phase(_domains(12), seed=12)
    noise = rng.uniform(-90, 270, (SIZE, SIZE)).astype(np.float32)
    noise += 0  # a phase with no domain contrast: uniform noise
    with pytest.warns(UserWarning, match="no domain contrast"):
        sites = find_walls(np.stack([good, noise]), unit="deg")
    frames = sites.attrs["frames"]
    assert frames["contrast"] == [True, False]
    assert (sites["frame"] == 1).sum() == 0
    assert np.isnan(frames["switched_fraction"][1])


def test_assess_phase_reports_noise_regions():
    domains = _domains(13)
    phase = _asylum_phase(domains, seed=13)
    phase[:, :40] = np.random.default_rng(14).uniform(-90, 270, (SIZE, 40))
    q = assess_phase(phase, unit="deg")
    noise_truth = np.zeros_like(domains)
    noise_truth[:, :40] = True
    iou = (q.noise[0] & noise_truth).sum() / (q.noise[0] | noise_truth).sum()
    assert iou > 0.85
    assert q.report["reliable_fraction"].iloc[0] == pytest.approx(1 - 40 / SIZE, abs=0.05)
