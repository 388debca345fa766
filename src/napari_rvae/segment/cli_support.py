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
    from ..io import limits

    suffix = path.suffix.lower()
    if suffix == ".npy":
        limits.check_npy(path)
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as err:
            raise ValueError(f"{what} file {path}: not a plain numeric .npy array ({err})") from None
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise ValueError(f"{what} file {path}: the TIFF holds no image")
                limits.check_tiff(tif, path)
                return tif.series[0].asarray()
        except (OSError, tifffile.TiffFileError) as err:
            raise ValueError(f"{what} file {path}: not a readable TIFF ({err})") from None
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
    if not (args.lr > 0 and np.isfinite(args.lr)):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    if not 0 <= args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if not 1 <= args.filters <= 256 or not 1 <= args.depth <= 8:
        raise ValueError(f"--filters must be 1..256 and --depth 1..8, got {args.filters} and {args.depth}")
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
    saved = 0
    try:
        for stats in trainer.run():
            print(f"epoch {stats['epoch']:3d}  loss {stats['train_loss']:.4f}  val_loss {stats['val_loss']:.4f}  "
                  f"val_iou {stats['val_iou']:.3f}  {stats['seconds']:.1f}s", flush=True)
            if not np.isfinite(stats["train_loss"]) or not all(bool(p.isfinite().all()) for p in trainer.model.parameters()):
                kept = f"the model of epoch {saved} is in {args.output}" if saved else f"nothing was saved to {args.output}"
                raise ValueError(f"training diverged in epoch {stats['epoch']}: the loss became {stats['train_loss']:g}; "
                                 f"{kept}. Lower the learning rate (--lr {args.lr:g})")
            trainer.save(args.output, extra={"source": source})
            saved = stats["epoch"]
    except KeyboardInterrupt:
        if trainer.state.history:
            print(f"interrupted; model of epoch {trainer.state.epoch} is saved in {args.output}")
        raise
    print(f"saved {args.output}")
    return 0
