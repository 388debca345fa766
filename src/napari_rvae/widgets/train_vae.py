"""Train VAE dock: windows at the sites → (r)VAE trained in the background → latents in the features.

The dock only gathers settings and displays the trainer's state: windows are
cut by :mod:`napari_rvae.patches`, the model is built, trained and used by
:mod:`napari_rvae.vae`. Train / Stop / Continue drive one
:class:`~napari_rvae.vae.Trainer`; when training ends (or on "Encode sites")
every site is encoded and ``angle, dx, dy, z0 …`` are written into the points
layer's features, and the model is handed to the latent explorer.
"""

from __future__ import annotations

import napari
import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QWidget

from ..io.sites import latent_columns
from ._common import LayerPicker, button, collapsible, scroll_body, dspin, form_label, sites_from_layer, spin, tip, write_columns
from ._model_link import model_link
from ._window_panel import WindowPanel
from ._workers import BackgroundJob, call_safely

ARCH_HELP = {
    "rvae": "rVAE: angle + shift + content latents (papers 000-003)",
    "skip-rvae": "skip-rVAE: rVAE with latent skip connections in the decoder (paper 000)",
    "shift-vae": "shift-VAE: shift + content latents, no rotation (paper 004)",
    "vae": "plain VAE: content latents only (baseline)",
}


ORIENTATIONS = {"none": 0, "bond frame, 3-fold (graphene)": 3, "bond frame, 4-fold (square)": 4,
                "bond frame, 6-fold (hexagonal)": 6}


def cut_for_settings(movie, sites, settings: dict, **options):
    """Windows as the settings ask: the one place the dock cuts windows (training and preview)."""
    from ..patches import BOND_ANGLE, cut_windows, with_orientation

    symmetry = settings.get("bond_symmetry", 0)
    if symmetry:  # each window turned into its atom's bond frame
        sites = with_orientation(sites.drop(columns=[BOND_ANGLE], errors="ignore"),
                                 {"orientation": BOND_ANGLE, "bond_symmetry": symmetry})
    radius = settings.get("mask_radius", 0)
    cut = cut_windows(movie, sites, settings["window"], classes=settings["classes"], seed=settings["seed"],
                      normalisation=settings["normalisation"], centring=settings.get("centring", "pixel"),
                      orientation=BOND_ANGLE if symmetry else None,
                      mask=(radius, max(radius, settings["window"] / 2)) if radius else None, **options)
    if symmetry:
        cut.normalisation["bond_symmetry"] = int(symmetry)
    return cut


def train_job(movie, sites, settings: dict, trainer=None, epochs: int = 10):
    """Background job: cut windows, build the model (unless continuing), train, encode every site.

    Yields ``("ready", trainer, report)`` once, then ``("epoch", stats)`` per epoch;
    returns ``("encoded", table, report)``.
    """
    from ..vae import BetaSchedule, Trainer, VAEConfig, build_model, encode_sites

    if trainer is None:
        if settings["window"] > min(np.shape(movie)[-2:]):
            raise ValueError(f"window {settings['window']} px is larger than the image "
                             f"({np.shape(movie)[-2]}×{np.shape(movie)[-1]} px); choose a smaller window")
        cut = cut_for_settings(movie, sites, settings, per_frame=settings["per_frame"],
                               round_columns=settings.get("round_columns", False))
        if len(cut) < 2:
            raise ValueError(f"only {len(cut)} window(s) could be cut ({cut.report.summary()}); "
                             "use a smaller window or more sites")
        beta = BetaSchedule(kind=settings["beta_kind"], start=settings["beta_start"], end=settings["beta_end"],
                            epochs=max(1, settings["beta_epochs"]))
        config = VAEConfig(arch=settings["arch"], window=(settings["window"],) * 2, latent=settings["latent"],
                           encoder=settings["encoder"], rotation_prior=settings["rotation_prior"],
                           translation_prior=settings["translation_prior"], beta=beta)
        model = build_model(config, seed=settings["seed"])
        model.normalisation = cut.normalisation
        trainer = Trainer(model, cut.windows, batch_size=settings["batch"], lr=settings["lr"], seed=settings["seed"],
                          device=settings["device"], pixel_fraction=settings.get("pixel_fraction", 1.0),
                          leave_core_for_gui=True)
        yield ("ready", trainer, cut.report)
    for stats in trainer.run(epochs):
        yield ("epoch", stats)
    table, report = encode_sites(trainer.model, movie, sites)
    return ("encoded", table, report)


