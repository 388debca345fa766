"""Work behind ``napari-rvae train-segmenter`` (kept here so ``cli.py`` stays a thin table)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def read_array(path: Path, what: str, channel: str | int | None = None) -> np.ndarray:
    """Read a ``.npy`` or ``.tif``/``.tiff`` array as stored (labels keep their integer type; never
    unpickles); other formats through ``io.movie``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{what} file {path}: not a plain numeric .npy array ({err})") from None
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    from ..io.movie import select_movie

    return np.asarray(select_movie(path, channel).data)


def train_segmenter_command(args: argparse.Namespace) -> int:
    """Train (or fine-tune) from IMAGE + LABELS, saving the model after every epoch."""
    from .._compute import set_torch_threads
    from .train import SegmenterTrainer, TrainSettings, load_segmenter
    from .unet import UNetConfig

    images = read_array(args.image, "image", getattr(args, "channel", None))
    labels = read_array(args.labels, "labels")
    if labels.shape != images.shape:
        raise ValueError(f"labels shape {labels.shape} does not match image shape {images.shape}")
    for name in ("epochs", "crop", "batch", "steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1")
    if not args.lr > 0:
        raise ValueError("--lr must be positive")
    set_torch_threads()
    model = None
    if args.fine_tune:
        if args.fine_tune == "default":
            from .default_model import load_default_atom_model

            model = load_default_atom_model()
        else:
            model, _ = load_segmenter(args.fine_tune)
    n_labels = int(np.max(labels)) if labels.size else 0
    n_classes = args.classes if args.classes is not None else max(2, n_labels)
    if n_classes < n_labels:
        raise ValueError(f"--classes {n_classes} is less than the largest label value {n_labels}")
    config = None if model is not None else UNetConfig(
        n_classes=n_classes, filters=args.filters, depth=args.depth, convs_per_level=[1] + [2] * (args.depth - 1))
    settings = TrainSettings(epochs=args.epochs, crop=args.crop, batch=args.batch, steps_per_epoch=args.steps,
                             lr=args.lr, val_fraction=args.val_fraction, seed=args.seed)
    trainer = SegmenterTrainer(images, labels, model=model, config=config, settings=settings)
    source = {"image": str(args.image), "labels": str(args.labels), "fine_tuned_from": args.fine_tune}
    try:
        for stats in trainer.run():
            print(f"epoch {stats['epoch']:3d}  loss {stats['train_loss']:.4f}  val_loss {stats['val_loss']:.4f}  "
                  f"val_iou {stats['val_iou']:.3f}  {stats['seconds']:.1f}s", flush=True)
            trainer.save(args.output, extra={"source": source})
    except KeyboardInterrupt:
        if trainer.state.history:
            print(f"interrupted; model of epoch {trainer.state.epoch} is saved in {args.output}")
        raise
    print(f"saved {args.output}")
    return 0
