"""Train a U-Net from sparse painted labels (napari's Labels convention).

Label values: ``0`` = unlabelled (ignored by the loss), ``1`` = background,
``2 …`` = classes. Network channel ``c`` predicts label ``c + 1``.

Training is a generator of per-epoch statistics so a command line loop and a
Qt ``thread_worker`` share the same code::

    trainer = SegmenterTrainer(frames, labels, settings=TrainSettings(epochs=20))
    for stats in trainer.run():
        print(stats["epoch"], stats["train_loss"], stats["val_iou"])
    trainer.save("my_model")

``trainer.stop()`` (from any thread) ends training after the current batch;
``trainer.run()`` again continues where it stopped. Pass ``model=`` (e.g. from
:func:`load_segmenter`) to fine-tune an existing model.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..io.files import load_model_files, save_model_files
from .augment import Augment, labelled_pixels, normalise_frame, random_crops
from .unet import UNet, UNetConfig
from .validation import confusion, quality, split_strokes, tiles_with

KIND = "segmenter"
NORMALISATION = "per-frame: 1st/99th percentiles -> 0/1, NaN -> median (segment.augment.normalise_frame)"


@dataclass
class TrainSettings:
    """How to train (all lengths in pixels).

    epochs : epochs per call of :meth:`SegmenterTrainer.run`.
    crop : side of the square training crops (multiple of ``2**depth``).
    batch : crops per optimisation step; steps_per_epoch : steps per epoch.
    lr : Adam learning rate. val_fraction : share of each class's painted pixels held out for
    validation, as whole strokes (see :mod:`.validation`).
    class_weighting : weight the loss by inverse class frequency (clipped to 10×).
    seed : random seed (crops, split, initial weights).
    """

    epochs: int = 20
    crop: int = 64
    batch: int = 8
    steps_per_epoch: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.2
    class_weighting: bool = True
    seed: int = 0
    augment: Augment = field(default_factory=Augment)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict()
        return d


@dataclass
class TrainingState:
    """What a progress display needs; ``stop_requested`` is honoured after the current batch."""

    status: str = "idle"  # idle | running | stopped | finished
    epoch: int = 0
    history: list = field(default_factory=list)
    stop_requested: bool = False


def sparse_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over labelled pixels only.

    Parameters
    ----------
    logits : (B, C, H, W) tensor
    labels : (B, H, W) integer tensor, napari convention (0 ignored, 1 … C).
    weights : (C,) tensor, optional class weights.

    Pixels with label 0 contribute neither to the value nor to the gradient.
    """
    target = labels.long() - 1  # label 0 -> -1 (ignored)
    if not bool((target >= 0).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weights, ignore_index=-1)


