"""Wall metrics of whole frames and per latent region against drawn domains of known geometry."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis.pfm_frames import frame_wall_metrics, region_metrics

SIZE = 128


def disc(radius, centre=(64.0, 64.0)):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def test_disc_domain_gives_one_wall_its_length_and_curvature():
    radii = [10.0, 20.0, 30.0]
    domains = np.stack([disc(r) for r in radii])
    table = frame_wall_metrics(domains)
    assert table["wall_count"].tolist() == [1, 1, 1]
    # a circle's wall is 2πr long (within 3 %: the pixel staircase is smoothed away)
    np.testing.assert_allclose(table["wall_length"], [2 * np.pi * r for r in radii], rtol=0.03)
    # the switched disc bulges outwards: positive curvature 1/r
    np.testing.assert_allclose(table["curvature"], [1 / r for r in radii], rtol=0.15)
    expected_fraction = np.array([disc(r).mean() for r in radii])
    np.testing.assert_allclose(table["switching_degree"], 2 * expected_fraction - 1, atol=1e-12)


def test_straight_walls_count_and_zero_curvature_and_calibration():
    domains = np.zeros((1, SIZE, SIZE), bool)
    domains[0, :, 40:80] = True  # a switched stripe: two straight walls across the frame
    table = frame_wall_metrics(domains, pixel_size_nm=2.0)
    assert table["wall_count"][0] == 2
    assert table["wall_length"][0] == pytest.approx(2 * (SIZE - 1), rel=0.02)
    assert abs(table["curvature"][0]) < 1e-3
    assert table["wall_length_nm"][0] == pytest.approx(2.0 * table["wall_length"][0])
    # an unswitched frame has no wall and a curvature that is not a number
    empty = frame_wall_metrics(np.zeros((1, 32, 32), bool))
    assert empty["wall_count"][0] == 0 and np.isnan(empty["curvature"][0])
    assert empty["switching_degree"][0] == -1.0


def test_unreliable_area_is_left_out():
    domains = np.zeros((1, SIZE, SIZE), bool)
    domains[0, :, 64:] = True
    reliable = np.ones_like(domains)
    reliable[0, :, :32] = False  # a quarter of the frame cannot be trusted
    table = frame_wall_metrics(domains, reliable)
    assert table["switched_fraction"][0] == pytest.approx(64 / 96)


def test_region_metrics_average_per_frame_and_region():
    metrics = pd.DataFrame({"switching_degree": [0.1, 0.3, -0.5, 0.0], "wall_count": [1, 3, 2, 2]})
    out = region_metrics(metrics, frames=[0, 0, 0, 1], regions=[0, 0, 1, 1])
    assert out[["region", "frame", "n"]].values.tolist() == [[0, 0, 2], [1, 0, 1], [1, 1, 1]]
    assert out["switching_degree"].tolist() == pytest.approx([0.2, -0.5, 0.0])
    with pytest.raises(ValueError, match="same length"):
        region_metrics(metrics, frames=[0], regions=[0])
