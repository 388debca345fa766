"""Lazy movies: files over the lazy threshold open as dask arrays chunked per frame, with the values
of the in-memory read; value checks run block by block; zarr / OME-Zarr round trips.

The threshold is lowered with ``NAPARI_RVAE_LAZY_BYTES`` so small files take the lazy path. The
truth is what was written (by the libraries that own the formats).
"""

import pickle
import sys

import numpy as np
import pytest

from napari_rvae.io.lazy import LAZY_ENV
from napari_rvae.io.movie import read_movie

da = pytest.importorskip("dask.array")

RNG = np.random.default_rng(20)
MOVIE = RNG.random((6, 24, 40)).astype(np.float32)
SMALL, HUGE = "1000", str(1 << 40)


def _read(path, monkeypatch, threshold):
    monkeypatch.setenv(LAZY_ENV, threshold)
    return read_movie(path)


def _lazy_and_eager(path, monkeypatch):
    lazy = _read(path, monkeypatch, SMALL)
    eager = _read(path, monkeypatch, HUGE)
    assert len(lazy) == len(eager)
    for m, e in zip(lazy, eager):
        assert m.lazy and isinstance(m.data, da.Array), path
        assert not e.lazy
        assert m.data.dtype == np.float32 and m.data.shape == e.data.shape
        assert m.data.chunksize[0] == 1 and m.data.chunksize[1:] == m.data.shape[1:]  # one frame per chunk
        np.testing.assert_array_equal(np.asarray(m.data), e.data)
        assert (m.name, m.scale, m.units, m.channel) == (e.name, e.scale, e.units, e.channel)
    return lazy, eager


def _write_npy(path):
    np.save(path, MOVIE)


def _write_tif(path):
    import tifffile

    tifffile.imwrite(path, MOVIE, imagej=True, resolution=(10, 10), metadata={"unit": "nm", "axes": "TYX"})


def _write_tif_zlib(path):
    import tifffile

    tifffile.imwrite(path, (MOVIE * 4000).astype(np.uint16), compression="zlib", tile=(16, 16))


