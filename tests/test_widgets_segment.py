"""Segment & label dock: paint sparse labels, train, predict, accept predictions, autosave, save / load."""

import numpy as np
import pytest

pytest.importorskip("napari_rvae.segment")

from napari_rvae.synth.render import render_spots  # noqa: E402
from napari_rvae.widgets.segment_dock import SegmentLabel, parse_frames  # noqa: E402

pytestmark = pytest.mark.gui
SIZE, PITCH = 64, 8


def _movie():
    rng = np.random.default_rng(0)
    g = np.arange(PITCH // 2, SIZE, PITCH, dtype=float)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    pos = np.column_stack([yy.ravel(), xx.ravel()])
    movie = np.stack([render_spots((SIZE, SIZE), pos, 1.0, 1.2) + rng.normal(0, 0.05, (SIZE, SIZE)) for _ in range(2)])
    yyy, xxx = np.mgrid[:SIZE, :SIZE]
    near = np.min([np.hypot(yyy - y, xxx - x) for y, x in pos], axis=0) <= 1.5
    truth = np.stack([np.where(near, 2, 1)] * 2)  # 2 = atom, 1 = background
    return movie.astype(np.float32), truth


def test_paint_train_predict_accept(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_RVAE_AUTOSAVE", str(tmp_path / "autosave"))
    viewer = make_napari_viewer()
    movie, truth = _movie()
    viewer.add_image(movie, name="movie")
    dock = SegmentLabel(viewer)
    viewer.window.add_dock_widget(dock)
    dock.new_button.click()
    labels = viewer.layers["painted labels"]
    # the user paints a few pixels of frame 0 only: a sparse 10 % of the truth
    painted = np.zeros_like(truth)
    mask = np.random.default_rng(1).random(truth[0].shape) < 0.1
    painted[0][mask] = truth[0][mask]
    labels.data = painted
    labels.events.paint()  # what napari emits after a brush stroke
    qtbot.waitUntil(lambda: (tmp_path / "autosave" / "painted labels.npy").is_file(), timeout=5000)
    assert np.array_equal(np.load(tmp_path / "autosave" / "painted labels.npy"), painted)

    dock.epochs_spin.setValue(6)
    dock.crop_spin.setValue(32)
    dock.steps_spin.setValue(8)
    with qtbot.waitSignal(dock.train_jobs.finished, timeout=300_000):
        dock.train_button.click()
    assert dock.train_jobs.last_error is None, dock.train_jobs.last_error
    assert [h["epoch"] for h in dock.loss_plot.history] == list(range(1, 7))
    shown = dock.quality.toPlainText()  # held-out scores in their fixed-height box
    assert "IoU" in shown and "confusion" in shown and dock.validation is not None
    with qtbot.waitSignal(dock.predict_jobs.finished, timeout=300_000):
        dock.predict_all_button.click()
    assert dock.predict_jobs.last_error is None, dock.predict_jobs.last_error
    predicted = viewer.layers["predicted labels"].data
    assert predicted.shape == truth.shape
    # frame 1 was never painted: the prediction matches the truth on most pixels
    assert (predicted[1] == truth[1]).mean() > 0.85
    assert viewer.layers["uncertainty"].data.shape == truth.shape
    assert viewer.layers["probability: atom"].data.shape == truth.shape

    dock.frames_edit.setText("1")
    dock.confidence.setValue(0.6)
    dock.accept_button.click()
    accepted = labels.data[1]
    assert (accepted > 0).mean() > 0.3 and (accepted[accepted > 0] == truth[1][accepted > 0]).mean() > 0.9
    assert np.array_equal(labels.data[0], painted[0])  # painted pixels are never overwritten

    folder = dock.save_to(tmp_path / "segmenter")
    with qtbot.waitSignal(dock.load_jobs.finished, timeout=60_000):  # loads in the background
        dock.load_from(folder)
    assert dock.model is not None and dock.finetune_button.isEnabled()


def test_parse_frames():
    assert parse_frames("1, 3-5", 10) == [1, 3, 4, 5]
    assert parse_frames("", 3) == []
    with pytest.raises(ValueError, match="outside"):
        parse_frames("7", 3)
    with pytest.raises(ValueError, match="cannot read"):
        parse_frames("a", 3)