def _as_stack(images, labels) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3 and images.shape[-1] in (3, 4) and images.shape[0] > 4:
        raise ValueError(f"images of shape {images.shape} look like RGB; convert to grey-scale (Y, X) or (T, Y, X)")
    if images.ndim == 2:
        images = images[None]
    if labels.ndim == 2:
        labels = labels[None]
    if images.ndim != 3:
        raise ValueError(f"images must be (Y, X) or (T, Y, X), got shape {images.shape}")
    if labels.shape != images.shape:
        raise ValueError(f"labels shape {labels.shape} does not match images shape {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError("labels must be integers (0 unlabelled, 1 background, 2… classes)")
        labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError("labels must be >= 0 (0 unlabelled, 1 background, 2… classes)")
    if labels.max() < 1:
        raise ValueError("labels contain no labelled pixel (all 0); paint some background (1) and class (2…) strokes")
    return images, labels.astype(np.int64)


class SegmenterTrainer:
    """Trains (or fine-tunes) a :class:`UNet` on frames with sparse labels.

    Parameters
    ----------
    images : (Y, X) or (T, Y, X) array
        Raw frames (each normalised per frame, see ``normalise_frame``).
    labels : same shape, integers
        0 unlabelled, 1 background, 2 … classes (frames without labels are fine).
    model : UNet, optional
        Existing model to fine-tune; its number of classes must cover the labels.
    config : UNetConfig, optional
        Architecture of a new model (``n_classes`` defaults to ``labels.max()``).
    settings : TrainSettings, optional
    """

    def __init__(self, images, labels, *, model: UNet | None = None, config: UNetConfig | None = None,
                 settings: TrainSettings | None = None):
        images, labels = _as_stack(images, labels)
        self.settings = settings = settings or TrainSettings()
        n_labels = int(labels.max())
        if model is None:
            config = config or UNetConfig(n_classes=max(2, n_labels))
            torch.manual_seed(settings.seed)
            model = UNet(config)
        n_classes = model.config.n_classes
        if n_labels > n_classes:
            raise ValueError(
                f"the model predicts {n_classes} classes (labels 1…{n_classes}) but the labels contain value "
                f"{n_labels}; train a new model with at least {n_labels} classes"
            )
        if settings.crop % model.config.multiple:
            raise ValueError(f"crop ({settings.crop}) must be a multiple of {model.config.multiple} for this model")
        self.model = model
        model.predict_tile = settings.crop  # predict on tiles like the ones it is trained on
        self.frames = np.stack([normalise_frame(f, i) for i, f in enumerate(images)]).astype(np.float32)
        self.rng = np.random.default_rng(settings.seed)
        # whole painted strokes are held out (not squares next to training pixels): see segment.validation
        train_labels, self.val_labels, self.held_out = split_strokes(labels, settings.val_fraction, self.rng)
        self.val_blocks = tiles_with(self.val_labels, settings.crop)
        self.train_labels = train_labels
        self._pixels = labelled_pixels(train_labels)
        counts = np.bincount(train_labels[train_labels > 0] - 1, minlength=n_classes).astype(np.float64)
        if settings.class_weighting and counts.sum() > 0:
            w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
            w = np.clip(w, 0.1, 10.0)
            self.class_weights = torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)
        else:
            self.class_weights = None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.state = TrainingState()
        self._val_batch = self._make_val_batch()

    def _make_val_batch(self):
        if not self.val_blocks:
            return None
        c = self.settings.crop
        imgs, labs = [], []
        for t, y0, x0 in self.val_blocks:
            img = self.frames[t, y0 : y0 + c, x0 : x0 + c]
            lab = self.val_labels[t, y0 : y0 + c, x0 : x0 + c]
            pad = ((0, c - img.shape[0]), (0, c - img.shape[1]))
            imgs.append(np.pad(img, pad, mode="reflect") if img.shape != (c, c) else img)
            labs.append(np.pad(lab, pad) if lab.shape != (c, c) else lab)
        return torch.from_numpy(np.stack(imgs)[:, None].copy()), torch.from_numpy(np.stack(labs).copy())

    def snapshot(self) -> UNet:
        """A frozen copy of the current model (eval mode); collect a few at different epochs for a
        snapshot ensemble (``predict_with_uncertainty([snap1, snap2, …], frames)``)."""
        import copy

        snap = copy.deepcopy(self.model).eval()
        for p in snap.parameters():
            p.requires_grad_(False)
        return snap

    def stop(self) -> None:
        """Ask the running loop to stop after the current batch (thread-safe flag)."""
        self.state.stop_requested = True

    def validate(self) -> dict:
        """Scores on the held-out strokes: loss, pixel accuracy, mean IoU, and per class the IoU,
        the confusion matrix and whether the held-out set is big enough to trust
        (:func:`~napari_rvae.segment.validation.quality`)."""
        n = self.model.config.n_classes
        if self._val_batch is None:
            report = quality(np.zeros((n, n)), held=self.held_out)
            return {"val_loss": float("nan"), "val_accuracy": float("nan"), "val_iou": float("nan"),
                    "val_iou_per_class": report["iou"], "val_confusion": report["confusion"],
                    "val_pixels": report["pixels"], "val_trusted": False, "val_note": report["note"]}
        x, y = self._val_batch
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(x)
            loss = float(sparse_cross_entropy(logits, y, self.class_weights))
        pred = logits.argmax(1).numpy() + 1
        report = quality(confusion(pred, y.numpy(), n), held=self.held_out)
        return {"val_loss": loss, "val_accuracy": report["accuracy"], "val_iou": report["mean_iou"],
                "val_iou_per_class": report["iou"], "val_confusion": report["confusion"],
                "val_pixels": report["pixels"], "val_trusted": report["trusted"], "val_note": report["note"]}

    def run(self, epochs: int | None = None) -> Iterator[dict]:
        """Train ``epochs`` more epochs (default ``settings.epochs``), yielding one stats dict per epoch.

        Keys: ``epoch, train_loss, val_loss, val_accuracy, val_iou, seconds, stopped``.
        """
        s = self.settings
        epochs = s.epochs if epochs is None else int(epochs)
        if self.state.stop_requested:  # Stop pressed before this run began: honour it, ready for Continue
            self.state.stop_requested = False
            self.state.status = "stopped"
            return
        self.state.status = "running"
        try:
            for _ in range(epochs):
                t0 = time.perf_counter()
                self.model.train()
                losses = []
                for _step in range(s.steps_per_epoch):
                    if self.state.stop_requested:
                        break
                    img, lab = random_crops(self.frames, self.train_labels, s.batch, s.crop, s.augment, self.rng,
                                            self._pixels)
                    logits = self.model(torch.from_numpy(img)[:, None])
                    loss = sparse_cross_entropy(logits, torch.from_numpy(lab), self.class_weights)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    losses.append(loss.item())
                stopped = self.state.stop_requested
                if not losses:
                    break
                self.state.epoch += 1
                stats = {"epoch": self.state.epoch, "train_loss": float(np.mean(losses)), **self.validate(),
                         "seconds": round(time.perf_counter() - t0, 3), "stopped": bool(stopped)}
                self.state.history.append(stats)
                yield stats
                if stopped:
                    break
        finally:
            self.state.status = "stopped" if self.state.stop_requested else "finished"
            self.state.stop_requested = False
            self.model.eval()

    def save(self, folder, extra: dict | None = None):
        """Save the model with its training record (see :func:`save_segmenter`)."""
        record = {"settings": self.settings.to_dict(), "history": self.state.history}
        extra = {"predict_tile": self.settings.crop, **(extra or {})}
        return save_segmenter(folder, self.model, training=record, extra=extra)