def _write_h5(path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("scan/data", data=MOVIE, chunks=(2, 8, 8), compression="gzip")
        d.attrs["pixel_size"], d.attrs["units"] = [0.2, 0.2], "nm"


def _write_h5_channels(path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f["a"], f["b"] = MOVIE, MOVIE[::-1] * 2


def _write_nsid(path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, q in enumerate(["Height", "Phase"]):
            g = f.create_group(f"Measurement_000/Channel_{k}")
            d = g.create_dataset(f"Channel_{k}", data=np.swapaxes(MOVIE[:, :, : 24] * (k + 1), 1, 2))  # stored (t, x, y)
            d.attrs["quantity"], d.attrs["data_type"], d.attrs["units"] = q, "IMAGE_STACK", "m"
            d.attrs["DIMENSION_LABELS"] = np.array(["t", "x", "y"], dtype="S")
            for i, name in enumerate(["t", "x", "y"]):
                dim = g.create_dataset(name, data=np.linspace(0, 5e-9 * d.shape[i], d.shape[i], endpoint=False))
                dim.attrs["units"] = "s" if name == "t" else "m"
                dim.make_scale(name)
                d.dims[i].attach_scale(dim)


def _rsciio(module):
    def write(path):
        writer = pytest.importorskip(f"rsciio.{module}").file_writer
        axes = [{"name": n, "size": s, "scale": sc, "units": u, "navigate": n == "t", "offset": 0}
                for n, s, sc, u in zip("tyx", MOVIE.shape, (0.5, 0.1, 0.1), ("s", "nm", "nm"))]
        writer(str(path), {"data": MOVIE, "axes": axes, "metadata": {"General": {"title": "haadf"}, "Signal": {}},
                           "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
                           "learning_results": {}, "models": {}, "package_info": {"name": "hyperspy", "version": "2.1"}})
    return write


def _write_zarr_array(path):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(path), mode="w", shape=MOVIE.shape, chunks=(3, 12, 40), dtype="f4")
    z[:] = MOVIE


def _write_ome_zarr(path):
    pytest.importorskip("zarr")
    from napari_rvae.io.zarr_store import write_movie

    write_movie(path, MOVIE, scale=(0.5, 0.1, 0.1), units=("s", "nm", "nm"))


def _write_channels_npy(path):
    np.save(path, np.stack([MOVIE, 1 - MOVIE, 2 * MOVIE], axis=-1))  # (T, Y, X, 3) float: three channels


def _hostile_writer(name):
    def write(path):
        if name == "ser":
            pytest.importorskip("rsciio.tia")
        import _hostile

        getattr(_hostile, f"write_{name}")(path, MOVIE)
    return write


WRITERS = {"movie.npy": _write_npy, "channels.npy": _write_channels_npy, "stack.mrc": _hostile_writer("mrc"),
           "series.ser": _hostile_writer("ser"), "movie.tif": _write_tif, "zlib.tif": _write_tif_zlib, "plain.h5": _write_h5,
           "two.h5": _write_h5_channels, "nsid.h5": _write_nsid, "movie.hspy": _rsciio("hspy"),
           "movie.emd": _rsciio("emd"), "array.zarr": _write_zarr_array, "ome.zarr": _write_ome_zarr}


@pytest.mark.parametrize("name", list(WRITERS))
def test_large_files_open_as_dask_with_the_values_of_the_in_memory_read(tmp_path, monkeypatch, name):
    path = tmp_path / name
    WRITERS[name](path)
    lazy, eager = _lazy_and_eager(path, monkeypatch)
    if name not in ("zlib.tif", "nsid.h5"):  # (16-bit integers; a square crop, checked below)
        np.testing.assert_allclose(eager[0].data, MOVIE, rtol=1e-6)
    # the graph carries no pixels and no open file: it runs in worker processes too
    blob = pickle.dumps(lazy[0].data)
    assert len(blob) < 20_000
    np.testing.assert_array_equal(pickle.loads(blob)[2:4].compute(), np.asarray(lazy[0].data[2:4]))


def test_calibration_survives_the_lazy_path(tmp_path, monkeypatch):
    _write_nsid(tmp_path / "nsid.h5")
    (height, phase) = _read(tmp_path / "nsid.h5", monkeypatch, SMALL)
    assert [height.channel, phase.channel] == ["Height", "Phase"]
    assert height.data.shape == (6, 24, 24) and height.units[1] == "nm" and height.scale[1] == pytest.approx(5.0)
    np.testing.assert_allclose(np.asarray(phase.data), MOVIE[:, :, :24] * 2)  # (t, x, y) stored: rows are y again


def test_sequence_of_files_is_one_lazy_movie_read_per_file(tmp_path, monkeypatch):
    for t in range(len(MOVIE)):
        np.save(tmp_path / f"scan{t + 1}.npy", MOVIE[t])
    (lazy,), (eager,) = _lazy_and_eager(tmp_path, monkeypatch)
    np.testing.assert_array_equal(eager.data, MOVIE)
    assert lazy.metadata["files"] == eager.metadata["files"]


def test_registered_sequence_gives_the_same_shifts_and_frames_lazily(tmp_path, monkeypatch):
    from scipy import ndimage

    base = ndimage.gaussian_filter(RNG.random((64, 64)), 2)
    for t in range(4):
        np.save(tmp_path / f"s{t}.npy", ndimage.shift(base, (0.5 * t, -1.0 * t), mode="wrap").astype(np.float32))
    monkeypatch.setenv(LAZY_ENV, HUGE)
    (eager,) = read_movie(tmp_path, register=True)
    monkeypatch.setenv(LAZY_ENV, SMALL)
    (lazy,) = read_movie(tmp_path, register=True)
    assert lazy.lazy and lazy.metadata["drift_shifts"] == eager.metadata["drift_shifts"]
    np.testing.assert_array_equal(np.asarray(lazy.data), eager.data)
    assert np.abs(np.array(eager.metadata["drift_shifts"][3]) - (-1.5, 3.0)).max() < 0.1  # truth: 3 steps of (0.5, -1)


@pytest.mark.parametrize("kind", ["grey", "false colour", "photo"])
def test_rgb_renders_convert_lazily_as_in_memory(tmp_path, monkeypatch, kind):
    tifffile = pytest.importorskip("tifffile")
    truth = RNG.random((3, 32, 32))
    if kind == "grey":
        rgb = np.repeat(truth[..., None], 3, -1)
    elif kind == "false colour":  # matplotlib's "hot"
        rgb = np.stack([np.clip(truth / 0.375, 0, 1), np.clip((truth - 0.375) / 0.375, 0, 1),
                        np.clip((truth - 0.75) / 0.25, 0, 1)], -1)
    else:
        rgb = RNG.random((3, 32, 32, 3))
    tifffile.imwrite(tmp_path / "render.tif", (rgb * 255).round().astype(np.uint8), photometric="rgb")
    (lazy,), (eager,) = _lazy_and_eager(tmp_path / "render.tif", monkeypatch)
    assert lazy.metadata["notes"] == eager.metadata["notes"]


def test_lazy_threshold_is_read_when_a_file_is_opened(tmp_path, monkeypatch):
    import napari_rvae.io.movie as movie

    np.save(tmp_path / "m.npy", MOVIE)
    monkeypatch.delenv(LAZY_ENV, raising=False)
    assert not read_movie(tmp_path / "m.npy")[0].lazy
    monkeypatch.setattr(movie, "LAZY_BYTES", 1000)
    assert read_movie(tmp_path / "m.npy")[0].lazy
    monkeypatch.setenv(LAZY_ENV, "lots")
    with pytest.raises(ValueError, match=LAZY_ENV):
        read_movie(tmp_path / "m.npy")


# ------------------------------------------------------------------ value checks
def test_nan_in_one_chunk_gives_the_pipelines_message(tmp_path, monkeypatch):
    from napari_rvae.io.validate import check_finite, value_summary
    from napari_rvae.pipeline import _check_movie

    bad = MOVIE.copy()
    bad[4, 3, 5] = np.nan
    bad[1, 0, 0] = -np.inf
    bad[2] = 0.25  # a constant frame
    np.save(tmp_path / "bad.npy", bad)
    (m,) = _read(tmp_path / "bad.npy", monkeypatch, SMALL)
    frame_bytes = 24 * 40 * 4
    with pytest.raises(ValueError) as lazy_error:
        check_finite(m.data, "movie", block_bytes=frame_bytes)
    with pytest.raises(ValueError) as eager_error:
        _check_movie(bad)
    assert str(lazy_error.value) == str(eager_error.value) == "movie: contains NaN or infinite pixels; crop or fill them first"
    summary = value_summary(m.data, block_bytes=frame_bytes)
    assert (summary.nan, summary.neginf, summary.posinf) == (1, 1, 0)
    finite = bad[np.isfinite(bad)]
    assert (summary.low, summary.high) == (float(finite.min()), float(finite.max()))
    assert summary.unusable == {2: "the frame is constant"}
    check_finite(MOVIE, block_bytes=frame_bytes)  # a clean movie passes


def test_values_are_checked_one_block_at_a_time():
    from napari_rvae.io.validate import frame_blocks

    seen = []

    def record(block, block_info=None):
        seen.append(block_info[0]["chunk-location"][0])
        return block

    movie = da.from_array(MOVIE, chunks=(1, 24, 40)).map_blocks(record, dtype=np.float32)
    sizes = []
    for start, block in frame_blocks(movie, block_bytes=2 * 24 * 40 * 4):
        sizes.append(len(block))
    assert sizes == [2, 2, 2] and sorted(seen) == list(range(6))


def test_reading_and_checking_a_movie_bigger_than_the_memory_cap(tmp_path):
    """A 400 MB movie is opened lazily, checked and described in a child whose address space may grow by
    only 300 MB beyond what it holds after importing the readers (tests/_memcap.py)."""
    import json
    import subprocess
    from pathlib import Path

    frames, side = 100, 1000
    path = tmp_path / "big.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(frames, side, side))
    for t in range(frames):
        array[t] = t
    array[57, 10, 10] = np.nan
    del array
    script = Path(__file__).with_name("_memcap.py")
    env = {**__import__("os").environ, LAZY_ENV: str(1 << 20)}
    done = subprocess.run([sys.executable, str(script), "--check-values", "300", "120", str(path)], capture_output=True, text=True,
                          timeout=600, env=env)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1, done.stderr[-3000:]
    assert rows[0]["outcome"] == "clean", rows  # the NaN found, one line
    assert rows[0]["message"] == "movie: contains NaN or infinite pixels; crop or fill them first"
    assert rows[0]["peak_mb"] < 300


# ------------------------------------------------------------------ zarr stores
def test_zarr_round_trip_keeps_movie_and_calibration(tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    from napari_rvae.io.zarr_store import write_movie

    np.savez(tmp_path / "s.npz", data=MOVIE, scale=np.array([0.25, 0.05, 0.05]), units=np.array(["s", "nm", "nm"]))
    (movie,) = read_movie(tmp_path / "s.npz")
    write_movie(tmp_path / "s.zarr", movie)
    for threshold in (HUGE, SMALL):
        (back,) = _read(tmp_path / "s.zarr", monkeypatch, threshold)
        assert back.lazy == (threshold == SMALL)
        np.testing.assert_array_equal(np.asarray(back.data), MOVIE)
        assert back.scale == pytest.approx(movie.scale) and back.units == movie.units == ("s", "nm", "nm")
        assert back.name == "s" and back.metadata["format"] == "zarr (OME-Zarr)"


def test_ome_zarr_metadata_follows_ngff(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_rvae.io.zarr_store import write_movie

    write_movie(tmp_path / "m.zarr", da.from_array(MOVIE, chunks=(3, 24, 40)), scale=(1.0, 0.02, 0.02),
                units=("", "µm", "µm"), name="graphene")
    group = zarr.open_group(str(tmp_path / "m.zarr"), mode="r")
    assert (tmp_path / "m.zarr" / ".zattrs").is_file()  # NGFF 0.4: zarr format 2
    (ms,) = group.attrs["multiscales"]
    assert ms["version"] == "0.4" and ms["name"] == "graphene"
    assert ms["axes"] == [{"name": "t", "type": "time"}, {"name": "y", "type": "space", "unit": "micrometer"},
                          {"name": "x", "type": "space", "unit": "micrometer"}]
    (level,) = ms["datasets"]
    assert level["path"] == "0"
    assert level["coordinateTransformations"] == [{"type": "scale", "scale": [1.0, 0.02, 0.02]}]
    assert group["0"].chunks == (1, 24, 40)
    np.testing.assert_array_equal(group["0"][...], MOVIE)


def test_ome_zarr_05_with_channels_reads_as_named_channels(tmp_path):
    zarr = pytest.importorskip("zarr")
    stack = RNG.random((2, 3, 1, 16, 20)).astype(np.float32)  # t, c, z, y, x
    group = zarr.open_group(str(tmp_path / "pfm.zarr"), mode="w", zarr_format=3)
    group.create_array("s0", shape=stack.shape, chunks=(1, 1, 1, 16, 20), dtype="f4")[...] = stack
    axes = [{"name": "t", "type": "time", "unit": "second"}, {"name": "c", "type": "channel"},
            {"name": "z", "type": "space", "unit": "nanometer"}, {"name": "y", "type": "space", "unit": "nanometer"},
            {"name": "x", "type": "space", "unit": "nanometer"}]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 1.0, 0.4, 0.4]}]}]}],
        "omero": {"channels": [{"label": "Height"}, {"label": "Amplitude"}, {"label": "Phase"}]}}
    movies = read_movie(tmp_path / "pfm.zarr")
    assert [m.channel for m in movies] == ["Height", "Amplitude", "Phase"]
    assert movies[2].data.shape == (2, 16, 20) and movies[2].scale == pytest.approx((2.0, 0.4, 0.4))
    assert movies[2].units == ("s", "nm", "nm")
    np.testing.assert_array_equal(movies[2].data, stack[:, 2, 0])


