"""Latent maps against fields known exactly (no Qt)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis.latent_maps import frame_latent_map, latent_maps, map_grid


def _sites(field, n=400, frames=2, size=64, seed=0):
    rng = np.random.default_rng(seed)
    frame = np.repeat(np.arange(frames), n)
    y, x = rng.uniform(0, size - 1, frame.size), rng.uniform(0, size - 1, frame.size)
    return pd.DataFrame({"frame": frame, "y": y, "x": x, "value": field(frame, y, x)})


def test_linear_field_is_reproduced_inside_the_hull_per_frame():
    field = lambda f, y, x: 0.3 * y - 0.7 * x + 5.0 * f  # noqa: E731 - a different plane per frame
    sites = _sites(field)
    maps = latent_maps(sites, "value", (64, 64))
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    gy, gx = map_grid((64, 64))
    for f in range(2):
        inside = np.isfinite(maps[f])
        assert inside.mean() > 0.85  # random sites cover most of the frame
        # linear interpolation of a plane is exact (float32 rounding only)
        np.testing.assert_allclose(maps[f][inside], field(f, gy, gx)[inside], atol=1e-3)
    # corners are outside the sites' convex hull: no invented values there
    s = sites[sites.frame == 0]
    hull_free_corner = not ((s.y < 2) & (s.x < 2)).any()
    if hull_free_corner:
        assert np.isnan(maps[0, 0, 0])


def test_angles_interpolate_on_the_circle():
    # a smooth angle field that crosses ±π, stored unwrapped by 2π multiples as an rVAE would
    rng = np.random.default_rng(1)
    true = lambda f, y, x: np.angle(np.exp(1j * (np.pi + 0.02 * (x - 32))))  # noqa: E731 - crosses ±π at x = 32
    sites = _sites(true, frames=1)
    sites["angle"] = sites["value"] + 2 * np.pi * rng.integers(-3, 4, len(sites))
    maps = latent_maps(sites, "angle", (64, 64))
    gy, gx = map_grid((64, 64))
    inside = np.isfinite(maps[0])
    error = np.angle(np.exp(1j * (maps[0][inside] - true(0, gy, gx)[inside])))
    assert np.abs(error).max() < 2e-3
    # treating the same values as plain numbers is badly wrong: the test can fail
    plain = latent_maps(sites, "angle", (64, 64), circular=False)
    bad = np.angle(np.exp(1j * (plain[0][inside] - true(0, gy, gx)[inside])))
    assert np.abs(bad).max() > 0.5


def test_step_frames_and_sparse_frames():
    sites = _sites(lambda f, y, x: y, frames=3)
    sites = sites[sites.frame != 1]  # frame 1 has no sites
    maps = latent_maps(sites, "value", (64, 50), step=4, frames=[0, 1, 2])
    assert maps.shape == (3, 16, 13)
    assert np.isnan(maps[1]).all()
    gy, _ = map_grid((64, 50), 4)
    inside = np.isfinite(maps[2])
    np.testing.assert_allclose(maps[2][inside], gy[inside], atol=1e-3)
    # nearest fills everything, and equals the nearest site's value
    nearest = frame_latent_map([0, 0, 40], [0, 40, 0], [1.0, 2.0, 3.0], (41, 41), method="nearest")
    assert nearest[1, 1] == 1.0 and nearest[1, 39] == 2.0 and nearest[39, 1] == 3.0
    # fewer than 3 sites: nothing to interpolate
    assert np.isnan(frame_latent_map([1, 2], [1, 2], [0.0, 1.0], (8, 8))).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"column": "nope"}, "missing column"), ({"shape": (0, 5)}, "shape"), ({"step": 0}, "step"), ({"method": "spline"}, "method")],
)
def test_bad_input_says_what_is_wrong(kwargs, message):
    sites = _sites(lambda f, y, x: y, frames=1, n=10)
    args = {"column": "value", "shape": (8, 8)} | kwargs
    with pytest.raises(ValueError, match=message):
        latent_maps(sites, args.pop("column"), args.pop("shape"), **args)
