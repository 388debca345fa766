"""``detect`` / ``encode`` / ``analyze`` with ``--chunk`` and ``--dask-address``: the in-memory command's
table, as a folder of Parquet partitions with the run record; clear one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_rvae.cli import main
from napari_rvae.io.sites import read_sites
from napari_rvae.synth import make_sample

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def movie_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunks_cli")
    np.save(folder / "movie.npy", make_sample("graphene-movie", seed=0, frames=5, size=128)["data"].astype(np.float32))
    return folder / "movie.npy"


def test_detect_in_chunks_writes_the_in_memory_table(tmp_path, movie_file, capsys):
    assert main(["detect", str(movie_file), "-o", str(tmp_path / "whole.parquet"), "--method", "peaks"]) == 0
    args = ["detect", str(movie_file), "-o", str(tmp_path / "sites.parquet"), "--method", "peaks", "--chunk", "2",
            "--dask-scheduler", "threads", "--workers", "2"]
    assert main(args) == 0
    assert "2 frames per chunk on 2 threads worker(s)" in capsys.readouterr().out
    folder = tmp_path / "sites.parquet"
    assert folder.is_dir() and len(list(folder.glob("part-*.parquet"))) == 3
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("part-")) == ["_run.json"]
    pd.testing.assert_frame_equal(read_sites(folder), read_sites(tmp_path / "whole.parquet"), check_exact=True)
    record = json.loads((folder / "_run.json").read_text())
    assert record["movie"] == [str(movie_file)] and record["method"] == "peaks"
    assert record["dask"] | {"seconds": 0} == {"chunk_frames": 2, "scheduler": "threads", "address": None,
                                               "workers": 2, "threads_per_worker": 1, "seconds": 0}
    assert main(args) == 0  # a partitioned table is replaced like a file


def test_encode_in_chunks_reads_partitions_and_matches_in_memory(tmp_path, movie_file, capsys):
    assert main(["detect", str(movie_file), "-o", str(tmp_path / "sites.parquet"), "--method", "peaks",
                 "--chunk", "4", "--dask-scheduler", "sync"]) == 0
    model = tmp_path / "model"
    assert main(["train", str(movie_file), "--sites", str(tmp_path / "sites.parquet"), "--window", "12",
                 "-o", str(model), "--epochs", "1", "--threads", "1", "--encoder-widths", "32",
                 "--decoder-widths", "16,16", "--windows-from", "image"]) == 0
    assert main(["encode", str(model), str(movie_file), "--sites", str(tmp_path / "sites.parquet"),
                 "-o", str(tmp_path / "whole.parquet")]) == 0
    assert main(["encode", str(model), str(movie_file), "--sites", str(tmp_path / "sites.parquet"),
                 "-o", str(tmp_path / "latents.parquet"), "--chunk", "2", "--dask-scheduler", "threads"]) == 0
    want, got = read_sites(tmp_path / "whole.parquet"), read_sites(tmp_path / "latents.parquet")
    assert list(got.columns) == list(want.columns) and len(got) == len(want) > 100
    latents = ["angle", "dx", "dy", "z0", "z1"]
    np.testing.assert_allclose(got[latents].to_numpy(), want[latents].to_numpy(), atol=1e-5, rtol=0)
    assert "windows:" in capsys.readouterr().out


def test_tracks_and_rings_in_chunks_give_the_in_memory_rows(tmp_path, movie_file):
    """``--tracks --rings`` on a table detected in chunks: the same rows as in memory (tracks linked
    across the chunks' borders, numbered alike; rings and hollow sites per frame)."""
    common = ["--method", "peaks", "--tracks", "--track-class", "0", "1", "--rings"]
    assert main(["detect", str(movie_file), "-o", str(tmp_path / "whole.parquet")] + common) == 0
    assert main(["detect", str(movie_file), "-o", str(tmp_path / "sites.parquet"), "--chunk", "2",
                 "--dask-scheduler", "sync"] + common) == 0
    want, got = read_sites(tmp_path / "whole.parquet"), read_sites(tmp_path / "sites.parquet")
    assert sorted(got.columns) == sorted(want.columns)
    order = ["frame", "kind", "y", "x"]
    want = want.sort_values(order, kind="stable").reset_index(drop=True)
    got = got[list(want.columns)].sort_values(order, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    tracks = want.loc[want["track_id"] >= 0, "track_id"]
    assert tracks.nunique() > 30 and (tracks.groupby(tracks).size() == 5).mean() > 0.6  # across all 5 frames
    assert (want["kind"] == "hollow").sum() > 40 and (want.loc[want["kind"] == "atom", "n6"] > 0).mean() > 0.5
    record = json.loads((tmp_path / "sites.parquet" / "_run.json").read_text())
    assert record["tracks"]["count"] == tracks.nunique() and record["rings"]["count"] == (want["kind"] == "hollow").sum()


@pytest.mark.parametrize("extra, message", [
    (["-o", "{tmp}/s.csv", "--chunk", "2"], "folder of Parquet partitions; give a name ending in .parquet"),
    (["-o", "{tmp}/s.parquet", "--chunk", "2", "--perovskite"], "--perovskite needs the whole movie"),
    (["-o", "{tmp}/s.parquet", "--dask-address", "127.0.0.1:9"], "cannot reach the dask scheduler at 127.0.0.1:9"),
    (["-o", "{tmp}/s.parquet", "--chunk", "0"], "chunk: expected a number of frames >= 1"),
])
def test_bad_chunk_options_give_one_line(tmp_path, movie_file, capsys, extra, message):
    args = ["detect", str(movie_file), "--method", "peaks"] + [a.format(tmp=tmp_path) for a in extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_analyze_detects_in_chunks_and_records_the_graph(tmp_path, movie_file, capsys):
    code = main(["analyze", str(movie_file), "-o", str(tmp_path / "project"), "--detect-method", "peaks",
                 "--windows-from", "image", "--window", "16", "--epochs", "2", "--clusters", "2",
                 "--chunk", "4", "--dask-scheduler", "threads", "--workers", "2"])
    assert code == 0
    assert "detect in chunks:" in capsys.readouterr().out
    run = json.loads((tmp_path / "project" / "run.json").read_text())
    assert run["dask"]["chunk_frames"] == 4 and run["dask"]["workers"] == 2
    sites = pd.read_csv(tmp_path / "project" / "sites.csv")
    assert len(sites) > 300 and {"z0", "angle"} <= set(sites.columns)
    assert not any(p.name.startswith(".napari-rvae-chunks") for p in tmp_path.iterdir())  # temporary folder gone