def test_per_frame_results_go_beside_the_movie(tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    from napari_rvae.io.zarr_store import read_frames, write_frames, write_movie

    store = tmp_path / "run.zarr"
    write_movie(store, MOVIE)
    maps = np.stack([1 - MOVIE, MOVIE], axis=1)  # (T, C, Y, X) probabilities
    labels = (MOVIE > 0.5).astype(np.uint8)
    write_frames(store, "probability", da.from_array(maps, chunks=(2, 2, 24, 40)))
    write_frames(store, "labels", labels)
    np.testing.assert_array_equal(read_frames(store, "probability"), maps)
    np.testing.assert_array_equal(read_frames(store, "labels"), labels)
    lazy = read_frames(store, "probability", lazy=True)
    assert isinstance(lazy, da.Array) and lazy.chunksize == (1, 2, 24, 40)
    (movie,) = read_movie(store)  # the movie is still what the store opens as
    np.testing.assert_array_equal(movie.data, MOVIE)
    write_frames(tmp_path / "alone.zarr", "labels", labels)  # a new store for results alone
    np.testing.assert_array_equal(read_frames(tmp_path / "alone.zarr", "labels"), labels)
    with pytest.raises(ValueError, match="name"):
        write_frames(store, "../escape", labels)


def test_zarr_writes_are_atomic(tmp_path):
    pytest.importorskip("zarr")
    from napari_rvae.io.zarr_store import write_frames, write_movie

    store = tmp_path / "m.zarr"
    write_movie(store, MOVIE)

    def fail(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 4:
            raise OSError("disk full")
        return block

    broken = da.from_array(MOVIE * 2, chunks=(1, 24, 40)).map_blocks(fail, dtype=np.float32)
    with pytest.raises(OSError, match="disk full"):
        write_movie(store, broken)
    with pytest.raises(OSError, match="disk full"):
        write_frames(store, "probability", broken)
    np.testing.assert_array_equal(read_movie(store)[0].data, MOVIE)  # the previous store, whole
    assert sorted(p.name for p in store.iterdir()) == [".zattrs", ".zgroup", "0"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.zarr"]  # no staging folders left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        write_movie(tmp_path / "other", MOVIE)


def test_info_describes_a_zarr_store(tmp_path, capsys):
    pytest.importorskip("zarr")
    from napari_rvae.cli import main
    from napari_rvae.io.zarr_store import write_movie

    write_movie(tmp_path / "m.zarr", MOVIE, scale=(0.5, 0.1, 0.1), units=("s", "nm", "nm"))
    assert main(["info", str(tmp_path / "m.zarr")]) == 0
    out = capsys.readouterr().out
    assert "zarr (OME-Zarr)" in out and "(6, 24, 40)" in out and "0.1 × 0.1 nm" in out and "frame interval: 0.5 s" in out


REAL = __import__("pathlib").Path(__file__).resolve().parents[1] / ".." / "shared" / "real"


@pytest.mark.skipif(not REAL.is_dir(), reason="real data folder ../shared/real is absent")
@pytest.mark.parametrize("name", ["pfm/PZT_thick0004.h5", "stem/DMReader_Image_SI-Survey.dm3", "stem/re05.tiff"])
def test_real_files_read_lazily_as_in_memory(monkeypatch, name):
    """Real instrument files (pyNSID with 8 channels stored (x, y), DM3, an RGB false-colour render)."""
    lazy, _ = _lazy_and_eager(REAL / name, monkeypatch)
    assert len(pickle.dumps(lazy[0].data)) < 400_000  # no pixels in the graph (an RGB render carries its colour table)


def test_detect_on_a_lazy_movie_finds_the_same_sites(tmp_path, monkeypatch):
    import pandas as pd

    from napari_rvae.cli import main
    from napari_rvae.synth import make_sample

    sample = make_sample("graphene-movie", seed=2)
    np.save(tmp_path / "g.npy", np.asarray(sample["data"], dtype=np.float32)[:2])
    tables = []
    for threshold in (HUGE, SMALL):
        monkeypatch.setenv(LAZY_ENV, threshold)
        out = tmp_path / f"sites-{threshold}.csv"
        assert main(["detect", str(tmp_path / "g.npy"), "-o", str(out)]) == 0
        tables.append(pd.read_csv(out))
    assert len(tables[0]) > 50
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_a_zarr_store_declaring_more_than_it_holds_is_refused_before_reading(tmp_path):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "sparse.zarr"), mode="w", shape=(4000, 4000, 4000), chunks=(1, 4000, 4000),
                        dtype="f4")
    z[0, :2, :2] = 1.0  # one chunk written: 256 GB declared in a few kB
    with pytest.raises(ValueError, match="expansion") as info:
        read_movie(tmp_path / "sparse.zarr")
    assert "\n" not in str(info.value)
