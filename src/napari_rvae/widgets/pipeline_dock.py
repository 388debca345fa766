"""Run pipeline dock: one button from a movie to coloured atoms and a filled latent explorer.

Runs :func:`napari_rvae.pipeline.iter_pipeline` (detect → windows → rVAE →
encode every site) in the background; the result becomes a "sites" Points
layer whose features hold ``angle, dx, dy, z0 …``, the model is handed to
the latent explorer, and the sites are coloured by angle.
"""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._common import LayerPicker, button, form_label, spin, tip
from ._model_link import model_link
from ._workers import BackgroundJob
from .train_vae import LossPlot

SITES_LAYER = "sites"


class RunPipeline(QWidget):
    """The dock."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.trainer = None
        self.result = None
        self.setMinimumSize(300, 360)
        self.link = model_link(napari_viewer)
        self.job = BackgroundJob("Running the pipeline", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, parent=self)
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Raw movie (bright atoms) to analyse")
        self.window_spin = spin(24, 4, 256, "Window size in pixels (paper 001: 24 for graphene)", suffix=" px")
        self.epochs_spin = spin(12, 1, 100000, "Training epochs")
        self.arch_combo = tip(QComboBox(), "Model: rVAE (angle + shift + content), skip-rVAE, shift-VAE or plain VAE")
        self.arch_combo.addItems(["rvae", "skip-rvae", "shift-vae", "vae"])
        self.run_button = button("Run pipeline", "Detect atoms, cut windows, train the model and encode every site", self.run)
        self.stop_button = button("Stop", "Stop training now and encode with the model so far", self.stop)
        self.loss_plot = LossPlot()
        self.status = QLabel("Press Run pipeline.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        for label, widget in [("movie", self.image_picker), ("window", self.window_spin), ("epochs", self.epochs_spin),
                              ("model", self.arch_combo)]:
            form.addRow(form_label(label, widget.toolTip()), widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.loss_plot, stretch=1)
        layout.addWidget(self.status)
        self.job.errored.connect(self._on_error)
        self._set_buttons()

    def _on_error(self, err) -> None:
        """Say in the dock why the run stopped (the notification may be missed)."""
        self.status.setText(f"stopped: {' '.join(str(err).split())}")

    def settings(self):
        from ..pipeline import demo_settings

        return demo_settings(window=self.window_spin.value(), epochs=self.epochs_spin.value(),
                             arch=self.arch_combo.currentText(), leave_core_for_gui=True)

    def run(self):
        """Start the pipeline on the chosen movie; returns the worker."""
        from ..pipeline import iter_pipeline

        layer = self.image_picker.layer()
        if layer is None:
            raise ValueError("open a movie first (File > Open Sample > napari-rvae > Graphene movie)")
        self._image = layer
        self.trainer = None
        self.loss_plot.set_history([])
        settings = self.settings()
        worker = self.job.start(iter_pipeline, np.asarray(layer.data, dtype=np.float32), settings,
                                stop=self._request_stop, total=settings.epochs + 5)
        self._set_buttons()
        return worker

    def stop(self) -> None:
        self.job.stop()

    def _request_stop(self) -> None:
        if self.trainer is not None:
            self.trainer.state.request_stop()
        elif self.job.worker is not None:
            self.job.worker.quit()

    def _on_yield(self, item) -> None:
        kind = item[0]
        if kind == "stage":
            self.status.setText(f"{item[1]}: {item[2]}")
        elif kind == "trainer":
            self.trainer = item[1]
            self.link.set_model(self.trainer.model)
        elif kind == "epoch":
            stats = item[1]
            self.loss_plot.add(stats)
            self.status.setText(f"training: epoch {stats['epoch']}, loss {stats['train_loss']:.4g}")

    def _on_return(self, result) -> None:
        self.result = result
        table = result.sites
        image = self._image
        data = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        if image.ndim == 2:
            data = data[:, 1:]
        if SITES_LAYER in self.viewer.layers:
            self.viewer.layers.remove(SITES_LAYER)
        extra = {"units": image.units} if hasattr(image, "units") else {}
        self.viewer.add_points(data, features=table.reset_index(drop=True), name=SITES_LAYER, size=4,
                               scale=image.scale, translate=image.translate, border_width=0, **extra)
        self.link.set_model(result.model)
        self._colour_sites()
        seconds = result.timings.get("total_s", float("nan"))
        self.status.setText(f"done in {seconds:.0f} s: {len(table)} sites, latents in layer '{SITES_LAYER}'. "
                            "Click the latent explorer's plot to decode.")

    def _colour_sites(self) -> None:
        """Colour the new sites by angle in the Colour atoms dock, if it is open (else directly)."""
        from . import _colours as colours

        layer = self.viewer.layers[SITES_LAYER]
        column = "angle" if "angle" in layer.features else "z0"
        layer.face_color = colours.row_colours(layer.features, colours.colour_scale(layer.features, column))

    def _on_finish(self) -> None:
        self._set_buttons()

    def _set_buttons(self) -> None:
        self.run_button.setEnabled(not self.job.running)
        self.stop_button.setEnabled(self.job.running)
