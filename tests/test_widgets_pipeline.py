"""The pipeline (core, no Qt) and its dock / the demo, on a small synthetic lattice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari_rvae.vae")
pytest.importorskip("napari_rvae.detect")

from napari_rvae.pipeline import PipelineSettings, iter_pipeline, run_pipeline, write_outputs  # noqa: E402
from napari_rvae.synth.render import render_spots  # noqa: E402

SIZE, PITCH = 80, 10


def _lattice_movie(frames=2, seed=0):
    rng = np.random.default_rng(seed)
    g = np.arange(PITCH, SIZE - PITCH + 1, PITCH, dtype=float)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    pos = np.column_stack([yy.ravel(), xx.ravel()])
    movie = np.stack([render_spots((SIZE, SIZE), pos + rng.normal(0, 0.2, pos.shape), 1.0, 1.5)
                      + rng.normal(0, 0.02, (SIZE, SIZE)) for _ in range(frames)])
    return movie.astype(np.float32), pos


def test_pipeline_detects_encodes_and_writes(tmp_path):
    movie, truth = _lattice_movie()
    settings = PipelineSettings(window=12, epochs=2, batch=32, threads=1, seed=0)
    kinds = [item[0] for item in iter_pipeline(movie, settings)]
    assert kinds[0] == "stage" and kinds.count("epoch") == 2 and "trainer" in kinds
    result = run_pipeline(movie, settings)
    sites = result.sites
    # every lattice spot found once per frame (7 x 7 spots, none at the 2 px edge margin)
    assert sites.groupby("frame").size().tolist() == [len(truth)] * 2
    d = np.hypot(*(sites[sites.frame == 0][["y", "x"]].to_numpy()[:, None, :] - truth[None]).transpose(2, 0, 1))
    assert d.min(axis=0).max() < 0.6  # pixels
    # windows of 12 px fit around every spot (nearest edge 10 px away): all encoded
    for column in ("angle", "dx", "dy", "z0", "z1"):
        assert np.isfinite(sites[column]).all()
    assert [h["epoch"] for h in result.history] == [1, 2]
    written = write_outputs(result, tmp_path / "run")
    table = pd.read_csv(written["sites"])
    assert len(table) == len(sites) and "z1" in table
    assert (tmp_path / "run" / "model" / "model.json").is_file() and written["run"].is_file()
    assert written["figure_manifold"].stat().st_size > 1000


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="movie"):
        run_pipeline(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="window"):
        PipelineSettings(window=2)


@pytest.mark.gui
def test_pipeline_dock_fills_the_viewer(make_napari_viewer, qtbot):
    from napari_rvae.widgets.latent_explorer import LatentExplorer
    from napari_rvae.widgets.pipeline_dock import SITES_LAYER, RunPipeline

    viewer = make_napari_viewer()
    movie, _ = _lattice_movie()
    viewer.add_image(movie, name="movie")
    dock, explorer = RunPipeline(viewer), LatentExplorer(viewer)
    viewer.window.add_dock_widget(dock)
    viewer.window.add_dock_widget(explorer)
    dock.window_spin.setValue(12)
    dock.epochs_spin.setValue(2)
    with qtbot.waitSignal(dock.job.finished, timeout=300_000):
        dock.run_button.click()
    assert dock.job.last_error is None, dock.job.last_error
    layer = viewer.layers[SITES_LAYER]
    assert {"angle", "z0", "z1"} <= set(layer.features.columns) and len(layer.data) == 2 * 49
    # the explorer switched to the new sites and decodes with the pipeline's model
    assert explorer.points_picker.layer() is layer and explorer.decode is not None
    assert explorer.decode(np.zeros(2), 0.0, 0.0, 0.0).shape == (12, 12)
    # coloured by angle on the cyclic map (a perfect square lattice gives nearly one angle, so compare colours)
    from napari_rvae.widgets import _colours as colours

    expected = colours.row_colours(layer.features, colours.colour_scale(layer.features, "angle"))
    np.testing.assert_allclose(np.asarray(layer.face_color), np.asarray(expected), atol=1e-6)


def test_headless_demo_writes_tables_and_figures(tmp_path, capsys):
    from napari_rvae.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--headless", "-o", str(out), "--epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert str(out) in said and "sites.csv" in said
    table = pd.read_csv(out / "sites.csv")
    assert {"frame", "y", "x", "angle", "dx", "dy", "z0", "z1"} <= set(table.columns)
    assert table["z0"].notna().sum() > 1000  # the graphene sample: ~1400 sites away from the border
    assert (out / "model" / "model.safetensors").is_file() and (out / "run.json").is_file()
    assert (out / "figures" / "manifold.png").is_file() and (out / "figures" / "sites_by_angle_first_frame.png").is_file()
    assert main(["demo", "--headless", "--epochs", "0"]) == 2  # bad input: one clear line, exit 2
    assert "epochs" in capsys.readouterr().err


@pytest.mark.gui
def test_demo_window_has_the_sample_and_every_dock(make_napari_viewer):
    from napari_rvae.widgets.demo import open_demo

    viewer = make_napari_viewer()
    viewer, docks = open_demo(viewer, run=False)
    assert set(docks) == {"panel", "pipeline", "explorer", "colour", "train", "detect", "segment", "analysis"}
    image = docks["pipeline"].image_picker.layer()
    assert image is not None and image.data.shape == (5, 256, 256)
    # one dock for every step, which fits a 1366 × 768 screen (the docks scroll inside their tab)
    assert docks["panel"].minimumSizeHint().height() <= 600 and docks["panel"].minimumSizeHint().width() <= 480
    assert all(dock.minimumWidth() >= 280 for name, dock in docks.items() if name != "panel")
