"""Large movies in napari: the reader hands napari a dask array (frames read as they are shown), with
contrast limits from a few frames; image layers save to OME-Zarr and reopen with their calibration."""

import numpy as np
import pytest

from napari_rvae.io.lazy import LAZY_ENV

pytestmark = pytest.mark.gui
da = pytest.importorskip("dask.array")

MOVIE = (np.arange(5, dtype=np.float32)[:, None, None] + np.random.default_rng(3).random((5, 32, 40))).astype(np.float32)


def test_large_movie_opens_as_a_dask_backed_layer(make_napari_viewer, tmp_path, monkeypatch):
    movie = MOVIE.copy()
    movie[1, :4, :4] = np.nan
    np.save(tmp_path / "big.npy", movie)
    monkeypatch.setenv(LAZY_ENV, "1000")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(tmp_path / "big.npy", plugin="napari-rvae")
    assert isinstance(layer.data, da.Array) and layer.data.chunksize == (1, 32, 40)
    first, middle, last = movie[0], movie[2], movie[4]  # contrast from the first, middle and last frames
    assert tuple(layer.contrast_limits) == pytest.approx((float(first.min()), float(last.max())))
    assert float(middle.max()) < layer.contrast_limits[1]
    viewer.dims.set_current_step(0, 3)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), movie[3])  # the shown frame, read on demand


def test_image_layer_saves_to_ome_zarr_and_reopens(make_napari_viewer, tmp_path):
    pytest.importorskip("zarr")
    viewer = make_napari_viewer()
    layer = viewer.add_image(da.from_array(MOVIE, chunks=(1, 32, 40)), name="movie", scale=(0.5, 0.2, 0.2),
                             units=("s", "nm", "nm"))
    path = tmp_path / "saved.zarr"
    written = layer.save(str(path), plugin="napari-rvae")
    assert written == [str(path)]
    (back,) = viewer.open(path, plugin="napari-rvae")
    np.testing.assert_array_equal(np.asarray(back.data), MOVIE)
    assert tuple(back.scale) == pytest.approx((0.5, 0.2, 0.2))
    assert str(back.units[1]) == "nanometer" and str(back.units[0]) == "second"
