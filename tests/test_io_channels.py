"""Channels are channels, calibration comes from the file, sequences open as one movie.

Files are written by the libraries that own the formats (h5py in the pyNSID layout, tifffile,
rosettasciio); the known truth is what was written.
"""

from pathlib import Path

import numpy as np
import pytest

from napari_rvae.io.colour import rgb_to_intensity
from napari_rvae.io.movie import describe_file, find_channel, read_movie, select_movie
from napari_rvae.io.sequence import drift_shifts, natural_key, shift_frames

NAMES = ["Height", "Amplitude", "Phase"]
RNG = np.random.default_rng(7)
STACK = RNG.random((3, 24, 40)).astype(np.float32)  # one (Y, X) image per channel


def test_npz_channels_key_names_channels_not_frames(tmp_path):
    np.savez(tmp_path / "pfm.npz", data=STACK, channels=np.array(NAMES), scale=np.array([2.0, 2.0]),
             units=np.array(["nm", "nm"]))
    movies = read_movie(tmp_path / "pfm.npz")
    assert [m.channel for m in movies] == NAMES
    assert all(m.data.shape == (1, 24, 40) for m in movies)
    np.testing.assert_array_equal(movies[2].data[0], STACK[2])
    assert movies[0].scale[1:] == (2.0, 2.0) and movies[0].units[1:] == ("nm", "nm")
    text = describe_file(tmp_path / "pfm.npz")
    assert "channels (3)" in text and "frames: 1" in text and "2: Phase" in text


def test_npz_channels_last_axis_and_movie_with_channels(tmp_path):
    movie = RNG.random((5, 24, 40, 3)).astype(np.float32)
    np.savez(tmp_path / "m.npz", data=movie, channels=np.array(NAMES))
    movies = read_movie(tmp_path / "m.npz")
    assert [m.channel for m in movies] == NAMES and movies[1].data.shape == (5, 24, 40)
    np.testing.assert_array_equal(movies[1].data, movie[..., 1])


def test_singleton_axes_are_squeezed_with_a_note(tmp_path):
    np.save(tmp_path / "one.npy", STACK[0][None, :, :, None])
    (m,) = read_movie(tmp_path / "one.npy")
    assert m.data.shape == (1, 24, 40)
    assert any("singleton" in n for n in m.metadata["notes"])


def test_short_trailing_float_axis_is_channels(tmp_path):
    np.save(tmp_path / "yxc.npy", np.moveaxis(STACK, 0, -1))
    movies = read_movie(tmp_path / "yxc.npy")
    assert len(movies) == 3 and movies[0].data.shape == (1, 24, 40)
    np.testing.assert_array_equal(movies[2].data[0], STACK[2])


def _write_nsid(path, quantities, units_of_dims="m", scan=2e-6, x_first=True):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, q in enumerate(quantities):
            g = f.create_group(f"Measurement_000/Channel_{k}/Channel_{k}")
            data = STACK[k].T if x_first else STACK[k]  # Igor-converted files store (x, y)
            d = g.create_dataset(f"Channel_{k}", data=data)
            d.attrs["quantity"], d.attrs["data_type"], d.attrs["units"] = q, "IMAGE", "deg" if "Phase" in q else "m"
            d.attrs["DIMENSION_LABELS"] = np.array(["x", "y"] if x_first else ["y", "x"], dtype="S")
            labels = ["x", "y"] if x_first else ["y", "x"]
            for i, name in enumerate(labels):
                n = data.shape[i]
                dim = g.create_dataset(name, data=np.linspace(0, scan, n))
                dim.attrs["units"] = units_of_dims if k == 0 else "deg"  # later channels: wrong dim units, as real files
                dim.make_scale(name)
                d.dims[i].attach_scale(dim)
            meta = g.create_group("original_metadata")
            meta.attrs["ScanSize"] = str(scan)


def test_nsid_channels_named_by_quantity_transposed_and_share_calibration(tmp_path):
    _write_nsid(tmp_path / "scan.h5", ["HeightRetrace", "AmplitudeRetrace", "PhaseRetrace"])
    movies = read_movie(tmp_path / "scan.h5")
    assert [m.channel for m in movies] == ["HeightRetrace", "AmplitudeRetrace", "PhaseRetrace"]
    for k, m in enumerate(movies):
        np.testing.assert_array_equal(m.data[0], STACK[k])  # rows are y again
        assert m.units[1:] == ("µm", "µm")
        assert m.scale[1] == pytest.approx(2.0 / 23) and m.scale[2] == pytest.approx(2.0 / 39)
    assert movies[2].metadata["value_unit"] == "deg"
    assert find_channel(movies, "phase") == 2 and find_channel(movies, None, prefer="phase") == 2


def test_plain_hdf5_scan_size_in_json_metadata(tmp_path):
    h5py = pytest.importorskip("h5py")
    import json

    with h5py.File(tmp_path / "graphene.hdf5", "w") as f:
        f.create_dataset("image_data", data=STACK[0])
        f.create_dataset("metadata", data=json.dumps({"sample name": "graphene", "scan size": 4}))
    (m,) = read_movie(tmp_path / "graphene.hdf5")
    assert m.units[1] == "nm"
    assert m.scale[1] == pytest.approx(4 / 24) and m.scale[2] == pytest.approx(4 / 40)
    assert "scan size" in m.metadata["calibration"]


def test_tiff_calibration_in_micrometres_shown_in_nm(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "c.tif", STACK[:1], imagej=True, resolution=(1 / 0.002, 1 / 0.002),
                     metadata={"unit": "micron", "axes": "TYX"})
    (m,) = read_movie(tmp_path / "c.tif")
    assert m.units[1] == "nm" and m.scale[1] == pytest.approx(2.0)


