"""Train the shipped default atom finder on the project's own synthetic lattices.

Usage::

    python -m napari_rvae.segment.train_default -o OUT_DIR [--minutes 20] [--seed 0]

Trains a small :class:`~.unet.UNet` (2 classes: 1 background, 2 atom) on
random graphene / square / perovskite-like images from
:mod:`.atom_lattices` (spacings 6–25 px, holes, contamination, dopants, noise),
with a cosine learning-rate decay over a wall-clock budget, then scores it on
held-out graphene frames and writes ``model.safetensors`` + ``model.json``
(with the full training record and the held-out scores) to ``OUT_DIR``.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .atom_lattices import make_atom_image, make_training_set
from .augment import Augment
from .evaluate import score_atoms
from .predict import predict
from .train import SegmenterTrainer, TrainSettings
from .unet import UNetConfig, count_parameters

DEFAULT_CONFIG = UNetConfig(n_classes=2, filters=8, depth=3, convs_per_level=[1, 2, 2], dilations=[2, 4, 6])


def heldout_scores(model, seed: int = 12345, n: int = 4) -> dict:
    """F1 at 2 px (threshold 0.5 + components + centroids) on held-out graphene frames with holes.

    Frames: 256², nearest-neighbour spacing 12 px, holes, noise; plus one
    perovskite frame at spacing 8 px and one square frame at 20 px.
    """
    rng = np.random.default_rng(seed)
    cases = [("graphene", 12.0, True)] * n + [("perovskite", 8.0, False), ("square", 20.0, False)]
    out = []
    for kind, spacing, holes in cases:
        d = make_atom_image(rng, (256, 256), kind=kind, spacing=spacing, holes=holes, contamination=False)
        prob = predict(model, d["image"])[0, 1]
        s = score_atoms(prob, d["positions"], tol=2.0)
        in_holes = int(np.sum((prob >= 0.5) & d["hole_mask"]))
        out.append({"kind": kind, "spacing_px": spacing, "f1": round(s["f1"], 4), "fp": s["fp"], "fn": s["fn"],
                    "n_true": s["tp"] + s["fn"], "rmse_px": round(s["rmse"], 3), "atom_pixels_in_holes": in_holes})
    return {"frames": out, "graphene_f1_min": min(r["f1"] for r in out if r["kind"] == "graphene")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget")
    parser.add_argument("--images", type=int, default=400, help="synthetic training images (192×192)")
    parser.add_argument("--steps", type=int, default=100, help="optimisation steps per epoch")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=96, help="training crop side (pixels)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay to 2 %)")
    parser.add_argument("--init", type=Path, default=None, help="continue training this saved model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    images, labels = make_training_set(args.images, (192, 192), seed=args.seed)
    settings = TrainSettings(
        epochs=1, crop=args.crop, batch=args.batch, steps_per_epoch=args.steps, lr=args.lr, val_fraction=0.05,
        class_weighting=False, seed=args.seed,
        augment=Augment(zoom=(0.75, 1.33), noise_gauss=0.05, noise_poisson=(10.0, 300.0), blur=0.8,
                        contrast=(0.7, 1.4), gradient=0.3),
    )
    model, previous = None, []
    if args.init is not None:
        from .train import load_segmenter

        model, old = load_segmenter(args.init)
        previous = [{"record": old.get("default_record", {}), "training": old.get("training", {})}]
    trainer = SegmenterTrainer(images, labels, model=model, config=DEFAULT_CONFIG, settings=settings)
    budget = args.minutes * 60.0
    t_train = time.perf_counter()
    epoch_s = None
    for epoch in range(args.max_epochs):
        elapsed = time.perf_counter() - t_train
        if epoch_s is not None and elapsed + epoch_s > budget:
            break
        frac = min(1.0, elapsed / budget)
        for group in trainer.optimizer.param_groups:
            group["lr"] = settings.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        stats = list(trainer.run(1))[-1]
        stats["lr"] = trainer.optimizer.param_groups[0]["lr"]
        trainer.state.history[-1]["lr"] = stats["lr"]
        epoch_s = stats["seconds"] if epoch_s is None else 0.8 * epoch_s + 0.2 * stats["seconds"]
        print(f"epoch {stats['epoch']:3d}  loss {stats['train_loss']:.4f}  val_loss {stats['val_loss']:.4f}  "
              f"val_iou {stats['val_iou']:.4f}  lr {stats['lr']:.2e}  {stats['seconds']:.1f}s", flush=True)
    train_s = time.perf_counter() - t_train
    scores = heldout_scores(trainer.model)
    print("held-out:", scores, flush=True)
    record = {
        "script": "python -m napari_rvae.segment.train_default " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"atom_lattices.make_training_set({args.images}, (192, 192), seed={args.seed})",
        "n_parameters": count_parameters(trainer.model),
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
        "heldout": scores,
        "previous_runs": previous,
    }
    trainer.save(args.output, extra={"name": "atoms-default", "description":
                 "atom finder trained only on napari-rvae synthetic lattices; labels 1 background, 2 atom",
                 "default_record": record, "recommended_spacing_px": [6, 25],
                 "rescale_hint": "for atoms much closer than 6 px or farther than 25 px, predict with rescale ≈ 12 / spacing_px"})
    print(f"saved {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
