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
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout

from ..io.sites import latent_columns
from ._common import (LayerPicker, button, collapsible, dspin, form_label, scroll_body, set_widget_values,
                      say_latent_check, sites_from_layer, spin, tip, widget_values, write_columns)
from ._dock import RvaeDock, StatusLabel, progress_bar
from ._plots import LossPlot
from ._vae_jobs import (ARCH_HELP, DOCK_EPOCHS, ORIENTATIONS, SOURCES, cut_for_settings, encode_job, model_source,
                        train_job)
from ._window_panel import WindowPanel
from ._workers import BackgroundJob, call_safely

class TrainVAE(RvaeDock):
    """The dock."""

    dock_name = "train"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.trainer = None
        self._window_chosen = False
        self._source_chosen = False
        self._setting = False
        self.link = self.flow
        self.job = BackgroundJob("Training the VAE", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, parent=self)
        self.load_job = BackgroundJob("Loading the model", on_return=self._on_loaded, on_finish=self._on_finish,
                                      parent=self)

        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "The movie the sites were found in",
                                        role="movie")
        self.points_picker = LayerPicker(napari_viewer, (napari.layers.Points,),
                                         "Sites (points layer) the windows are centred on", role="sites")
        self.source_combo = tip(QComboBox(), "Cut the windows from the atom probability map of the shipped atom "
                                "finder (papers 000/001: the model then sees atoms, not noise; made by Detect with "
                                "method auto/model) or from the raw image")
        self.source_combo.addItems(list(SOURCES))
        self.window_spin = spin(24, 4, 256, "Window size in pixels; set from the lattice's atom spacing when Detect "
                                "found one (about three spacings), else 24 (papers: 24 for graphene)", suffix=" px")
        self.class_combo = tip(QComboBox(), "Train on sites of one class only, or all")
        self.per_frame_spin = spin(0, 0, 100000, "At most this many random sites per frame (0 = all), e.g. 600 in paper 000")
        self.arch_combo = tip(QComboBox(), "Model: " + "; ".join(ARCH_HELP.values()))
        self.arch_combo.addItems(list(ARCH_HELP))
        self.latent_spin = spin(2, 1, 16, "Number of content latents z0, z1, …")
        self.epochs_spin = spin(0, 0, 100000, "Epochs to train (Continue adds this many more); auto: 20, or more "
                                "where the windows are few (at least 1 200 optimiser steps: a single image needs them)")
        self.epochs_spin.setSpecialValueText("auto")
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
        self.preview.setMinimumSize(280, 80)
        self.preview.setMaximumHeight(110)
        self.loss_plot = LossPlot(viewer=self.viewer)
        self.status = StatusLabel()
        self.train_button = button("Train", "Cut windows, build a new model and train it", self.train)
        self.stop_button = button("Stop", "Stop after the current batch (the model so far is kept and encoded)", self.stop)
        self.continue_button = button("Continue", "Train the same model for more epochs", self.continue_training)
        self.encode_button = button("Encode sites", "Write angle, dx, dy, z0 … of every site into the points layer", self.encode)
        self.save_button = button("Save model…", "Save the current model (safetensors + model.json with its training "
                                  "history) into a folder", self.save_dialog)
        self.load_button = button("Load model…", "Load a saved model folder", self.load_dialog)
        self.progress = progress_bar(self.job, *([self.load_job] if hasattr(self, "load_job") else []))

        form = QFormLayout()
        for label, widget in [("image", self.image_picker), ("sites", self.points_picker),
                              ("windows from", self.source_combo), ("window", self.window_spin),
                              ("class", self.class_combo), ("per frame", self.per_frame_spin), ("model", self.arch_combo),
                              ("latents", self.latent_spin), ("epochs", self.epochs_spin)]:
            form.addRow(form_label(label, widget.toolTip()), widget)
        advanced_rows = [
            ("batch", self.batch_spin), ("learning rate", self.lr_spin), ("seed", self.seed_spin),
            ("normalise", self.norm_combo), ("centring", self.centring_combo), ("orientation", self.orientation_combo),
            ("circular mask", self.mask_spin), ("round columns", self.round_check), ("encoder", self.encoder_combo),
            ("rotation prior", self.rot_prior), ("translation prior", self.trans_prior), ("β schedule", self.beta_combo),
            ("β start", self.beta_start), ("β end", self.beta_end), ("β ramp epochs", self.beta_epochs),
            ("pixels per step", self.pixel_fraction), ("device", self.device_combo)]
        advanced, _ = collapsible("Advanced", [(form_label(n, w.toolTip()), w) for n, w in advanced_rows])
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
        layout.addWidget(self.progress)
        layout.addWidget(self.loss_plot, stretch=1)
        layout.addLayout(file_row)
        layout.addWidget(self.status)
        self._inputs = {"windows_from": self.source_combo, "window": self.window_spin, "class": self.class_combo,
                        "per_frame": self.per_frame_spin, "model": self.arch_combo, "latents": self.latent_spin,
                        "epochs": self.epochs_spin, **{n: w for n, w in advanced_rows}}

        self.job.errored.connect(self._on_error)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(lambda: call_safely("Previewing windows", self.update_preview))
        for signal in (self.window_spin.valueChanged, self.image_picker.layer_changed, self.points_picker.layer_changed,
                       self.class_combo.currentTextChanged, self.norm_combo.currentTextChanged,
                       self.centring_combo.currentTextChanged, self.orientation_combo.currentTextChanged,
                       self.mask_spin.valueChanged, self.source_combo.currentTextChanged):
            signal.connect(lambda *_: self._preview_timer.start())
        self.window_spin.valueChanged.connect(self._on_window_typed)
        self.source_combo.activated.connect(lambda *_: setattr(self, "_source_chosen", True))
        self.points_picker.layer_changed.connect(self._fill_classes)
        self.points_picker.layer_changed.connect(lambda *_: self._default_source())
        self.flow.layer_changed.connect(self._on_role)
        self.flow.lattice_changed.connect(self._on_lattice)
        self.flow.model_changed.connect(self._set_buttons)
        self.job.finished.connect(self._preview_timer.start)
        self._fill_classes()
        self._default_source()
        if self.flow.lattice is not None:
            self._on_lattice(self.flow.lattice)
        self._set_buttons()
        self._preview_timer.start()
        self.flow.register(self.dock_name, self)

    @property
    def model(self):
        """The viewer's current model (trained here, by Run pipeline, loaded, or from a project)."""
        return self.flow.model

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        self._setting = True
        try:
            set_widget_values(self._inputs, state)
        finally:
            self._setting = False
        self._window_chosen = self._source_chosen = True

    # ------------------------------------------------------------ defaults from the workflow
    def _on_role(self, role: str, _layer) -> None:
        if role == "map":
            self._default_source()

    def _on_window_typed(self, *_args) -> None:
        if not self._setting:
            self._window_chosen = True

    def _on_lattice(self, lattice) -> None:
        """Detect found the lattice: the window defaults to about three atom spacings."""
        if lattice is None or not getattr(lattice, "found", False) or self._window_chosen:
            return
        from ..detect.lattice import scale_defaults

        self._setting = True
        try:
            self.window_spin.setValue(int(scale_defaults(lattice.spacing)["window"]))
        finally:
            self._setting = False

    def _default_source(self) -> None:
        """Windows from the atom probability map when one exists for atom sites, else from the image."""
        if self._source_chosen:
            return
        points = self.points_picker.layer()
        atoms = points is not None and ("kind" not in points.features
                                        or points.features["kind"].astype(str).eq("atom").any())
        wanted = "atom probability" if self.flow.layer("map") is not None and atoms else "image"
        self.source_combo.blockSignals(True)
        self.source_combo.setCurrentText(wanted)
        self.source_combo.blockSignals(False)

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

    def source(self, windows_from: str | None = None) -> np.ndarray:
        """The (T, Y, X) image the windows are cut from: the atom probability map or the movie."""
        windows_from = windows_from or SOURCES[self.source_combo.currentText()]
        if windows_from == "map":
            layer = self.flow.layer("map")
            if layer is None:
                raise ValueError("no atom probability map: run Detect with method auto or model, "
                                 "or choose windows from: image")
        else:
            layer = self.image_picker.layer()
            if layer is None:
                raise ValueError("choose the movie (image) first")
        movie = np.asarray(layer.data, dtype=np.float32)
        if movie.ndim not in (2, 3):
            raise ValueError(f"image {layer.name!r} has shape {movie.shape}; expected (T, Y, X) or (Y, X)")
        return movie

    def inputs(self, windows_from: str | None = None):
        """(image the windows are cut from (T, Y, X), sites table); raises ValueError when missing."""
        points = self.points_picker.layer()
        if points is None:
            raise ValueError("choose a points layer of sites (run Detect first)")
        movie = self.source(windows_from)
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
            "pixel_fraction": self.pixel_fraction.value(), "windows_from": SOURCES[self.source_combo.currentText()],
        }

    def update_preview(self) -> None:
        """Show a few windows at the chosen size around random sites of the first frame."""
        try:
            from .. import patches  # noqa: F401
        except ImportError:  # the model engine is not part of this installation
            self.status.setText("napari_rvae.patches / vae are not installed: training is unavailable")
            return
        if self.points_picker.layer() is None or (self.source_combo.currentText() == "image"
                                                  and self.image_picker.layer() is None):
            return
        if self.job.running:  # the layers change as training starts: cutting windows in the GUI thread then
            return  # would only stall it (tens of ms); the preview follows when the job is done
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
        settings = self.settings()
        movie, sites = self.inputs(settings["windows_from"])
        self.trainer, self._sites_layer = None, self.points_picker.layer()
        self._movie, self._sites, self._settings = movie, sites, settings
        self.loss_plot.set_history([])
        self.status.setText("cutting windows…")
        worker = self.job.start(train_job, movie, sites, settings, None, self.epochs_spin.value(),
                                stop=self._request_stop, total=(self.epochs_spin.value() or DOCK_EPOCHS) + 1)
        self._set_buttons()
        return worker

    def continue_training(self):
        if self.trainer is None:
            raise ValueError("nothing to continue: press Train first")
        worker = self.job.start(train_job, self._movie, self._sites, {}, self.trainer, self.epochs_spin.value(),
                                stop=self._request_stop, total=self.epochs_spin.value() or DOCK_EPOCHS)
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
        movie, sites = self.inputs(model_source(self.model))
        self._sites_layer = self.points_picker.layer()
        worker = self.job.start(encode_job, self.model, movie, sites, total=0)
        self._set_buttons()
        return worker

    def save_model_to(self, folder) -> str:
        """Save the workflow's current model, with its training history, into ``folder``."""
        from ._project import save_current_model

        # trained here: the optimizer's state goes along, so training can resume exactly
        trainer = self.trainer if self.trainer is not None and self.trainer.model is self.model else None
        path = save_current_model(self.flow, folder, trainer=trainer)
        self.status.setText(f"model saved in {path} ({len(getattr(self.model, 'history', []) or [])} epochs of history)")
        return path

    def load_model_from(self, folder):
        """Load a saved model in the background (torch never loads in the GUI thread); returns the worker."""
        from ._project import load_vae_job

        self._loading = str(folder)
        worker = self.load_job.start(load_vae_job, folder, total=0)
        self._set_buttons()
        return worker

    def _on_loaded(self, model) -> None:
        from ..vae import train_state

        folder = getattr(self, "_loading", "")
        self.trainer = None
        self.flow.set_model(model, origin=f"loaded from {folder}")
        self.loss_plot.set_history(getattr(model, "history", []))
        self.show_model_settings(model)
        self.status.setText(f"model loaded from {folder} ({train_state(model).epoch} epochs); press Encode sites")
        self._set_buttons()

    def show_model_settings(self, model) -> None:
        """Set the window, model and latent boxes (and where windows come from) to ``model``'s."""
        self._setting = True
        try:
            self.window_spin.setValue(int(model.config.window[-1]))
            self.arch_combo.setCurrentText(model.config.arch)
            self.latent_spin.setValue(int(model.config.latent))
            source = model_source(model)
            if source in SOURCES.values():
                self.source_combo.setCurrentText(next(k for k, v in SOURCES.items() if v == source))
        finally:
            self._setting = False

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
            _, self.trainer, report, epochs = item
            self.job.set_total(epochs + 1)
            model = self.trainer.model
            model.training_settings = {k: v for k, v in self._settings.items()}
            # the model carries the trainer's own history list: saved at any time, it is complete
            self.flow.set_model(model, history=self.trainer.state.history, origin="Train VAE")
            rounded = (model.normalisation or {}).get("round_columns") or {}
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
        _, table, report, *rest = result
        check = rest[0] if rest else None
        layer = self._sites_layer
        if layer is None or layer not in self.viewer.layers or len(layer.data) != len(table):
            raise ValueError("the points layer changed during training; press Encode sites")
        names = [c for c in table.columns if c in latent_columns(table) or c.endswith("_sigma")]
        write_columns(layer, table, names)
        self.flow.set_layer("sites", layer)
        settings = getattr(self.model, "training_settings", {}) or {}
        if check is not None:  # saved with the model and in the project record
            settings["latent_check"] = check.to_dict()
        self.flow.note("train", {"settings": settings, "sites": layer.name, "epochs": len(getattr(self.model, "history", []) or []),
                                 "windows": report.summary()})
        done = f"{report.summary()}; latents written to '{layer.name}' ({', '.join(latent_columns(table))})"
        self.status.setText(say_latent_check(check, done))

    def _on_error(self, err) -> None:
        """Show why training stopped in the dock; after a divergence the model is the last good epoch's
        (the trainer put it back), so Save model never writes NaN weights."""
        self.status.setText(f"training stopped: {' '.join(str(err).split())}")

    def _on_finish(self) -> None:
        self._set_buttons()

    def _set_buttons(self, *_args) -> None:
        running = self.job.running or self.load_job.running
        self.train_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.continue_button.setEnabled(not running and self.trainer is not None)
        self.encode_button.setEnabled(not running and self.model is not None)
        self.save_button.setEnabled(self.model is not None)
