"""Segment & label dock: paint a few labels, train a U-Net in the background, predict, self-train.

Labels follow :mod:`napari_rvae.segment`: 0 unlabelled (ignored by the loss), 1 background,
2 … the classes. All training and prediction is done by the core; the dock makes the labels
layer, shows the loss, adds the probability / labels / uncertainty layers, and autosaves the
painted labels to a sidecar ``.npy`` so that a crash loses nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPlainTextEdit

from ..io.files import atomic_write, user_data_folder
from ._common import (LayerPicker, button, collapsible, dspin, form_label, scroll_body, set_widget_values, spin,
                      tip, widget_values)
from ._layers import LayerMaker, geometry
from ._dock import RvaeDock, StatusLabel, progress_bar
from ._state import PRODUCT_KEY
from ._workers import BackgroundJob, call_safely
from ._plots import LossPlot


def autosave_folder() -> Path:
    """Where painted labels are autosaved: ``$NAPARI_RVAE_AUTOSAVE`` or ``labels/`` in the user-data folder."""
    return Path(os.environ.get("NAPARI_RVAE_AUTOSAVE") or user_data_folder("labels"))


def train_job(images, labels, model, settings, trainer=None, epochs: int = 10):
    """Background job: build (or continue) a SegmenterTrainer and yield its per-epoch stats."""
    from ..segment import SegmenterTrainer, TrainSettings

    if trainer is None:
        trainer = SegmenterTrainer(images, labels, model=model, settings=TrainSettings(**settings))
        yield ("trainer", trainer)
    for stats in trainer.run(epochs):
        yield ("epoch", stats)
    return trainer


def predict_job(model, frames, uncertainty: bool):
    from ..segment import predict, predict_with_uncertainty

    if uncertainty:
        return predict_with_uncertainty(model, frames)
    return {"probs": predict(model, frames)}


class SegmentLabel(RvaeDock):
    """The dock."""

    dock_name = "segment"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.model = None
        self.trainer = None
        self.probs = None
        self._frames = None
        self.layers = LayerMaker(self)
        self.train_jobs = BackgroundJob("Training the segmenter", on_yield=self._on_train_yield,
                                        on_finish=self._set_buttons, parent=self)
        self.predict_jobs = BackgroundJob("Predicting", on_return=self._on_prediction, on_finish=self._set_buttons,
                                          parent=self)
        self.load_jobs = BackgroundJob("Loading the segmenter", on_return=self._on_loaded, on_finish=self._set_buttons,
                                       parent=self)
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Movie to segment (raw frames)",
                                        role="movie")
        self.labels_picker = LayerPicker(napari_viewer, (napari.layers.Labels,),
                                         "Painted labels: 1 background, 2 … classes", role="labels")
        self.classes_edit = tip(QLineEdit("atom"), "Class names after background, comma separated (label 2, 3, …)")
        self.epochs_spin = spin(10, 1, 100000, "Epochs per Train / Continue press")
        self.crop_spin = spin(64, 16, 1024, "Side of the training crops (pixels, multiple of 16)", step=16)
        self.steps_spin = spin(16, 1, 10000, "Optimiser steps per epoch")
        self.lr_spin = dspin(1e-3, 1e-6, 1.0, "Adam learning rate", 1e-4, 6)
        self.seed_spin = spin(0, 0, 2**31 - 1, "Random seed (crops, split, weights)")
        self.frames_edit = tip(QLineEdit(""), "Frames whose predictions become labels, e.g. '1, 3-5' (empty = current frame)")
        self.confidence = dspin(0.9, 0.5, 1.0, "Only pixels predicted with at least this probability become labels", 0.05, 2)
        self.loss_plot = LossPlot({"train_loss": ("train", 0), "val_loss": ("validation", 1)}, viewer=self.viewer)
        # a box of fixed height, not a label: the scores appearing after the first epoch then change no
        # layout (a re-layout resizes the loss plot and repaints the whole window, ~50 ms in software GL)
        self.quality = QPlainTextEdit()
        self.quality.setReadOnly(True)
        self.quality.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.quality.setPlaceholderText("held-out scores (IoU per class, confusion matrix) after the first epoch")
        self.quality.setToolTip("Scores on painted strokes held out from training (never trained on): IoU of each "
                                "class and the confusion matrix (rows: painted, columns: predicted)")
        self.quality.setStyleSheet("font-family: monospace;")
        lines = self.quality.fontMetrics().lineSpacing()
        self.quality.setFixedHeight(int(7.5 * lines) + 2 * self.quality.frameWidth() + 8)
        self.status = StatusLabel()
        self.new_button = button("New labels layer", "Add an empty labels layer the size of the movie to paint on", self.new_labels)
        self.train_button = button("Train", "Train a new U-Net from the painted labels", lambda: self.train(fine_tune=False))
        self.finetune_button = button("Fine-tune", "Continue training the current model on the (new) labels", lambda: self.train(fine_tune=True))
        self.stop_button = button("Stop", "Stop after the current step", self.train_jobs.stop)
        self.continue_button = button("Continue", "More epochs of the same training", self.continue_training)
        self.predict_frame_button = button("Predict frame", "Probabilities and labels of the current frame", lambda: self.predict(all_frames=False))
        self.predict_all_button = button("Predict all", "Probabilities, labels and uncertainty of every frame", lambda: self.predict(all_frames=True))
        self.accept_button = button("Accept as labels", "Confident predictions on the chosen frames become labels (self-training)", self.accept_predictions)
        self.save_button = button("Save…", "Save the segmenter (safetensors + model.json) into a folder", self.save_dialog)
        self.load_button = button("Load…", "Load a saved segmenter folder", self.load_dialog)

        form = QFormLayout()
        for label, widget in [("image", self.image_picker), ("labels", self.labels_picker), ("classes", self.classes_edit),
                              ("epochs", self.epochs_spin)]:
            form.addRow(form_label(label, widget.toolTip()), widget)
        advanced, _ = collapsible("Advanced", [(form_label(n, w.toolTip()), w) for n, w in [
            ("crop", self.crop_spin), ("steps / epoch", self.steps_spin), ("learning rate", self.lr_spin),
            ("seed", self.seed_spin), ("confidence", self.confidence)]])
        rows = [(self.new_button,), (self.train_button, self.finetune_button), (self.stop_button, self.continue_button),
                (self.predict_frame_button, self.predict_all_button), (self.save_button, self.load_button)]
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        for row in rows[:3]:
            box = QHBoxLayout()
            for b in row:
                box.addWidget(b)
            layout.addLayout(box)
        layout.addWidget(progress_bar(self.train_jobs, self.predict_jobs, self.load_jobs))
        layout.addWidget(self.loss_plot, stretch=1)
        layout.addWidget(self.quality)
        for row in rows[3:]:
            box = QHBoxLayout()
            for b in row:
                box.addWidget(b)
            layout.addLayout(box)
        accept = QHBoxLayout()
        accept.addWidget(self.frames_edit)
        accept.addWidget(self.accept_button)
        layout.addLayout(accept)
        layout.addWidget(self.status)

        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(1000)
        self._autosave_timer.timeout.connect(lambda: call_safely("Autosaving labels", self.autosave))
        self.labels_picker.layer_changed.connect(self._watch_labels)
        self._watched = None
        self._watch_labels(self.labels_picker.layer())
        self._set_buttons()
        self._inputs = {"classes": self.classes_edit, "epochs": self.epochs_spin, "crop": self.crop_spin,
                        "steps": self.steps_spin, "lr": self.lr_spin, "seed": self.seed_spin,
                        "confidence": self.confidence, "frames": self.frames_edit}
        self.flow.register(self.dock_name, self)

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)

    # ------------------------------------------------------------ labels
    def movie(self) -> np.ndarray:
        layer = self.image_picker.layer()
        if layer is None:
            raise ValueError("open a movie first")
        movie = np.asarray(layer.data, dtype=np.float32)
        if movie.ndim not in (2, 3):
            raise ValueError(f"image {layer.name!r} has shape {movie.shape}; expected (T, Y, X) or (Y, X)")
        return movie

    def class_names(self) -> list[str]:
        return ["background"] + [c.strip() for c in self.classes_edit.text().split(",") if c.strip()]

    def new_labels(self):
        """An empty labels layer over the movie; label 1 = background, 2 … = the named classes."""
        image = self.image_picker.layer()
        movie = self.movie()
        names = self.class_names()
        layer = self.layers.add("painted labels", "labels", np.zeros(movie.shape, dtype=np.int32),
                                name="painted labels", **geometry(image),
                                metadata={"classes": {i + 1: n for i, n in enumerate(names)},
                                          PRODUCT_KEY: "painted labels", "napari_rvae_role": "labels"})
        if layer is None:
            return None
        layer.selected_label = 2 if len(names) > 1 else 1
        self.labels_picker.set_layer(layer)
        self.status.setText("paint: " + ", ".join(f"{i + 1} = {n}" for i, n in enumerate(names)) + "; 0 = not labelled")
        return layer

    def _watch_labels(self, layer) -> None:
        if self._watched is not None:
            try:
                self._watched.events.paint.disconnect(self._on_paint)
            except Exception:
                pass
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._on_paint)

    def _on_paint(self, *_event) -> None:
        self._autosave_timer.start()

    def autosave_path(self, layer) -> Path:
        return autosave_folder() / f"{layer.name.replace(os.sep, '_')}.npy"

    def autosave(self) -> Path | None:
        """Write the painted labels atomically to the sidecar file; returns its path."""
        layer = self.labels_picker.layer()
        if layer is None:
            return None
        path = self.autosave_path(layer)
        data = np.asarray(layer.data)
        atomic_write(path, lambda p: Path(p).write_bytes(_npy_bytes(data)))
        self.status.setText(f"labels autosaved to {path}")
        return path

    # ---------------------------------------------------------- training
    def _labels(self) -> np.ndarray:
        layer = self.labels_picker.layer()
        if layer is None:
            raise ValueError("make a labels layer and paint a few pixels of each class first")
        labels = np.asarray(layer.data)
        if not (labels > 0).any():
            raise ValueError("no painted pixels yet: paint background (1) and at least one class (2)")
        return labels

    def settings(self) -> dict:
        return {"epochs": self.epochs_spin.value(), "crop": self.crop_spin.value(),
                "steps_per_epoch": self.steps_spin.value(), "lr": self.lr_spin.value(), "seed": self.seed_spin.value()}

    def train(self, fine_tune: bool = False):
        movie, labels = self.movie(), self._labels()
        if fine_tune and self.model is None:
            raise ValueError("no model to fine-tune: press Train first (or Load…)")
        self.trainer = None
        self.loss_plot.set_history([])
        worker = self.train_jobs.start(train_job, movie, labels, self.model if fine_tune else None, self.settings(),
                                       None, self.epochs_spin.value(), stop=self._request_stop,
                                       total=self.epochs_spin.value())
        self._set_buttons()
        return worker

    def continue_training(self):
        if self.trainer is None:
            raise ValueError("nothing to continue: press Train first")
        worker = self.train_jobs.start(train_job, None, None, None, None, self.trainer, self.epochs_spin.value(),
                                       stop=self._request_stop, total=self.epochs_spin.value())
        self._set_buttons()
        return worker

    def _request_stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()

    def _on_train_yield(self, item) -> None:
        if item[0] == "trainer":
            self.trainer = item[1]
            self.model = self.flow.segmenter = self.trainer.model
        else:
            stats = item[1]
            self.loss_plot.add(stats)
            self.show_quality(stats)
            self.status.setText(f"epoch {stats['epoch']}: loss {stats['train_loss']:.4g}")

    def show_quality(self, stats: dict) -> None:
        """IoU per class and the confusion matrix on the held-out strokes, and whether to trust them."""
        from ..segment.validation import quality, report_lines

        matrix = stats.get("val_confusion")
        if not matrix:
            return
        names = self.class_names()
        n = len(matrix)
        names = (names + [f"label {c + 1}" for c in range(len(names), n)])[:n]
        held = getattr(self.trainer, "held_out", None)
        report = quality(np.asarray(matrix), names, held=held)
        self.validation = report
        lines = report_lines(report, names)
        self.quality.setPlainText("\n".join(lines))

    # -------------------------------------------------------- prediction
    def current_frame(self) -> int:
        layer = self.image_picker.layer()
        if layer is None or layer.ndim < 3:
            return 0
        return int(np.round(layer.world_to_data(self.viewer.dims.point)[0]))

    def predict(self, all_frames: bool = True):
        if self.model is None:
            raise ValueError("no segmenter yet: Train or Load… one")
        movie = self.movie()
        frames = movie if (all_frames or movie.ndim == 2) else movie[self.current_frame()][None]
        self._frames = None if all_frames or movie.ndim == 2 else self.current_frame()
        worker = self.predict_jobs.start(predict_job, self.model, frames, all_frames, total=0)
        self._set_buttons()
        return worker

    def _on_prediction(self, result: dict):
        """Show the prediction in steps (one layer per event-loop turn)."""
        image = self.image_picker.layer()
        probs = result["probs"]
        if self._frames is not None:  # one frame: place it in a full-length stack
            full = np.zeros((image.data.shape[0], *probs.shape[1:]), dtype=np.float32)
            full[self._frames] = probs[0]
            probs = full
        self.probs = probs
        names = self.class_names()
        kwargs = geometry(image)
        for c in range(1, probs.shape[1]):
            name = f"probability: {names[c] if c < len(names) else f'class {c + 1}'}"
            self._put(name, "image", np.ascontiguousarray(probs[:, c]), colormap="magma", contrast_limits=(0, 1),
                      blending="additive", **kwargs)
            yield
        self._put("predicted labels", "labels", (np.argmax(probs, axis=1) + 1).astype(np.int32), opacity=0.4, **kwargs)
        if "entropy" in result:
            yield
            self._put("uncertainty", "image", np.asarray(result["entropy"], dtype=np.float32), colormap="inferno",
                      visible=False, **kwargs)
        self.status.setText("prediction done" + (" (uncertainty layer: where to paint next)" if "entropy" in result else ""))

    def _put(self, name: str, kind: str, data, **kwargs) -> None:
        """Update this dock's own prediction layer in place; never someone else's layer of that name."""
        old = self.layers.previous(name)
        if old is not None and old.data.shape == np.shape(data):
            old.data = data
            return
        self.layers.add(name, kind, data, name=name, metadata={PRODUCT_KEY: "prediction"}, **kwargs)

    def accept_predictions(self) -> None:
        """Self-training: confident predictions on the chosen frames fill the unlabelled pixels."""
        from ..segment import labels_from_predictions

        if self.probs is None:
            raise ValueError("predict first")
        layer = self.labels_picker.layer() or self.new_labels()
        frames = parse_frames(self.frames_edit.text(), self.probs.shape[0]) or [self.current_frame()]
        new = labels_from_predictions(self.probs, frames, confidence=self.confidence.value())
        data = np.asarray(layer.data).copy()
        fill = (data == 0) & (new > 0)
        data[fill] = new[fill]
        layer.data = data
        self.autosave()
        self.status.setText(f"{int(fill.sum())} pixels on frame(s) {frames} accepted as labels; press Fine-tune")

    # ------------------------------------------------------------- files
    def save_to(self, folder) -> str:
        from ..segment import save_segmenter

        if self.model is None:
            raise ValueError("no segmenter to save")
        path = self.trainer.save(folder) if self.trainer is not None else save_segmenter(folder, self.model)
        self.status.setText(f"segmenter saved in {path}")
        return str(path)

    def load_from(self, folder):
        """Load a saved segmenter in the background; returns the worker."""
        self._loading = str(folder)
        worker = self.load_jobs.start(_load_segmenter, str(folder), total=0)
        self._set_buttons()
        return worker

    def _on_loaded(self, loaded) -> None:
        self.model, _config = loaded
        self.trainer = None
        self.flow.segmenter = self.model
        self.status.setText(f"segmenter loaded from {getattr(self, '_loading', '')}")
        self._set_buttons()

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to save the segmenter in")
        if folder:
            call_safely("Saving the segmenter", self.save_to, folder)

    def load_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Segmenter folder (model.json + model.safetensors)")
        if folder:
            call_safely("Loading the segmenter", self.load_from, folder)

    def _set_buttons(self, *_args) -> None:
        busy = self.train_jobs.running or self.predict_jobs.running or self.load_jobs.running
        self.train_button.setEnabled(not busy)
        self.finetune_button.setEnabled(not busy and self.model is not None)
        self.stop_button.setEnabled(self.train_jobs.running)
        self.continue_button.setEnabled(not busy and self.trainer is not None)
        for b in (self.predict_frame_button, self.predict_all_button):
            b.setEnabled(not busy and self.model is not None)
        self.save_button.setEnabled(self.model is not None)


def parse_frames(text: str, n_frames: int) -> list[int]:
    """'1, 3-5' → [1, 3, 4, 5]; raises ValueError for frames outside 0 … n_frames−1."""
    frames: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"frames: cannot read {part!r}; write e.g. '1, 3-5'") from None
        frames.extend(range(a, b + 1))
    bad = [f for f in frames if not 0 <= f < n_frames]
    if bad:
        raise ValueError(f"frames {bad} are outside the movie (0 … {n_frames - 1})")
    return sorted(set(frames))


def _load_segmenter(folder):
    from ..segment import load_segmenter

    return load_segmenter(folder)


def _npy_bytes(data: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, data, allow_pickle=False)
    return buffer.getvalue()
