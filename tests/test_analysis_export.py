"""Exports, project folders and headless PNG figures round-trip."""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from napari_rvae.analysis import (
    export_sites,
    load_npz,
    load_project,
    project_layer_data,
    run_record,
    save_npz,
    save_project,
)
from napari_rvae.analysis import plots
from napari_rvae.io.files import save_model_files
from napari_rvae.io.sites import make_sites, read_sites


def sites_with_latents(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return make_sites(rng.integers(0, 5, n), rng.uniform(0, 64, n), rng.uniform(0, 64, n),
                      kind="atom", cls=rng.integers(0, 2, n), intensity=rng.random(n),
                      angle=rng.uniform(-np.pi, np.pi, n), dx=rng.normal(size=n), dy=rng.normal(size=n),
                      z0=rng.normal(size=n), z1=rng.normal(size=n), cluster=rng.integers(-1, 4, n))


def test_sites_csv_round_trip(tmp_path):
    sites = sites_with_latents()
    export_sites(sites, tmp_path / "out" / "sites.csv")
    back = read_sites(tmp_path / "out" / "sites.csv")
    pd.testing.assert_frame_equal(back, sites, check_exact=False, rtol=1e-12)


def test_parquet_round_trip_or_clear_error(tmp_path):
    sites = sites_with_latents()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="pyarrow"):
            export_sites(sites, tmp_path / "sites.parquet")
        return
    export_sites(sites, tmp_path / "sites.parquet")
    pd.testing.assert_frame_equal(read_sites(tmp_path / "sites.parquet"), sites)


