"""Train VAE dock driven like a user: pick layers, set the window, Train / Stop / Continue, save / load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari_rvae.vae")
pytest.importorskip("napari_rvae.patches")

from napari_rvae.synth.render import render_spots  # noqa: E402
from napari_rvae.widgets.latent_explorer import DECODED_LAYER, LatentExplorer  # noqa: E402
from napari_rvae.widgets.train_vae import TrainVAE  # noqa: E402

pytestmark = pytest.mark.gui
T, SIZE, PITCH = 3, 96, 12


def _movie_and_sites(seed=0):
    """Elongated spots on a square lattice, each at a random orientation (what an rVAE encodes as angle)."""
    rng = np.random.default_rng(seed)
    g = np.arange(PITCH // 2, SIZE - PITCH // 2 + 1, PITCH, dtype=float)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    frames, rows = [], []
    for t in range(T):
        pos = np.column_stack([yy.ravel(), xx.ravel()]) + rng.normal(0, 0.3, (yy.size, 2))
        theta = rng.uniform(-np.pi, np.pi, len(pos))
        frames.append(render_spots((SIZE, SIZE), pos, 1.0, 2.0, ellipticity=0.5, orientation=theta)
                      + rng.normal(0, 0.02, (SIZE, SIZE)))
        rows.append(pd.DataFrame({"frame": t, "y": pos[:, 0], "x": pos[:, 1], "class": 0, "true_angle": theta}))
    return np.stack(frames).astype(np.float32), pd.concat(rows, ignore_index=True)


@pytest.fixture
def docks(make_napari_viewer):
    viewer = make_napari_viewer()
    movie, sites = _movie_and_sites()
    viewer.add_image(movie, name="movie")
    viewer.add_points(sites[["frame", "y", "x"]].to_numpy(), features=sites, name="sites")
    train = TrainVAE(viewer)
    explorer = LatentExplorer(viewer)
    viewer.window.add_dock_widget(train)
    viewer.window.add_dock_widget(explorer)
    train.image_picker.set_layer(viewer.layers["movie"])
    explorer.image_picker.set_layer(viewer.layers["movie"])
    return viewer, train, explorer, sites


def test_train_writes_latents_and_feeds_explorer(docks, qtbot, tmp_path):
    viewer, train, explorer, sites = docks
    train.window_spin.setValue(12)
    train.update_preview()
    preview = train.preview.images[train.preview.TITLES[0]]
    assert preview.shape == (12, 12) and 0.0 <= preview.min() and preview.max() <= 1.0  # global min-max scaling
    train.epochs_spin.setValue(3)
    train.batch_spin.setValue(64)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert train.job.last_error is None, train.job.last_error
    history = train.loss_plot.history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["test_loss"]) for h in history)
    features = viewer.layers["sites"].features
    for column in ("angle", "dx", "dy", "z0", "z1"):
        assert column in features
    # every site whose 12 px window fits in the frame is encoded; the others are NaN
    inside = (sites.y.round() >= 6) & (sites.y.round() + 6 <= SIZE) & (sites.x.round() >= 6) & (sites.x.round() + 6 <= SIZE)
    assert np.array_equal(np.isfinite(features["z0"].to_numpy()), inside.to_numpy())
    assert features["true_angle"].equals(sites["true_angle"])  # other columns untouched
    # the explorer now decodes with the trained model: click an empty spot
    assert explorer.decode is not None and explorer.x_combo.currentText() == "z0"
    explorer.plot.handle_click(50.0, 50.0)
    qtbot.waitUntil(lambda: DECODED_LAYER in viewer.layers, timeout=2000)
    assert viewer.layers[DECODED_LAYER].data.shape == (12, 12)

    # Continue trains the same model further
    train.epochs_spin.setValue(2)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.continue_button.click()
    assert [h["epoch"] for h in train.loss_plot.history][-2:] == [4, 5]

    # save and load: the loaded model decodes exactly like the trained one
    folder = train.save_model_to(tmp_path / "model")
    z = np.array([0.3, -0.2], np.float32)
    before = explorer.decode(z, 0.4, 0.5, -0.5)
    trained = train.model
    with qtbot.waitSignal(train.load_job.finished, timeout=60_000):  # loads in the background
        train.load_model_from(folder)
    assert train.model is not trained and [h["epoch"] for h in train.model.history] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(explorer.decode(z, 0.4, 0.5, -0.5), before, atol=1e-6)


def test_stop_keeps_the_model_and_errors_are_reported(docks, qtbot, monkeypatch):
    viewer, train, explorer, sites = docks
    shown = []
    monkeypatch.setattr("napari_rvae.widgets._workers.show_error", shown.append)
    train.window_spin.setValue(300)  # bigger than the movie: nothing can be cut
    train.window_spin.setValue(256)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert shown and "window" in shown[-1]
    train.window_spin.setValue(12)
    train.epochs_spin.setValue(10_000)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
        qtbot.waitUntil(lambda: len(train.loss_plot.history) >= 1, timeout=300_000)
        train.stop_button.click()
    assert len(train.loss_plot.history) < 10_000
    assert "z0" in viewer.layers["sites"].features  # stopped models are still encoded
    assert train.continue_button.isEnabled()


def test_a_diverging_training_is_shown_and_never_saved_as_nan(docks, qtbot, monkeypatch, tmp_path):
    """The loss turns NaN in the third epoch: the dock says so, the model is the second epoch's
    (finite), and Save model writes that one."""
    import torch

    from napari_rvae.vae import Trainer, TrainingDiverged, load_model

    viewer, train, explorer, sites = docks
    shown = []
    monkeypatch.setattr("napari_rvae.widgets._workers.show_error", shown.append)
    original, calls = Trainer._loss, {"n": 0}

    def loss(self, *args, **kwargs):
        total, r, k = original(self, *args, **kwargs)
        if self.model.training:
            calls["n"] += 1
            if self.state.epoch >= 2:
                total = total * float("nan")
        return total, r, k

    monkeypatch.setattr(Trainer, "_loss", loss)
    train.window_spin.setValue(12)
    train.epochs_spin.setValue(5)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert isinstance(train.job.last_error, TrainingDiverged)
    assert shown and "diverged" in shown[-1]
    assert "diverged" in train.status.text() and "epoch 2" in train.status.text()
    assert len(train.loss_plot.history) == 2 and train.trainer.state.epoch == 2
    assert all(bool(torch.isfinite(p).all()) for p in train.model.parameters())
    train.save_model_to(tmp_path / "saved")
    assert len(load_model(tmp_path / "saved").history) == 2
    assert "z0" not in viewer.layers["sites"].features  # nothing half-trained was written into the layer


def test_subpixel_centring_from_the_dock_is_used_to_train_and_encode(docks, qtbot):
    """Advanced ▸ centring = subpixel: the model records it and the sites are encoded with it."""
    from napari_rvae.patches import cut_windows
    from napari_rvae.vae import encode

    viewer, train, _, sites = docks
    train.window_spin.setValue(12)
    train.centring_combo.setCurrentText("subpixel")
    train.epochs_spin.setValue(1)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert train.job.last_error is None, train.job.last_error
    model = train.trainer.model
    assert model.normalisation["centring"] == "subpixel"
    norm = model.normalisation
    cut = cut_windows(viewer.layers["movie"].data, sites, 12, normalisation=norm["mode"], lo=norm.get("lo"),
                      hi=norm.get("hi"), centring="subpixel")
    encoded = viewer.layers["sites"].features["z0"].to_numpy()[cut.rows]
    np.testing.assert_allclose(encoded, encode(model, cut.windows)["z0"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_round_columns_from_the_dock_is_used_to_train_and_encode(docks, qtbot):
    """Advanced ▸ round columns on a movie whose columns share one elliptical shape: the model
    records the measured correction and the sites are encoded with it."""
    from napari_rvae.patches import cut_windows, recipe_options
    from napari_rvae.vae import encode

    viewer, train, _, sites = docks
    rng = np.random.default_rng(1)
    pos = sites.loc[sites["frame"] == 0, ["y", "x"]].to_numpy()
    movie = np.stack([render_spots((SIZE, SIZE), pos, 1.0, 2.0, ellipticity=0.25, orientation=0.8)
                      + rng.normal(0, 0.02, (SIZE, SIZE)) for _ in range(T)]).astype(np.float32)
    viewer.layers["movie"].data = movie
    train.window_spin.setValue(12)
    train.round_check.setChecked(True)
    train.epochs_spin.setValue(1)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert train.job.last_error is None, train.job.last_error
    norm = train.trainer.model.normalisation
    assert norm["round_columns"]["applied"] and abs(norm["round_columns"]["ellipticity"] - 0.25) < 0.03
    cut = cut_windows(movie, sites, 12, **recipe_options(norm))
    encoded = viewer.layers["sites"].features["z0"].to_numpy()[cut.rows]
    np.testing.assert_allclose(encoded, encode(train.trainer.model, cut.windows)["z0"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_bond_frame_and_circular_mask_from_the_dock_are_used_to_train_and_encode(docks, qtbot):
    """Advanced ▸ orientation = bond frame (4-fold, the square lattice here) and circular mask:
    the model records both and the sites are encoded with the same turned, masked windows."""
    from napari_rvae.detect import bond_orientation
    from napari_rvae.patches import cut_windows, recipe_options
    from napari_rvae.vae import encode

    viewer, train, _, sites = docks
    train.window_spin.setValue(12)
    train.orientation_combo.setCurrentText("bond frame, 4-fold (square)")
    train.mask_spin.setValue(4.0)
    train.update_preview()
    train.epochs_spin.setValue(1)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert train.job.last_error is None, train.job.last_error
    norm = train.trainer.model.normalisation
    assert norm["orientation"] == "bond_angle" and norm["bond_symmetry"] == 4 and norm["mask"] == [4.0, 6.0]
    cut = cut_windows(viewer.layers["movie"].data, bond_orientation(sites, symmetry=4), 12, **recipe_options(norm))
    assert np.all(cut.windows[:, 0, 0] == 0)  # corners masked
    encoded = viewer.layers["sites"].features["z0"].to_numpy()[cut.rows]
    np.testing.assert_allclose(encoded, encode(train.trainer.model, cut.windows)["z0"].to_numpy(), rtol=1e-5,
                               atol=1e-6)


def test_a_model_that_learned_nothing_is_said_in_the_dock(docks, qtbot):
    """Pure-noise windows: the dock's status leads with the latent check's warning, the check is kept with
    the model's settings, and the Analysis dock refuses to cluster the collapsed latents."""
    from napari_rvae.widgets.analysis_dock import AnalysisDock

    viewer, train, _, _ = docks
    viewer.layers["movie"].data = np.random.default_rng(5).random((T, SIZE, SIZE)).astype(np.float32)
    train.window_spin.setValue(12)
    train.epochs_spin.setValue(3)
    with qtbot.waitSignal(train.job.finished, timeout=300_000):
        train.train_button.click()
    assert train.job.last_error is None, train.job.last_error
    assert "learned nothing" in train.status.text()
    check = train.model.training_settings["latent_check"]
    assert check["informative"] is False and check["warnings"]
    analysis = AnalysisDock(viewer)
    viewer.window.add_dock_widget(analysis)
    analysis.points_picker.set_layer(viewer.layers["sites"])
    with pytest.raises(ValueError, match="collapsed"):
        analysis.run_clusters()