def save_segmenter(folder, model: UNet, *, training: dict | None = None, extra: dict | None = None):
    """Write ``model.safetensors`` + ``model.json`` (kind ``"segmenter"``) atomically into ``folder``.

    ``extra`` may hold ``predict_tile``: the tile side (pixels) prediction should use by default — the
    training crop size, because a network trained on small crops can behave differently far from
    any image border (its dilated bottleneck saw mostly padding in training).
    """
    config = {
        "kind": KIND,
        "unet": model.config.to_dict(),
        "labels": {"0": "unlabelled (ignored)", "1": "background", **{str(c + 1): f"class {c + 1}" for c in range(1, model.config.n_classes)}},
        "normalisation": NORMALISATION,
        "training": training or {},
    }
    if extra:
        config.update(extra)
    return save_model_files(folder, model.state_dict(), config)


def load_segmenter(folder) -> tuple[UNet, dict]:
    """Load a segmenter saved by :func:`save_segmenter`; returns ``(model in eval mode, config dict)``.

    Raises ``ValueError`` for missing / corrupt / non-segmenter files.
    """
    tensors, config = load_model_files(folder, kind=KIND)
    if "unet" not in config:
        raise ValueError(f"{folder}: model.json has no 'unet' architecture entry")
    model = UNet(UNetConfig.from_dict(config["unet"]))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{folder}: weights do not match the architecture in model.json ({err})") from None
    model.eval()
    tile = config.get("predict_tile")
    if tile is not None:
        if not isinstance(tile, int) or tile < model.config.multiple:
            raise ValueError(f"{folder}: predict_tile in model.json must be an integer >= {model.config.multiple}")
        model.predict_tile = tile
    return model, config