def test_npz_round_trip_and_no_pickle(tmp_path):
    arrays = {"density": np.random.default_rng(0).random((4, 8)), "frames": np.arange(4), "names": np.array(["a", "b"])}
    save_npz(tmp_path / "r.npz", arrays)
    back = load_npz(tmp_path / "r.npz")
    assert set(back) == set(arrays)
    for k in arrays:
        assert np.array_equal(back[k], arrays[k])
    with pytest.raises(ValueError, match="object"):
        save_npz(tmp_path / "bad.npz", {"x": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "hostile.npz", x=np.array([{"a": 1}], dtype=object))  # a pickled payload
    with pytest.raises(ValueError, match="pickle"):
        load_npz(tmp_path / "hostile.npz")
    with pytest.raises(ValueError, match="npz"):
        save_npz(tmp_path / "r.txt", arrays)


def test_run_record_is_json(tmp_path):
    record = run_record({"n_clusters": 5, "bandwidth": 0.075}, seeds={"gmm": 0}, timings={"cluster": 0.5})
    assert record["versions"]["numpy"] == np.__version__ and record["parameters"]["n_clusters"] == 5
    save_project(tmp_path / "p", record=record)
    assert json.loads((tmp_path / "p" / "run.json").read_text())["seeds"] == {"gmm": 0}


def test_project_round_trip_survives_moving_the_folder(tmp_path):
    import torch

    base = tmp_path / "study"
    movie = base / "data" / "movie.npy"
    movie.parent.mkdir(parents=True)
    np.save(movie, np.zeros((3, 16, 16), np.float32))
    model = save_model_files(tmp_path / "trained", {"w": torch.ones(3)}, {"kind": "vae", "latent": 2})
    fig = plots.plot_lines(tmp_path / "curve.png", np.arange(5), {"loading": np.arange(5.0)})
    sites = sites_with_latents()
    windows = np.random.default_rng(1).random((10, 8, 8)).astype(np.float32)
    labels = np.zeros((3, 16, 16), np.int32)
    labels[:, 4:8, 4:8] = 2
    save_project(
        base / "project", sites=sites, movie_path=movie, movie_info={"shape": [3, 16, 16], "units": ["", "nm", "nm"]},
        windows=windows, window_index=np.arange(10, 20), results={"loadings": np.ones((3, 2))},
        layers={"domains": (labels, "labels")}, models={"rvae": model}, figures={"hysteresis": fig},
        record=run_record({"a": 1}),
    )
    shutil.move(base, tmp_path / "moved")  # the whole study moves: relative movie path still works
    project = load_project(tmp_path / "moved" / "project")
    pd.testing.assert_frame_equal(project.sites, sites, check_exact=False, rtol=1e-12)
    assert project.movie_path == (tmp_path / "moved" / "data" / "movie.npy").resolve()
    assert project.movie["shape"] == [3, 16, 16]
    assert np.array_equal(project.windows, windows) and list(project.window_index) == list(range(10, 20))
    assert np.array_equal(project.results["loadings"], np.ones((3, 2)))
    assert project.layers["domains"][1] == "labels" and np.array_equal(project.layers["domains"][0], labels)
    from napari_rvae.io.files import load_model_files

    tensors, config = load_model_files(project.models["rvae"], kind="vae")
    assert torch.equal(tensors["w"], torch.ones(3)) and config["latent"] == 2
    assert project.figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert project.record["parameters"] == {"a": 1}
    layers = {kwargs["name"]: (data, kwargs, kind) for data, kwargs, kind in project_layer_data(project)}
    assert layers["domains"][2] == "labels" and np.array_equal(layers["domains"][0], labels)
    points, kwargs, kind = layers["sites"]
    assert kind == "points" and points.shape == (len(sites), 3)
    assert np.allclose(points, sites[["frame", "y", "x"]].to_numpy())
    assert list(kwargs["features"]["z1"]) == pytest.approx(list(sites["z1"]))


def test_load_project_rejects_other_folders(tmp_path):
    with pytest.raises(ValueError, match="project"):
        load_project(tmp_path)
    (tmp_path / "project.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="project"):
        load_project(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        save_project(tmp_path / "p", layers={"x": (np.zeros(3), "volume")})


def _read_png(path):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def test_plots_are_real_pngs(tmp_path):
    x = np.linspace(-1, 1, 50)
    lines = _read_png(plots.plot_lines(tmp_path / "l.png", x, {"up": x, "down": x**2}, title="t", xlabel="bias", ylabel="loading"))
    assert lines.shape == (480, 640, 3)
    assert ((lines == plots.PALETTE[0]).all(-1)).sum() > 100  # the first curve is drawn
    assert ((lines == plots.PALETTE[1]).all(-1)).sum() > 100
    image = np.outer(np.arange(20), np.ones(30))
    heat = _read_png(plots.plot_image(tmp_path / "h.png", image, extent=(0, 3, 0, 20), xlabel="z0", ylabel="frame"))
    left, top, right, bottom = plots.MARGIN[0], plots.MARGIN[2], 640 - plots.MARGIN[1], 480 - plots.MARGIN[3]
    column = heat[top + 2:bottom - 2, (left + right) // 2]
    # row 0 (lowest value, dark) at the bottom, last row (bright) at the top
    assert column[-1].sum() < column[0].sum()
    scatter = _read_png(plots.plot_scatter(tmp_path / "s.png", x, x, colour=np.arange(50) % 3, labels=True))
    assert ((scatter == plots.PALETTE[2]).all(-1)).sum() > 10
    tiles = _read_png(plots.plot_windows(tmp_path / "w.png", np.random.default_rng(0).normal(size=(5, 8, 8))))
    assert tiles.shape[0] > 32 and tiles.shape[1] > 32
    with pytest.raises(ValueError, match="png"):
        plots.plot_lines(tmp_path / "l.jpg", x, {"a": x})
    assert np.allclose(plots.nice_ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    wheel = plots.colormap(np.array([-np.pi, np.pi]), "cyclic")
    assert np.array_equal(wheel[0], wheel[1])  # the angle colour wheel closes


def test_plots_work_with_a_bitmap_font(tmp_path, monkeypatch):
    from PIL import ImageFont

    monkeypatch.setattr(plots, "_font", ImageFont.load_default_imagefont)  # Pillow without FreeType
    x = np.arange(10.0)
    path = plots.plot_lines(tmp_path / "b.png", x, {"a": x}, title="title", xlabel="x", ylabel="y")
    assert _read_png(path).shape == (480, 640, 3)


def test_scatter_invert_y_puts_small_y_on_top(tmp_path):
    low, high = plots.colormap(np.array([0.0, 1.0]))  # continuous colours: no legend drawn
    for invert in (False, True):
        img = _read_png(plots.plot_scatter(tmp_path / "m.png", [0, 1], [0, 1], [0.0, 1.0], point=4, invert_y=invert))
        rows_small_y = np.nonzero((img == low).all(-1))[0]
        rows_large_y = np.nonzero((img == high).all(-1))[0]
        assert len(rows_small_y) > 10 and len(rows_large_y) > 10
        assert (rows_small_y.mean() < rows_large_y.mean()) == invert
