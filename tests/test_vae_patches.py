"""Windows are cut where the sites say, with the stated rounding, and nothing is lost silently."""

import numpy as np
import pandas as pd
import pytest

from napari_rvae.io.sites import make_sites
from napari_rvae.patches import centre_pixel, cut_windows, cut_windows_1d, grid_sites, normalise


def coded_movie(t=3, ny=40, nx=50):
    """Each pixel's value encodes its own (t, y, x): value = t·10000 + y·100 + x."""
    tt, yy, xx = np.meshgrid(np.arange(t), np.arange(ny), np.arange(nx), indexing="ij")
    return (tt * 10000 + yy * 100 + xx).astype(np.float32)


def decode_value(v):
    v = np.asarray(v, dtype=np.int64)
    return v // 10000, (v % 10000) // 100, v % 100


def test_rounding_rule_is_floor_c_plus_half():
    assert list(centre_pixel([2.49, 2.5, 2.51, -0.5, -0.51, 3.0])) == [2, 3, 3, 0, -1, 3]


@pytest.mark.parametrize("w", [4, 5, 8])
def test_windows_sit_on_rounded_centres(w):
    movie = coded_movie()
    sites = make_sites([0, 1, 2], [10.4, 20.5, 15.0], [12.6, 30.2, 25.49])
    cut = cut_windows(movie, sites, w)
    assert cut.windows.shape == (3, w, w) and cut.windows.dtype == np.float32
    for k, (t, y, x) in enumerate([(0, 10, 13), (1, 21, 30), (2, 15, 25)]):
        tt, yy, xx = decode_value(cut.windows[k])
        assert (tt == t).all()
        # even w: rows [c − w/2, c + w/2); odd w: centred
        assert list(yy[:, 0]) == list(range(y - w // 2, y - w // 2 + w))
        assert list(xx[0]) == list(range(x - w // 2, x - w // 2 + w))
    assert list(cut.rows) == [0, 1, 2]


def test_border_drop_and_pad_are_reported():
    movie = coded_movie()
    sites = make_sites(0, [1.0, 20.0, 38.0], [1.0, 20.0, 48.0])
    dropped = cut_windows(movie, sites, 8, border="drop")
    assert list(dropped.rows) == [1]
    assert dropped.report.border_dropped == 2 and dropped.report.cut == 1
    padded = cut_windows(movie, sites, 8, border="pad")
    assert list(padded.rows) == [0, 1, 2] and padded.report.border_padded == 2
    _, yy, xx = decode_value(padded.windows[0])
    assert yy.min() == 0 and xx.min() == 0  # edge pixels repeated
    assert (yy[:4, 0] == 0).all()
    assert "dropped at border" in dropped.report.summary()


def test_nan_windows_reported():
    movie = coded_movie()
    movie[0, 20, 20] = np.nan
    sites = make_sites(0, [20.0, 10.0], [20.0, 10.0])
    cut = cut_windows(movie, sites, 6)
    assert list(cut.rows) == [1] and cut.report.nan_dropped == 1
    kept = cut_windows(movie, sites, 6, nan="keep")
    assert len(kept) == 2 and kept.report.nan_kept == 1


def test_class_filter_and_per_frame_subset():
    rng = np.random.default_rng(0)
    n = 300
    sites = make_sites(rng.integers(0, 3, n), rng.uniform(10, 30, n), rng.uniform(10, 40, n), cls=rng.integers(0, 2, n))
    movie = coded_movie()
    cut = cut_windows(movie, sites, 6, classes=1, per_frame=7, seed=3)
    chosen = sites.iloc[cut.rows]
    assert (chosen["class"] == 1).all()
    assert chosen.groupby("frame").size().max() == 7 and len(chosen) == 21
    again = cut_windows(movie, sites, 6, classes=1, per_frame=7, seed=3)
    assert np.array_equal(cut.rows, again.rows)
    other = cut_windows(movie, sites, 6, classes=1, per_frame=7, seed=4)
    assert not np.array_equal(cut.rows, other.rows)
    r = cut.report
    assert r.class_filtered + r.subsampled + r.cut == n


def test_time_delayed_windows_come_from_later_frame():
    movie = coded_movie()
    sites = make_sites([0, 1, 2], [20.0] * 3, [20.0] * 3)
    cut = cut_windows(movie, sites, 4, delay=1)
    assert list(cut.rows) == [0, 1] and cut.report.out_of_frames == 1
    tt, _, _ = decode_value(cut.windows[:, 0, 0])
    assert list(tt) == [1, 2] and list(cut.frames) == [1, 2]


def test_grid_and_every_pixel():
    movie = coded_movie(t=2, ny=20, nx=24)
    sites = grid_sites(movie.shape, 6, step=4)
    assert set(sites["kind"]) == {"grid"}
    cut = cut_windows(movie, sites, 6)
    assert cut.report.border_dropped == 0 and len(cut) == len(sites)
    _, yy, xx = decode_value(cut.windows[:, 3, 3])
    assert np.array_equal(yy, sites["y"].to_numpy()) and np.array_equal(xx, sites["x"].to_numpy())
    every = grid_sites(movie.shape[1:], 6, step=1)
    assert len(every) == (20 - 6 + 1) * (24 - 6 + 1)


def test_one_d_windows():
    signal = np.arange(100, dtype=np.float32)[None].repeat(2, 0) + np.array([[0], [1000]], dtype=np.float32)
    sites = pd.DataFrame({"frame": [0, 1, 0], "x": [10.5, 50.2, 98.0]})
    cut = cut_windows_1d(signal, sites, 8)
    assert cut.windows.shape == (2, 8) and cut.report.border_dropped == 1
    assert list(cut.windows[0]) == list(range(7, 15))
    assert list(cut.windows[1]) == [1000 + v for v in range(46, 54)]


def test_normalisations():
    x = np.array([[[0, 2], [4, 6]], [[1, 1], [1, 1]]], dtype=np.float32)
    g, params = normalise(x, "global")
    assert g.min() == 0 and g.max() == 1 and params["lo"] == 0 and params["hi"] == 6
    again, _ = normalise(x, "global", lo=params["lo"], hi=params["hi"])
    assert np.array_equal(g, again)
    w, _ = normalise(x, "window")
    assert w[0].max() == 1 and (w[1] == 0).all()
    with pytest.raises(ValueError, match="normalisation"):
        normalise(x, "zscore")


def test_bad_inputs_raise_clear_errors():
    movie = coded_movie()
    with pytest.raises(ValueError, match="window"):
        cut_windows(movie, make_sites(0, 5.0, 5.0), 1)
    with pytest.raises(ValueError, match="missing column"):
        cut_windows(movie, pd.DataFrame({"y": [1.0]}), 4)
    with pytest.raises(ValueError, match="border"):
        cut_windows(movie, make_sites(0, 5.0, 5.0), 4, border="wrap")


def test_lazy_movie_gives_the_same_windows():
    class Lazy:
        """A minimal lazy array (like dask / h5py): shape, ndim, indexing by frame."""

        def __init__(self, data):
            self.data, self.shape, self.ndim = data, data.shape, data.ndim

        def __getitem__(self, key):
            return self.data[key]

    movie = coded_movie()
    sites = make_sites([0, 2, 1], [10.0, 20.0, 30.0], [12.0, 30.0, 25.0])
    direct = cut_windows(movie, sites, 6)
    lazy = cut_windows(Lazy(movie), sites, 6)
    assert np.array_equal(direct.windows, lazy.windows) and np.array_equal(direct.rows, lazy.rows)


@pytest.mark.parametrize("w", [5, 8, 12])
def test_subpixel_centring_puts_the_site_on_the_window_centre(w):
    """centring="subpixel": pixel (i, j) samples the movie at c + (i, j) − (w − 1)/2.

    The coded movie is linear in y and x, so linear interpolation must be exact."""
    movie = coded_movie()
    ys, xs = np.array([10.37, 20.5, 15.0]), np.array([12.61, 30.2, 25.49])
    cut = cut_windows(movie, make_sites([0, 1, 2], ys, xs), w, centring="subpixel")
    offsets = np.arange(w) - (w - 1) / 2
    for k, t in enumerate([0, 1, 2]):
        expected = t * 10000 + (ys[k] + offsets)[:, None] * 100 + (xs[k] + offsets)[None, :]
        np.testing.assert_allclose(cut.windows[k], expected, atol=2e-3)
    assert cut.normalisation["centring"] == "subpixel"
    assert "centring" not in cut_windows(movie, make_sites(0, 10.0, 10.0), w).normalisation  # old recipes unchanged


def test_subpixel_centred_spot_has_its_centroid_at_the_centre():
    """A Gaussian spot at a random sub-pixel position: centroid within 0.05 px of the
    window centre with subpixel centring; the papers' rounding leaves it up to ~1 px off."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64]
    ys, xs = rng.uniform(20, 44, 20), rng.uniform(20, 44, 20)
    movie = np.stack([np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 2.0**2)) for y, x in zip(ys, xs)]).astype(np.float32)
    sites = make_sites(np.arange(20), ys, xs)
    off = np.arange(16) - 7.5

    def centroid_error(cut):
        w = cut.windows
        cy = (w.sum(2) * off).sum(1) / w.sum((1, 2))
        cx = (w.sum(1) * off).sum(1) / w.sum((1, 2))
        return np.hypot(cy, cx)

    assert centroid_error(cut_windows(movie, sites, 16, centring="subpixel")).max() < 0.05
    assert centroid_error(cut_windows(movie, sites, 16)).max() > 0.5


def test_subpixel_centring_border_nan_and_lazy():
    movie = coded_movie()
    sites = make_sites(0, [3.2, 20.0, 36.6], [3.2, 20.0, 46.6])
    dropped = cut_windows(movie, sites, 8, centring="subpixel")
    assert list(dropped.rows) == [1] and dropped.report.border_dropped == 2
    padded = cut_windows(movie, sites, 8, centring="subpixel", border="pad")
    assert padded.report.border_padded == 2 and np.isfinite(padded.windows).all()
    exact = cut_windows(movie, make_sites(0, 3.5, 3.5), 8, centring="subpixel")  # needs pixels 0..7 only
    assert len(exact) == 1
    nan_movie = movie.copy()
    nan_movie[0, 21, 21] = np.nan
    assert cut_windows(nan_movie, sites, 8, centring="subpixel").report.nan_dropped == 1
    with pytest.raises(ValueError, match="centring"):
        cut_windows(movie, sites, 8, centring="bicubic")
