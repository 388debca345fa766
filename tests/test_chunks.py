"""Detection, maps and encoding over chunks of frames with dask give the in-memory results: the sites
table exactly, latents within 1e-5; on local threads, local processes and a 2-worker LocalCluster."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_rvae.chunks import ChunkSettings, atom_maps_chunked, detect_atoms_chunked, encode_sites_chunked
from napari_rvae.chunks.graph import frame_ranges, movie_blocks, read_block
from napari_rvae.detect import detect_atoms
from napari_rvae.io.sites import read_sites
from napari_rvae.synth import make_sample

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def movie():
    return make_sample("graphene-movie", seed=0, frames=6, size=128)["data"].astype(np.float32)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, as on a real cluster."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_class=distributed.Nanny) as local, distributed.Client(local) as client:
        yield client


def _same_table(got: pd.DataFrame, want: pd.DataFrame):
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_exact=True)


def test_frame_ranges_cover_the_movie_once():
    assert frame_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert frame_ranges(3, 8) == [(0, 3)]
    assert ChunkSettings().frames_per_chunk((1000, 1024, 1024)) == 4
    assert ChunkSettings().frames_per_chunk((1000, 256, 256)) == 64
    assert ChunkSettings().frames_per_chunk((5, 4096, 4096)) == 4  # never fewer than one segmenter batch


def test_memory_mapped_npy_is_read_by_file_reads(tmp_path, movie):
    np.save(tmp_path / "m.npy", movie)
    shape, blocks = movie_blocks(np.load(tmp_path / "m.npy", mmap_mode="r"), 4)
    assert shape == movie.shape and [b[:2] for b in blocks] == [(0, 4), (4, 6)]
    assert type(blocks[1][2]).__name__ == "NpyFrames"
    np.testing.assert_array_equal(read_block(blocks[1][2]), movie[4:6])


def test_peaks_on_two_worker_cluster_equal_in_memory(tmp_path, movie, cluster):
    want = detect_atoms(movie, method="peaks")
    np.save(tmp_path / "m.npy", movie)
    lazy = np.load(tmp_path / "m.npy", mmap_mode="r")
    folder = detect_atoms_chunked(lazy, tmp_path / "sites.parquet", settings=ChunkSettings(chunk=2), client=cluster,
                                  method="peaks")
    parts = sorted(p.name for p in folder.glob("part-*.parquet"))
    assert parts == ["part-000000.parquet", "part-000002.parquet", "part-000004.parquet"]
    got = read_sites(folder)
    from napari_rvae._napari_sites import get_sites_reader

    assert get_sites_reader(str(folder)) is not None  # napari opens the folder as one sites layer
    assert len(got) > 300 and got["class"].sum() > 0  # the dopants are classed over the whole movie
    _same_table(got, want)
    record = json.loads((folder / "_run.json").read_text())
    assert record["dask"]["scheduler"] == "distributed" and record["dask"]["workers"] == 2
    assert record["dask"]["chunk_frames"] == 2 and record["dask"]["threads_per_worker"] == [1]
    assert record["lattice"] == want.attrs["detection"]["lattice"]
    assert record["findings"] == want.attrs["detection"]["findings"]


def test_default_segmenter_on_cluster_and_threads_equal_in_memory(tmp_path, movie, cluster, one_torch_thread):
    want = detect_atoms(movie)  # method "auto": the shipped segmenter
    assert want.attrs["detection"]["method"] == "model"
    import dask.array as da

    lazy = da.from_array(movie, chunks=(3, 128, 128))  # what a lazy reader returns
    on_cluster = detect_atoms_chunked(lazy, tmp_path / "a.parquet", settings=ChunkSettings(chunk=4), client=cluster,
                                      save_map=tmp_path / "map.zarr")
    _same_table(read_sites(on_cluster), want)
    on_threads = detect_atoms_chunked(movie, tmp_path / "b.parquet",
                                      settings=ChunkSettings(chunk=4, scheduler="threads", workers=2))
    _same_table(read_sites(on_threads), want)
    assert json.loads((on_threads / "_run.json").read_text())["dask"]["scheduler"] == "threads"
    from napari_rvae.chunks import open_frames
    from napari_rvae.detect.find import atom_map

    maps = open_frames(tmp_path / "map.zarr")  # the maps the atoms were found in
    assert maps.shape == (6, 2, 128, 128)
    np.testing.assert_array_equal(np.asarray(maps), atom_map(movie).astype(np.float32))


def test_maps_in_chunks_equal_whole_movie(tmp_path, movie, one_torch_thread):
    from napari_rvae.detect.find import atom_map

    maps = atom_maps_chunked(movie, tmp_path / "maps.zarr", settings=ChunkSettings(chunk=4, scheduler="sync"))
    np.testing.assert_array_equal(np.asarray(maps), atom_map(movie).astype(np.float32))


def test_encoding_in_chunks_matches_in_memory(tmp_path, movie, cluster, one_torch_thread):
    from napari_rvae.vae.config import VAEConfig
    from napari_rvae.vae.files import load_model, save_model
    from napari_rvae.vae.latents import encode_sites
    from napari_rvae.vae.models import build_model

    sites = detect_atoms(movie, method="peaks")
    model = build_model(VAEConfig(arch="rvae", window=(12, 12), latent=2, encoder_widths=(32,),
                                  decoder_widths=(16, 16)), seed=3)
    lo, hi = float(movie.min()), float(movie.max())
    save_model(model, tmp_path / "model", normalisation={"mode": "global", "lo": lo, "hi": hi})
    model = load_model(tmp_path / "model")
    want, report = encode_sites(model, movie, sites)
    assert report.cut > 300 and np.isfinite(want["z0"]).sum() == report.cut
    # sites from a partitioned folder, the model from its folder, on the cluster
    folder = detect_atoms_chunked(movie, tmp_path / "sites.parquet", method="peaks",
                                  settings=ChunkSettings(chunk=2, scheduler="sync"))
    out = encode_sites_chunked(str(tmp_path / "model"), movie, folder, tmp_path / "latents.parquet",
                               settings=ChunkSettings(chunk=4), client=cluster)
    got = read_sites(out)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    latents = [c for c in want.columns if c not in sites.columns]
    _same_table(got.drop(columns=latents), want.drop(columns=latents))
    np.testing.assert_allclose(got[latents].to_numpy(), want[latents].to_numpy(), atol=1e-5, rtol=0)
    assert json.loads((out / "_run.json").read_text())["windows"]["cut"] == report.cut
    # a table in memory, local processes
    again = encode_sites_chunked(model, movie, sites, tmp_path / "l2.parquet",
                                 settings=ChunkSettings(chunk=3, scheduler="processes", workers=2))
    np.testing.assert_allclose(read_sites(again)[latents].to_numpy(), want[latents].to_numpy(), atol=1e-5, rtol=0)


def test_bad_settings_and_unreachable_scheduler_say_what_to_do(tmp_path, movie):
    with pytest.raises(ValueError, match="chunk"):
        ChunkSettings(chunk=0)
    with pytest.raises(ValueError, match="scheduler"):
        ChunkSettings(scheduler="gpu")
    with pytest.raises(ValueError, match="dask scheduler at 127.0.0.1:9"):
        detect_atoms_chunked(movie, tmp_path / "s.parquet", method="peaks",
                             settings=ChunkSettings(address="127.0.0.1:9"))


def test_the_client_of_a_chunked_run_never_loads_torch(tmp_path):
    """Planning a detection with the shipped atom finder (its rescale and arithmetic) reads the model's
    record, not its weights: the client of a chunked run stays free of torch (~250 MB), the workers load it."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from napari_rvae.chunks import ChunkSettings, detect_atoms_chunked\n"
            "from napari_rvae.synth import make_sample\n"
            "movie = make_sample('graphene-movie', seed=0, frames=4, size=128)['data'].astype(np.float32)\n"
            f"detect_atoms_chunked(movie, {str(tmp_path / 's.parquet')!r}, settings=ChunkSettings(chunk=4, "
            "scheduler='processes', workers=1), method='model')\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert len(list((tmp_path / "s.parquet").glob("part-*.parquet"))) == 1
