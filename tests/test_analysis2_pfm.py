"""PFM wall metrics against synthetic truth: circular walls of known radius, stripes of
known count, the pfm-switching movie's true switched fraction."""

import numpy as np
import pytest

from napari_rvae.analysis.pfm import (
    circle_fit,
    curvature_vs_frame,
    per_frame_mean,
    switching_degree,
    switching_degree_per_frame,
    wall_metrics,
    wall_metrics_map,
    wall_windows,
)
from napari_rvae.detect import find_walls
from napari_rvae.synth import pfm_switching

W = 40


def disc_window(radius, centre, width=0.8, inside=1.0):
    """Smooth disc (switched = 1 inside) of ``radius`` pixels; the window shows an arc of its wall."""
    yy, xx = np.mgrid[0:W, 0:W].astype(float)
    r = np.hypot(yy - centre[0], xx - centre[1])
    v = 1 / (1 + np.exp(-(radius - r) / width))
    return v if inside else 1 - v


@pytest.mark.parametrize("radius", [8.0, 15.0, 30.0])
def test_curvature_of_a_circular_wall_is_one_over_r(radius):
    # centre chosen so that the wall passes through the window centre
    centre = (19.5 + 0.7 * radius * 0.6, 19.5 - 0.7 * radius * 0.8)
    win = disc_window(radius, centre)
    m = wall_metrics(win[None], threshold=0.5)
    assert m["wall_count"][0] == 1
    assert m["curvature"][0] == pytest.approx(1 / radius, rel=0.10)
    # the same wall with the switched side outside: same magnitude, negative sign
    m2 = wall_metrics(disc_window(radius, centre, inside=0)[None], threshold=0.5)
    assert m2["curvature"][0] == pytest.approx(-1 / radius, rel=0.10)
    # a pixelated (0/1) disc: the staircase contour still gives 1/r
    binary = (disc_window(radius, centre) > 0.5).astype(float)
    assert wall_metrics(binary[None], threshold=0.5)["curvature"][0] == pytest.approx(1 / radius, rel=0.10)


def test_circle_fit_on_noisy_arc_and_line():
    rng = np.random.default_rng(0)
    t = rng.uniform(0.2, 1.4, 60)
    pts = np.stack([5 + 20 * np.sin(t), -3 + 20 * np.cos(t)], 1) + rng.normal(0, 0.2, (60, 2))
    kappa, centre = circle_fit(pts)
    assert kappa == pytest.approx(1 / 20, rel=0.05)
    np.testing.assert_allclose(centre, [5, -3], atol=1.0)
    line = np.stack([np.linspace(0, 30, 40), 0.5 * np.linspace(0, 30, 40) + 2], 1)
    assert abs(circle_fit(line)[0]) < 1e-6