def encode_job(model, movie, sites):
    from ..vae import encode_sites

    table, report = encode_sites(model, movie, sites)
    return ("encoded", table, report)


class LossPlot(pg.PlotWidget):
    """Loss per epoch: train and test totals, reconstruction and KL (per window)."""

    CURVES = {"train_loss": ("train", (80, 160, 255)), "test_loss": ("test", (255, 140, 40)),
              "train_recon": ("recon", (120, 220, 120)), "train_kl": ("KL", (220, 100, 220))}

    def __init__(self, curves: dict | None = None) -> None:
        super().__init__()
        if curves is not None:
            self.CURVES = dict(curves)
        self.setMinimumSize(280, 170)
        self.setBackground("k")
        self.setLabel("bottom", "epoch")
        self.setLabel("left", "loss")
        self.addLegend(offset=(-10, 10))
        self.curves = {k: self.plot([], [], pen=pg.mkPen(c, width=2), name=n) for k, (n, c) in self.CURVES.items()}
        self.history: list[dict] = []

    def set_history(self, history: list[dict]) -> None:
        self.history = list(history)
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(self.history)]
        for key, curve in self.curves.items():
            curve.setData(epochs, [h.get(key, np.nan) for h in self.history])

    def add(self, stats: dict) -> None:
        self.set_history(self.history + [stats])


