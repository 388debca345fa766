"""Readers: every format the tests can write is read back as (T, Y, X) float32 with its pixel size."""

from pathlib import Path

import numpy as np
import pytest

from napari_rvae.io.movie import LUMA_WEIGHTS, describe_file, read_movie

MOVIE = np.random.default_rng(1).random((4, 32, 48)).astype(np.float32)


def _check(movies, shape=(4, 32, 48), n=1):
    assert len(movies) == n
    for m in movies:
        assert m.data.shape == shape
        assert m.data.dtype == np.float32
        assert m.axis_labels == ("t", "y", "x")
    return movies[0]


def test_npy_image_becomes_one_frame(tmp_path):
    np.save(tmp_path / "img.npy", MOVIE[0].astype(np.uint16))
    m = _check(read_movie(tmp_path / "img.npy"), shape=(1, 32, 48))
    assert m.units == ("", "pixel", "pixel")


def test_npz_sample_layout_keeps_scale(tmp_path):
    np.savez(tmp_path / "s.npz", data=MOVIE, scale=np.array([1.0, 0.1, 0.2]), units=np.array(["", "nm", "nm"]))
    m = _check(read_movie(tmp_path / "s.npz"))
    assert m.scale[1:] == pytest.approx((0.1, 0.2))
    assert m.units[1:] == ("nm", "nm")
    np.testing.assert_array_equal(m.data, MOVIE)


def test_tiff_stack_with_imagej_calibration(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(
        tmp_path / "m.tif", MOVIE, imagej=True, resolution=(1 / 0.05, 1 / 0.05),
        metadata={"unit": "nm", "axes": "TYX", "finterval": 0.5},
    )
    m = _check(read_movie(tmp_path / "m.tif"))
    assert m.scale == pytest.approx((0.5, 0.05, 0.05))
    assert m.units == ("s", "nm", "nm")


def test_tiff_channels_become_named_movies(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    stack = np.stack([MOVIE, MOVIE * 2, MOVIE * 3], axis=1)  # T C Y X
    tifffile.imwrite(
        tmp_path / "pfm.tif", stack, imagej=True,
        metadata={"axes": "TCYX", "Labels": ["height", "amplitude", "phase"] * 4},
    )
    movies = read_movie(tmp_path / "pfm.tif")
    _check(movies, n=3)
    assert [m.metadata["channel"] for m in movies] == ["height", "amplitude", "phase"]
    np.testing.assert_allclose(movies[2].data, MOVIE * 3, rtol=1e-6)


def test_rgb_render_is_converted_by_luma_rule(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rgb = (np.random.default_rng(2).random((32, 48, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    m = _check(read_movie(tmp_path / "rgb.tif"), shape=(1, 32, 48))
    expected = rgb.astype(np.float32) @ np.asarray(LUMA_WEIGHTS, np.float32)
    np.testing.assert_allclose(m.data[0], expected, rtol=1e-5)
    assert any("RGB" in note for note in m.metadata["notes"])


def test_plain_hdf5_dataset(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "haadf.h5", "w") as f:
        d = f.create_dataset("MainImage", data=MOVIE)
        d.attrs["pixel_size"] = 0.02
        d.attrs["units"] = "nm"
    m = _check(read_movie(tmp_path / "haadf.h5"))
    assert m.scale[1:] == pytest.approx((0.02, 0.02)) and m.units[1] == "nm"


def test_nsid_layout_with_dimension_scales(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "nsid.hdf5", "w") as f:
        g = f.create_group("Measurement_000/Channel_000")
        d = g.create_dataset("image", data=MOVIE)
        d.attrs["quantity"], d.attrs["units"], d.attrs["data_type"] = "intensity", "counts", "IMAGE_STACK"
        for i, (name, step, unit) in enumerate([("t", 1.0, "s"), ("y", 0.3, "nm"), ("x", 0.3, "nm")]):
            dim = g.create_dataset(name, data=np.arange(MOVIE.shape[i]) * step)
            dim.attrs["units"] = unit
            dim.make_scale(name)
            d.dims[i].attach_scale(dim)
    movies = read_movie(tmp_path / "nsid.hdf5")
    m = _check(movies)
    assert m.scale[1:] == pytest.approx((0.3, 0.3)) and m.units[1] == "nm"
    assert m.metadata["data_type"] == "IMAGE_STACK"


def _rsciio_signal(data):
    return {
        "data": data,
        "axes": [
            {"name": "t", "size": data.shape[0], "scale": 0.5, "units": "s", "navigate": True, "offset": 0},
            {"name": "y", "size": data.shape[1], "scale": 0.1, "units": "nm", "navigate": False, "offset": 0},
            {"name": "x", "size": data.shape[2], "scale": 0.1, "units": "nm", "navigate": False, "offset": 0},
        ],
        "metadata": {"General": {"title": "haadf"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "learning_results": {},
        "models": {},
        "package_info": {"name": "hyperspy", "version": "2.1"},
    }


@pytest.mark.parametrize("module,suffix", [("emd", ".emd"), ("hspy", ".hspy"), ("hspy", ".h5")])
def test_rosettasciio_written_files(tmp_path, module, suffix):
    writer = pytest.importorskip(f"rsciio.{module}").file_writer
    path = tmp_path / f"movie{suffix}"
    writer(str(path), _rsciio_signal(MOVIE))
    m = _check(read_movie(path))
    assert m.scale[1:] == pytest.approx((0.1, 0.1)) and m.units[1] == "nm"
    np.testing.assert_allclose(m.data, MOVIE)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("empty.tif", b"", "empty"),
        ("broken.dm4", b"not a dm4 file" * 50, "corrupt"),
        ("broken.h5", b"\x00garbage" * 50, "corrupt"),
        ("broken.npy", b"\x93NUMPY garbage" * 10, "corrupt"),
        ("movie.xyz", b"abc", "unsupported"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        read_movie(path)
    assert "\n" not in str(info.value)


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        read_movie(tmp_path / "obj.npy")


def test_wrong_dimensions_are_explained(tmp_path):
    np.save(tmp_path / "5d.npy", np.zeros((2, 3, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="dimensions"):
        read_movie(tmp_path / "5d.npy")


def test_large_file_opens_lazily(tmp_path, monkeypatch):
    import napari_rvae.io.movie as movie

    monkeypatch.setattr(movie, "LAZY_BYTES", 1000)
    np.save(tmp_path / "big.npy", MOVIE)
    m = read_movie(tmp_path / "big.npy")[0]
    assert m.lazy
    np.testing.assert_array_equal(m.frame(2), MOVIE[2])


def test_describe_reports_shape_and_pixel_size(tmp_path):
    np.savez(tmp_path / "s.npz", data=MOVIE, scale=np.array([1.0, 0.1, 0.1]), units=np.array(["", "nm", "nm"]))
    text = describe_file(tmp_path / "s.npz")
    assert "(4, 32, 48)" in text and "0.1 × 0.1 nm" in text and "frames: 4" in text