def test_loss_plot_fits_its_range_when_an_epoch_arrives(qtbot):
    """pyqtgraph fits a plot's auto range lazily, at the start of its next paint, which changes the axes
    and asks for a second paint of the whole window right after (two ~22 ms compositions beside napari's
    canvas in software GL, per epoch); the loss plot fits range and axes when the epoch arrives."""
    from napari_rvae.widgets._plots import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    losses = [50.0, 20.0, 12.0, 9.0, 8.5]
    for epoch, loss in enumerate(losses, 1):
        plot.add({"epoch": epoch, "train_loss": loss, "test_loss": loss + 1, "train_recon": loss - 2, "train_kl": 2.0})
    (x0, x1), (y0, y1) = plot.item.viewRange()  # never painted
    assert x0 <= 1 and x1 >= len(losses) and y0 <= 2.0 and y1 >= 51.0


def test_status_messages_of_one_or_two_lines_change_no_layout(qtbot):
    """A dock's status grows from nothing to one line and to two as a job starts; each change of its
    height re-laid the dock out and repainted the whole window. Up to two lines it keeps its height;
    a longer message still grows (nothing is cut)."""
    from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

    from napari_rvae.widgets._dock import StatusLabel

    holder = QWidget()
    layout = QVBoxLayout(holder)
    label, plain = StatusLabel(), QLabel("")
    plain.setWordWrap(True)
    layout.addWidget(label)
    layout.addWidget(plain)
    layout.addStretch(1)
    holder.resize(300, 400)
    qtbot.addWidget(holder)
    holder.show()
    qtbot.waitExposed(holder)
    texts = ["", "cutting windows…", "1 200 windows of 24 px cut from the image, 31 dropped at the border; "
             "training…", " ".join(["a message of many words"] * 12)]
    heights, plain_heights = [], []
    for text in texts:
        label.setText(text)
        plain.setText(text)
        layout.activate()
        heights.append(label.height())
        plain_heights.append(plain.height())
    assert heights[0] == heights[1] == heights[2] < heights[3]
    assert len(set(plain_heights[:3])) > 1  # a plain word-wrapped label changes height on the way