class TrainVAE(QWidget):
    """The dock."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.trainer = None
        self.model = None
        self.setMinimumSize(340, 640)
        self.link = model_link(napari_viewer)
        self.job = BackgroundJob("Training the VAE", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, parent=self)

        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Movie (raw or probability map) the windows are cut from")
        self.points_picker = LayerPicker(napari_viewer, (napari.layers.Points,), "Sites (points layer) the windows are centred on")
        self.window_spin = spin(24, 4, 256, "Window size in pixels (papers: 24 for graphene, 48-70 for larger motifs)", suffix=" px")
        self.class_combo = tip(QComboBox(), "Train on sites of one class only, or all")
        self.per_frame_spin = spin(0, 0, 100000, "At most this many random sites per frame (0 = all), e.g. 600 in paper 000")
        self.arch_combo = tip(QComboBox(), "Model: " + "; ".join(ARCH_HELP.values()))
        self.arch_combo.addItems(list(ARCH_HELP))
        self.latent_spin = spin(2, 1, 16, "Number of content latents z0, z1, …")
        self.epochs_spin = spin(20, 1, 100000, "Epochs to train (Continue adds this many more)")
        self.batch_spin = spin(32, 1, 100000, "Windows per optimiser step")
        self.lr_spin = dspin(3e-3, 1e-6, 1.0, "Adam learning rate", 1e-4, 6)
        self.seed_spin = spin(0, 0, 2**31 - 1, "Random seed: same seed, same data ⇒ same latents on CPU")
        self.norm_combo = tip(QComboBox(), "Window scaling: one min-max over all windows (global), per window, or none")
        self.norm_combo.addItems(["window", "global", "none"])
        self.centring_combo = tip(QComboBox(), "pixel: cut around the rounded site position (papers' rule); subpixel: "
                                  "resample so the site is the window's exact centre, the point the rVAE rotates "
                                  "about (use it when angles must be physical rotations)")
        self.centring_combo.addItems(["pixel", "subpixel"])
        self.orientation_combo = tip(QComboBox(), "Turn each window into its atom's bond frame (one bond along +x, "
                                     "found from the atom graph) so sites of different lattice orientations — "
                                     "graphene's two sublattices, rotated grains — give alike windows and the "
                                     "latents describe the environment, not the orientation. Implies subpixel "
                                     "centring; encoding repeats it")
        self.orientation_combo.addItems(list(ORIENTATIONS))
        self.mask_spin = dspin(0.0, 0.0, 1000.0, "Circular mask radius (pixels): keep each window within this "
                               "distance of its site and taper to 0 at the window's edge, so the latents describe "
                               "the site's own neighbourhood, not the corners (0 = off; e.g. 11 px for 28-px "
                               "graphene windows with 5-px bonds). Saved with the model, repeated when encoding", 1.0, 1)
        self.round_check = tip(QCheckBox("make columns round"),
                               "Compensate a probe astigmatism: measure the columns' ellipticity on the movie and "
                               "blur each frame along the columns' short axis so they come out round (lattice "
                               "unchanged) before cutting. Use with elliptical columns in STEM images when angles "
                               "must map rotational variants onto each other. Kept with the model and repeated "
                               "when encoding; the preview shows windows without it")
        self.encoder_combo = tip(QComboBox(), "Encoder: fully connected (mlp) or convolutional")
        self.encoder_combo.addItems(["mlp", "conv"])
        self.rot_prior = dspin(0.1, 1e-3, 10.0, "Rotation prior σ (radians) of the angle latent", 0.05)
        self.trans_prior = dspin(0.1, 1e-3, 10.0, "Translation prior: shift latent scale in half-window units", 0.05)
        self.beta_combo = tip(QComboBox(), "KL weight β per epoch: constant, linear ramp, or cyclical ramps")
        self.beta_combo.addItems(["constant", "linear", "cyclical"])
        self.beta_start = dspin(1.0, 0.0, 100.0, "β at the first epoch", 0.1)
        self.beta_end = dspin(1.0, 0.0, 100.0, "β at the end of the ramp", 0.1)
        self.beta_epochs = spin(10, 1, 100000, "Epochs of one β ramp")
        self.pixel_fraction = dspin(1.0, 0.01, 1.0, "Share of each window's pixels decoded per step: below 1 is an "
                                    "unbiased, proportionally faster estimate (the demo uses 0.25)", 0.05, 2)
        self.device_combo = tip(QComboBox(), "Where to train: auto picks CUDA, then Apple MPS, then CPU")
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        self.preview = WindowPanel(titles=tuple(f"site {i + 1}" for i in range(6)))
        self.preview.setToolTip("Sample windows at the chosen size (what the model will see)")
        self.preview.setMinimumSize(300, 90)
        self.preview.setMaximumHeight(120)
        self.loss_plot = LossPlot()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.train_button = button("Train", "Cut windows, build a new model and train it", self.train)
        self.stop_button = button("Stop", "Stop after the current batch (the model so far is kept and encoded)", self.stop)
        self.continue_button = button("Continue", "Train the same model for more epochs", self.continue_training)
        self.encode_button = button("Encode sites", "Write angle, dx, dy, z0 … of every site into the points layer", self.encode)
        self.save_button = button("Save model…", "Save the model (safetensors + model.json) into a folder", self.save_dialog)
        self.load_button = button("Load model…", "Load a saved model folder", self.load_dialog)

        form = QFormLayout()
        for label, widget in [("image", self.image_picker), ("sites", self.points_picker), ("window", self.window_spin),
                              ("class", self.class_combo), ("per frame", self.per_frame_spin), ("model", self.arch_combo),
                              ("latents", self.latent_spin), ("epochs", self.epochs_spin)]:
            form.addRow(form_label(label, widget.toolTip()), widget)
        advanced, _ = collapsible("Advanced", [
            (form_label(n, w.toolTip()), w) for n, w in [
                ("batch", self.batch_spin), ("learning rate", self.lr_spin), ("seed", self.seed_spin),
                ("normalise", self.norm_combo), ("centring", self.centring_combo), ("orientation", self.orientation_combo),
                ("circular mask", self.mask_spin),
                ("round columns", self.round_check), ("encoder", self.encoder_combo), ("rotation prior", self.rot_prior),
                ("translation prior", self.trans_prior), ("β schedule", self.beta_combo), ("β start", self.beta_start),
                ("β end", self.beta_end), ("β ramp epochs", self.beta_epochs), ("pixels per step", self.pixel_fraction),
                ("device", self.device_combo)]
        ])
        run_row, file_row = QHBoxLayout(), QHBoxLayout()
        for b in (self.train_button, self.stop_button, self.continue_button):
            run_row.addWidget(b)
        for b in (self.encode_button, self.save_button, self.load_button):
            file_row.addWidget(b)
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(advanced)
        layout.addLayout(run_row)
        layout.addWidget(self.loss_plot, stretch=1)
        layout.addLayout(file_row)
        layout.addWidget(self.status)

        self.job.errored.connect(self._on_error)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(lambda: call_safely("Previewing windows", self.update_preview))
        for signal in (self.window_spin.valueChanged, self.image_picker.layer_changed, self.points_picker.layer_changed,
                       self.class_combo.currentTextChanged, self.norm_combo.currentTextChanged,
                       self.centring_combo.currentTextChanged, self.orientation_combo.currentTextChanged,
                       self.mask_spin.valueChanged):
            signal.connect(lambda *_: self._preview_timer.start())
        self.points_picker.layer_changed.connect(self._fill_classes)
        self._fill_classes()
        self._set_buttons()
        self._preview_timer.start()

    # ------------------------------------------------------------ inputs
    def _fill_classes(self, *_args) -> None:
        layer = self.points_picker.layer()
        keep = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("all")
        if layer is not None and "class" in layer.features:
            self.class_combo.addItems([str(c) for c in sorted(layer.features["class"].dropna().unique())])
        self.class_combo.setCurrentText(keep if self.class_combo.findText(keep) >= 0 else "all")
        self.class_combo.blockSignals(False)

    def inputs(self):
        """(movie (T, Y, X) array, sites table) from the chosen layers; raises ValueError when missing."""
        image, points = self.image_picker.layer(), self.points_picker.layer()
        if image is None or points is None:
            raise ValueError("choose an image layer and a points layer (run detection first)")
        movie = np.asarray(image.data, dtype=np.float32)
        if movie.ndim not in (2, 3):
            raise ValueError(f"image {image.name!r} has shape {movie.shape}; expected (T, Y, X) or (Y, X)")
        if len(points.data) == 0:
            raise ValueError(f"points layer {points.name!r} has no sites")
        return movie, sites_from_layer(points)

    def settings(self) -> dict:
        cls = self.class_combo.currentText()
        return {
            "window": self.window_spin.value(), "classes": None if cls in ("", "all") else int(float(cls)),
            "per_frame": self.per_frame_spin.value() or None, "seed": self.seed_spin.value(),
            "normalisation": self.norm_combo.currentText(), "centring": self.centring_combo.currentText(),
            "bond_symmetry": ORIENTATIONS[self.orientation_combo.currentText()], "mask_radius": self.mask_spin.value(),
            "round_columns": self.round_check.isChecked(), "arch": self.arch_combo.currentText(),
            "latent": self.latent_spin.value(), "encoder": self.encoder_combo.currentText(),
            "rotation_prior": self.rot_prior.value(), "translation_prior": self.trans_prior.value(),
            "beta_kind": self.beta_combo.currentText(), "beta_start": self.beta_start.value(),
            "beta_end": self.beta_end.value(), "beta_epochs": self.beta_epochs.value(),
            "batch": self.batch_spin.value(), "lr": self.lr_spin.value(), "device": self.device_combo.currentText(),
            "pixel_fraction": self.pixel_fraction.value(),
        }

    def update_preview(self) -> None:
        """Show a few windows at the chosen size around random sites of the first frame."""
        try:
            from .. import patches  # noqa: F401
        except ImportError:  # the model engine is not part of this installation
            self.status.setText("napari_rvae.patches / vae are not installed: training is unavailable")
            return

        if self.image_picker.layer() is None or self.points_picker.layer() is None:
            return
        movie, sites = self.inputs()
        s = self.settings()
        first = sites[sites["frame"] == sites["frame"].min()]
        # sample more sites than shown: some windows fall off the frame edge
        cut = cut_for_settings(movie, first, s, per_frame=8 * len(self.preview.TITLES))
        for i, title in enumerate(self.preview.TITLES):
            self.preview.set_image(title, cut.windows[i] if i < len(cut) else None, f"{s['window']} px" if i == 0 else " ")

    # ------------------------------------------------------------ actions
    def train(self):
        """Start training a new model; returns the worker (tests wait on ``job.finished``)."""
        movie, sites = self.inputs()
        self.trainer, self._sites_layer = None, self.points_picker.layer()
        self._movie, self._sites = movie, sites
        self.loss_plot.set_history([])
        self.status.setText("cutting windows…")
        worker = self.job.start(train_job, movie, sites, self.settings(), None, self.epochs_spin.value(),
                                stop=self._request_stop, total=self.epochs_spin.value() + 1)
        self._set_buttons()
        return worker

    def continue_training(self):
        if self.trainer is None:
            raise ValueError("nothing to continue: press Train first")
        worker = self.job.start(train_job, self._movie, self._sites, {}, self.trainer, self.epochs_spin.value(),
                                stop=self._request_stop, total=self.epochs_spin.value())
        self._set_buttons()
        return worker

    def stop(self) -> None:
        self.job.stop()

    def _request_stop(self) -> None:
        if self.trainer is not None:
            self.trainer.state.request_stop()
        elif self.job.worker is not None:
            self.job.worker.quit()

    def encode(self):
        if self.model is None:
            raise ValueError("no model yet: train or load one")
        movie, sites = self.inputs()
        self._sites_layer = self.points_picker.layer()
        worker = self.job.start(encode_job, self.model, movie, sites, total=0)
        self._set_buttons()
        return worker

    def save_model_to(self, folder) -> str:
        from ..vae import save_model

        if self.model is None:
            raise ValueError("no model to save: train or load one first")
        trainer = self.trainer if self.trainer is not None and self.trainer.model is self.model else None
        path = save_model(self.model, folder, history=trainer.state.history if trainer else None, trainer=trainer)
        self.status.setText(f"model saved in {path}")
        return str(path)

    def load_model_from(self, folder) -> None:
        from ..vae import load_model, train_state

        model = load_model(folder)
        self._use_model(model)
        self.loss_plot.set_history(getattr(model, "history", []))
        self.trainer = None
        self.window_spin.setValue(int(model.config.window[-1]))
        self.arch_combo.setCurrentText(model.config.arch)
        self.latent_spin.setValue(int(model.config.latent))
        self.status.setText(f"model loaded from {folder} ({train_state(model).epoch} epochs); press Encode sites")
        self._set_buttons()

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to save the model in")
        if folder:
            call_safely("Saving the model", self.save_model_to, folder)

    def load_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (model.json + model.safetensors)")
        if folder:
            call_safely("Loading the model", self.load_model_from, folder)

    # ------------------------------------------------------------ results
    def _on_yield(self, item) -> None:
        if item[0] == "ready":
            _, self.trainer, report = item
            self._use_model(self.trainer.model)
            rounded = (self.trainer.model.normalisation or {}).get("round_columns") or {}
            self.status.setText(report.summary() + "; " + (rounded["message"] + "; " if "message" in rounded else "")
                                + "training…")
        elif item[0] == "epoch":
            stats = item[1]
            self.loss_plot.add(stats)
            self.status.setText(f"epoch {stats['epoch']}: train {stats['train_loss']:.4g}, test {stats['test_loss']:.4g}"
                                f" ({stats['samples_per_s']:.0f} windows/s)")

    def _on_return(self, result) -> None:
        if not result or result[0] != "encoded":
            return
        _, table, report = result
        layer = self._sites_layer
        if layer is None or layer not in self.viewer.layers or len(layer.data) != len(table):
            raise ValueError("the points layer changed during training; press Encode sites")
        names = [c for c in table.columns if c in latent_columns(table) or c.endswith("_sigma")]
        write_columns(layer, table, names)
        self.link.set_model(self.model)
        self.status.setText(f"{report.summary()}; latents written to '{layer.name}' ({', '.join(latent_columns(table))})")

    def _on_error(self, err) -> None:
        """Show why training stopped in the dock; after a divergence the model is the last good epoch's
        (the trainer put it back), so Save model never writes NaN weights."""
        self.status.setText(f"training stopped: {' '.join(str(err).split())}")

    def _use_model(self, model) -> None:
        self.model = model
        self.link.set_model(model)

    def _on_finish(self) -> None:
        self._set_buttons()

    def _set_buttons(self) -> None:
        running = self.job.running
        self.train_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.continue_button.setEnabled(not running and self.trainer is not None)
        self.encode_button.setEnabled(not running and self.model is not None)
        self.save_button.setEnabled(self.model is not None)
