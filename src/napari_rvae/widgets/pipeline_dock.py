"""Run pipeline dock: one button from a movie to coloured atoms and a filled latent explorer.

Runs :func:`napari_rvae.pipeline.iter_pipeline` in the background: the lattice, the
atoms (the shipped atom finder), windows (from the atom probability map by default,
their size from the atom spacing), rVAE, every site encoded. The sites become a Points layer whose features hold ``angle, dx, dy, z0 …``
(an existing layer is never replaced without asking), the model becomes the
workflow's current model (so it can be saved, with its history), and the sites are
coloured by angle.
"""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel

from ._common import (LayerPicker, button, form_label, say_latent_check, scroll_body, set_widget_values, spin,
                      tip, widget_values)
from ._layers import LayerMaker, geometry
from ._dock import RvaeDock, progress_bar
from ._state import MAP_NAME, PRODUCT_KEY
from ._workers import BackgroundJob
from ._plots import LossPlot

SITES_LAYER = "sites"
SOURCES = {"atom probability": "map", "image": "image"}  # -> PipelineSettings.windows_from


class RunPipeline(RvaeDock):
    """The dock."""

    dock_name = "run pipeline"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.trainer = None
        self.result = None
        self.layers = LayerMaker(self)
        self.link = self.flow
        self.job = BackgroundJob("Running the pipeline", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, parent=self)
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Raw movie (atoms bright or dark)",
                                        role="movie")
        self.source_combo = tip(QComboBox(), "Cut the windows from the shipped atom finder's probability map "
                                "(papers 000/001) or from the raw image")
        self.source_combo.addItems(list(SOURCES))
        self.window_spin = spin(0, 0, 256, "Window size in pixels; auto = about three atom spacings of the "
                                "lattice found (24 px for the graphene sample)", suffix=" px")
        self.window_spin.setSpecialValueText("auto")
        self.epochs_spin = spin(0, 0, 100000, "Training epochs; auto: 12, or more where the windows are few (at "
                                "least 1 200 optimiser steps: a single image needs them)")
        self.epochs_spin.setSpecialValueText("auto")
        self.arch_combo = tip(QComboBox(), "Model: rVAE (angle + shift + content), skip-rVAE, shift-VAE or plain VAE")
        self.arch_combo.addItems(["rvae", "skip-rvae", "shift-vae", "vae"])
        self.run_button = button("Run pipeline", "Detect atoms, cut windows, train the model and encode every site", self.run)
        self.stop_button = button("Stop", "Stop training now and encode with the model so far", self.stop)
        self.loss_plot = LossPlot(viewer=self.viewer)
        self.status = QLabel("Press Run pipeline.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        for label, widget in [("movie", self.image_picker), ("windows from", self.source_combo),
                              ("window", self.window_spin), ("epochs", self.epochs_spin), ("model", self.arch_combo)]:
            form.addRow(form_label(label, widget.toolTip()), widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(progress_bar(self.job))
        layout.addWidget(self.loss_plot, stretch=1)
        layout.addWidget(self.status)
        self.job.errored.connect(self._on_error)
        self._inputs = {"windows_from": self.source_combo, "window": self.window_spin, "epochs": self.epochs_spin,
                        "model": self.arch_combo}
        self._set_buttons()
        self.flow.register(self.dock_name, self)

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)

    def _on_error(self, err) -> None:
        """Say in the dock why the run stopped (the notification may be missed)."""
        self.status.setText(f"stopped: {' '.join(str(err).split())}")

    def settings(self):
        from ..pipeline import demo_settings

        epochs = {"epochs": self.epochs_spin.value()} if self.epochs_spin.value() else {}  # 0: auto
        return demo_settings(window=self.window_spin.value() or None, **epochs,
                             arch=self.arch_combo.currentText(), windows_from=SOURCES[self.source_combo.currentText()],
                             leave_core_for_gui=True)

    def run(self):
        """Start the pipeline on the chosen movie; returns the worker."""
        from ..pipeline import iter_pipeline

        layer = self.image_picker.layer()
        if layer is None:
            raise ValueError("open a movie first (File > Open Sample > napari-rvae > Graphene movie)")
        movie = np.asarray(layer.data, dtype=np.float32)
        self._image = layer
        self.trainer = None
        self.loss_plot.set_history([])
        settings = self.settings()
        worker = self.job.start(iter_pipeline, movie, settings, stop=self._request_stop, total=settings.epochs + settings.warmup_epochs + 9)
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
        elif kind == "plan":  # the epochs are known once the windows are cut
            self.job.set_total(item[1]["epochs"] + item[1]["warmup_epochs"] + 9)
        elif kind == "trainer":
            self.trainer = item[1]
            self.flow.set_model(self.trainer.model, history=self.trainer.state.history, origin="Run pipeline")
        elif kind == "epoch":
            stats = item[1]
            self.loss_plot.add(stats)
            self.status.setText(f"training: epoch {stats['epoch']}, loss {stats['train_loss']:.4g}")

    def _on_return(self, result):
        """Show the result in steps (one layer per event-loop turn)."""
        from dataclasses import asdict

        self.result = result
        image = self._image
        record = dict(result.sites.attrs.get("detection") or {})
        if result.lattice:
            from ..detect.lattice import Lattice

            self.flow.set_lattice(Lattice.from_dict(result.lattice))
        probability = result.probability
        if probability is not None:
            data = probability if image.ndim == 3 else probability[0]
            made = self.layers.add("map", "image", data, name=MAP_NAME, colormap="inferno", opacity=0.5,
                                   blending="additive", contrast_limits=(0.0, 1.0),
                                   metadata={PRODUCT_KEY: "map", "napari_rvae_role": "map"}, **geometry(image))
            if made is not None:
                self.flow.set_layer("map", made)
            yield
        table = result.sites
        data = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        if image.ndim == 2:
            data = data[:, 1:]
        layer = self.layers.add("sites", "points", data, name=SITES_LAYER, features=table.reset_index(drop=True),
                                size=4, border_width=0, metadata={PRODUCT_KEY: "sites", "napari_rvae_role": "sites"},
                                **geometry(image, data.shape[1]))
        model = result.model
        model.training_settings = asdict(result.settings)
        self.flow.set_model(model, history=list(result.history), origin="Run pipeline")
        check = getattr(result, "check", None)
        if check is not None:
            model.training_settings["latent_check"] = check.to_dict()
        self.flow.note("run pipeline", {"settings": model.training_settings, "timings_s": result.timings,
                                        "detection": record, "n_sites": int(len(table))})
        if layer is None:
            self.status.setText("the new sites were not added (cancelled); the model is kept: Save model or project")
            return
        self.flow.set_layer("sites", layer)
        yield
        self._colour_sites(layer)
        seconds = result.timings.get("total_s", float("nan"))
        findings = record.get("findings") or []
        self.status.setText(say_latent_check(check, f"done in {seconds:.0f} s: {len(table)} sites, latents in layer "
                                                     f"'{layer.name}'. Click the latent explorer's plot to decode."
                                                     + (" Check: " + " | ".join(findings) if findings else "")))

    def _colour_sites(self, layer) -> None:
        """Colour the new sites by angle (or z0)."""
        from . import _colours as colours

        column = "angle" if "angle" in layer.features else "z0"
        scale = colours.colour_scale(layer.features, column, symmetry=self.flow.angle_symmetry())
        layer.face_color = colours.row_colours(layer.features, scale)

    def _on_finish(self) -> None:
        self._set_buttons()

    def _set_buttons(self) -> None:
        self.run_button.setEnabled(not self.job.running)
        self.stop_button.setEnabled(self.job.running)