@pytest.mark.parametrize("module,suffix", [("hspy", ".hspy"), ("emd", ".emd")])
def test_rosettasciio_calibration_in_angstrom_becomes_nm(tmp_path, module, suffix):
    writer = pytest.importorskip(f"rsciio.{module}").file_writer
    signal = {
        "data": STACK[0],
        "axes": [{"name": "y", "size": 24, "scale": 0.5, "units": "Å", "navigate": False, "offset": 0},
                 {"name": "x", "size": 40, "scale": 0.5, "units": "Å", "navigate": False, "offset": 0}],
        "metadata": {"General": {"title": "HAADF"}, "Signal": {"signal_type": ""}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "learning_results": {}, "models": {}, "package_info": {"name": "hyperspy", "version": "2.1"},
    }
    writer(str(tmp_path / f"s{suffix}"), signal)
    (m,) = read_movie(tmp_path / f"s{suffix}")
    assert m.units[1] == "nm" and m.scale[1] == pytest.approx(0.05)
    np.testing.assert_allclose(m.data[0], STACK[0])


def test_false_colour_render_is_inverted_along_the_colormap():
    truth = RNG.random((64, 64))
    hot = np.stack([np.clip(truth / 0.375, 0, 1), np.clip((truth - 0.375) / 0.375, 0, 1),
                    np.clip((truth - 0.75) / 0.25, 0, 1)], -1)
    intensity, note = rgb_to_intensity((hot * 255).round().astype(np.uint8))
    assert "false-colour" in note
    assert np.corrcoef(intensity.ravel(), truth.ravel())[0, 1] > 0.99
    luma = (hot * 255) @ np.array([0.299, 0.587, 0.114])
    assert np.corrcoef(intensity.ravel(), truth.ravel())[0, 1] > np.corrcoef(luma.ravel(), truth.ravel())[0, 1]


def test_grey_rgb_render_keeps_its_values():
    grey = (RNG.random((16, 16)) * 255).astype(np.uint8)
    intensity, note = rgb_to_intensity(np.stack([grey] * 3, -1))
    np.testing.assert_array_equal(intensity, grey)
    assert "grey" in note


def _textured(shape, seed=0):
    from scipy import ndimage

    return ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 3).astype(np.float32)


def test_sequence_in_natural_order_keeps_channels_and_registers_drift(tmp_path):
    truth = [(0.0, 0.0), (1.3, -2.6), (3.7, 0.4)]
    big = _textured((120, 140))
    for k, (dy, dx) in enumerate(truth):
        frame = shift_frames(big[None], np.array([[dy, dx]]))[0][20:100, 20:120]
        channels = np.stack([frame, -frame])
        np.savez(tmp_path / f"scan{[2, 10, 11][k]}.npz", data=channels, channels=np.array(["Height", "Phase"]))
    movies = read_movie(str(tmp_path / "scan*.npz"), register=True)
    assert [m.channel for m in movies] == ["Height", "Phase"]
    assert movies[0].data.shape == (3, 80, 100)
    files = movies[0].metadata["files"]
    assert [Path(f).name for f in files] == ["scan2.npz", "scan10.npz", "scan11.npz"]
    shifts = np.array(movies[0].metadata["drift_shifts"])
    # registration undoes the drift: shift = -(drift) relative to frame 0
    error = np.abs(shifts + np.array(truth)).max()
    assert error <= 0.2, f"registration error {error:.3f} px"
    assert np.isnan(movies[0].data[2]).any() and np.isfinite(movies[0].data[0]).all()


def test_drift_shifts_on_noisy_frames_within_0_2_px():
    big = _textured((160, 160), seed=3)
    truth = np.array([[0.0, 0.0], [0.4, 1.8], [-2.25, 3.1]])
    frames = shift_frames(np.stack([big] * 3), truth)[:, 30:130, 30:130]
    frames = frames + np.random.default_rng(4).normal(0, 0.01, frames.shape).astype(np.float32)
    assert np.abs(drift_shifts(frames) + truth).max() <= 0.2


def test_sequence_refuses_other_frame_size_and_other_channels(tmp_path):
    np.save(tmp_path / "a1.npy", STACK[0])
    np.save(tmp_path / "a2.npy", STACK[0][:20])
    with pytest.raises(ValueError, match="frame size"):
        read_movie([tmp_path / "a1.npy", tmp_path / "a2.npy"])
    np.savez(tmp_path / "b1.npz", data=STACK[:2], channels=np.array(["Height", "Phase"]))
    np.savez(tmp_path / "b2.npz", data=STACK[:2], channels=np.array(["Height", "Amplitude"]))
    with pytest.raises(ValueError, match="channels"):
        read_movie(tmp_path / "b*.npz")


def test_select_channel_by_name_or_index_and_clear_errors(tmp_path):
    np.savez(tmp_path / "pfm.npz", data=STACK, channels=np.array(NAMES))
    assert select_movie(tmp_path / "pfm.npz", "amplitude").channel == "Amplitude"
    assert select_movie(tmp_path / "pfm.npz", "2").channel == "Phase"
    with pytest.raises(ValueError, match="0 Height, 1 Amplitude, 2 Phase"):
        select_movie(tmp_path / "pfm.npz", "friction")
    with pytest.raises(ValueError, match="3 channel"):
        select_movie(tmp_path / "pfm.npz", 5)


def test_natural_sort_key():
    assert sorted(["s10", "s2", "s1"], key=natural_key) == ["s1", "s2", "s10"]