def test_wall_count_and_curvature_rules():
    yy, xx = np.mgrid[0:W, 0:W]
    flat = np.zeros((W, W))
    one = (xx > 20).astype(float)  # one straight wall
    two = ((xx > 12) & (xx < 28)).astype(float)  # a stripe: two walls
    three = ((xx // 10) % 2).astype(float)  # stripes 10 px wide: three walls
    m = wall_metrics(np.stack([flat, one, two, three]), threshold=0.5)
    assert list(m["wall_count"]) == [0, 1, 2, 3]
    assert np.isnan(m["curvature"][0])
    assert abs(m["curvature"][1]) < 1e-3 and abs(m["curvature"][2]) < 1e-3
    assert m["curvature"][3] == 0.0
    np.testing.assert_allclose(m["switching_degree"], [-1.0, (19 - 21) / 40, (15 - 25) / 40, 0.0])


def test_switching_degree_median_split():
    a = np.zeros((2, 10, 10))
    a[0, :, :7] = 1  # 70 % above the shared median
    a[1, :, :3] = 1
    np.testing.assert_allclose(switching_degree(a, threshold=0.5), [0.4, -0.4])
    assert np.isfinite(switching_degree(a)).all()


@pytest.fixture(scope="module")
def pfm():
    return pfm_switching(0, frames=24, size=96)


def test_switching_degree_tracks_true_switched_fraction(pfm):
    ds = switching_degree_per_frame(pfm["data"])
    r = np.corrcoef(ds, pfm["switched_fraction"])[0, 1]
    assert abs(r) >= 0.9
    np.testing.assert_allclose((ds + 1) / 2, pfm["switched_fraction"], atol=0.05)


def test_time_delayed_wall_windows_see_walls_advance(pfm):
    walls = find_walls(pfm["data"], n_per_frame=40, min_spacing=4, edge_margin=W // 2 + 1)
    cut = wall_windows(pfm["domains"].astype(np.float32), walls, W, delay=1)
    assert len(cut) > 50 and (cut.frames == walls["frame"].to_numpy()[cut.rows] + 1).all()
    still = wall_windows(pfm["domains"].astype(np.float32), walls, W, delay=0)
    common, i1, i0 = np.intersect1d(cut.rows, still.rows, return_indices=True)
    m = wall_metrics(cut.windows, threshold=0.0)
    change = m["switching_degree"].to_numpy()[i1] - switching_degree(still.windows[i0], threshold=0.0)
    growth = np.diff(pfm["switched_fraction"])  # true change from frame t to t+1
    site_frames = walls["frame"].to_numpy()[common]
    per = per_frame_mean(change, site_frames)
    g = growth[per["frame"].to_numpy()]
    # the same wall sites one frame later are more switched exactly where the domains grew
    busy = np.abs(g) > 0.005
    assert busy.sum() >= 5
    assert np.mean(np.sign(per["mean"].to_numpy()[busy]) == np.sign(g[busy])) >= 0.9
    assert abs(np.corrcoef(per["mean"], growth[per["frame"].to_numpy()])[0, 1]) >= 0.8
    site_frames = walls["frame"].to_numpy()[cut.rows]
    table = curvature_vs_frame(m["curvature"], site_frames)
    assert set(table.columns) == {"frame", "mean", "std", "n"} and (table["n"] > 0).all()


def test_wall_metrics_map_with_a_known_decoder():
    # z0 moves a straight wall across the window: D_s = fraction switched, known exactly
    xx = np.arange(W)[None, None, :]

    def decoder(z):
        edge = 20 + 6 * np.asarray(z)[:, 0]
        return np.broadcast_to((xx > edge[:, None, None]).astype(np.float32), (len(z), W, W)).copy()

    maps = wall_metrics_map(decoder, d=9, span=3.0, threshold=0.5)
    edge = 20 + 6 * maps.grid
    expected = ((W - 1 - np.floor(edge)) - (np.floor(edge) + 1)) / W
    np.testing.assert_allclose(maps.switching_degree, np.broadcast_to(expected, (9, 9)))
    assert (maps.wall_count == 1).all()


def test_circle_fits_batch_equals_one_by_one_and_flags_degenerate_sets():
    from napari_rvae.analysis.pfm import circle_fits

    rng = np.random.default_rng(3)
    sets = []
    for r in (5.0, 12.0, 40.0):
        t = rng.uniform(0, 2.0, 30)
        sets.append(np.stack([2 + r * np.sin(t), 7 + r * np.cos(t)], 1) + rng.normal(0, 0.05, (30, 2)))
    sets += [np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), np.zeros((0, 2)),
             np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1)]
    kappa, centre = circle_fits(sets)
    np.testing.assert_allclose(kappa[:3], [1 / 5, 1 / 12, 1 / 40], rtol=0.03)
    np.testing.assert_allclose(centre[:3], [[2, 7]] * 3, atol=0.5)
    assert np.isnan(kappa[3]) and np.isnan(kappa[4])  # two distinct points; no points
    assert abs(kappa[5]) < 1e-6  # a straight line
    for k, one in enumerate(sets):
        single = circle_fit(one)
        np.testing.assert_allclose(single[0], kappa[k], rtol=1e-9, equal_nan=True)
