"""Train the shipped atom finder (``napari_rvae/segment/weights/atoms-default``).

    python scripts/atom_finder/train.py -o OUT_DIR [--minutes 60] [--threads 1] [--seed 0]

A U-Net (labels 1 background, 2 atom) trained on domain-randomised scenes from
``training_data.py`` at the network's input scale (the detector rescales each
frame to ``CANONICAL_SPACING`` first), with a cosine learning-rate decay over a
wall-clock budget. It is then scored on frames from generators it never saw
(``napari_rvae.synth.instrument.low_dose_graphene`` and the ferroic sample's
A + B columns), and ``model.safetensors`` + ``model.json`` (with the full
training record and the held-out scores) are written to ``OUT_DIR``. Copy the
folder over the shipped one to release it.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_data import CANONICAL_SPACING, make_training_set  # noqa: E402

from napari_rvae.segment.augment import Augment  # noqa: E402
from napari_rvae.segment.evaluate import atom_centroids, inside, match_points  # noqa: E402
from napari_rvae.segment.predict import predict  # noqa: E402
from napari_rvae.segment.train import SegmenterTrainer, TrainSettings  # noqa: E402
from napari_rvae.segment.unet import UNetConfig, count_parameters  # noqa: E402

CONFIG = UNetConfig(n_classes=2, filters=12, depth=3, convs_per_level=[1, 2, 2], dilations=[2, 4, 6])


def heldout_scores(model) -> dict:
    """F1 (match radius 0.2 × spacing, 10 px border ignored) of threshold-0.5 centroids of the atom
    probability, each frame rescaled to the canonical spacing from its true spacing."""
    from napari_rvae.synth import make_sample
    from napari_rvae.synth.instrument import low_dose_graphene

    rows = []
    for seed in range(1000, 1006):
        scene = low_dose_graphene(seed)
        rows.append(("low-dose graphene", seed, scene["image"], scene["positions"], scene["spacing"]))
    for seed, a in ((11, 18.0), (12, 26.0)):
        sample = make_sample("ferroic", seed=seed, a=a)
        atoms = np.vstack([np.column_stack([sample["asites"]["y"], sample["asites"]["x"]]),
                           np.column_stack([sample["bsites"]["y"], sample["bsites"]["x"]])])
        rows.append(("ferroic A+B", seed, sample["data"][0], atoms, a / np.sqrt(2)))
    out = []
    for name, seed, image, truth, spacing in rows:
        prob = predict(model, image, rescale=CANONICAL_SPACING / spacing)[0, 1]
        found = atom_centroids(prob)
        found, truth = found[inside(found, image.shape, 10)], truth[inside(truth, image.shape, 10)]
        s = match_points(found, truth, 0.2 * spacing)
        out.append({"frames": name, "seed": seed, "spacing_px": round(float(spacing), 2), "f1": round(s["f1"], 4),
                    "precision": round(s["precision"], 4), "recall": round(s["recall"], 4)})
    return {"frames": out, "f1_median": float(np.median([r["f1"] for r in out]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget")
    parser.add_argument("--images", type=int, default=800, help="synthetic training scenes (192×192)")
    parser.add_argument("--steps", type=int, default=100, help="optimisation steps per epoch")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=96, help="training crop side (pixels)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay to 2 %%)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--init", type=Path, default=None, help="continue from this saved model (its record is kept)")
    parser.add_argument("--cover", type=float, default=0.4, help="share of scenes with amorphous carbon / contamination")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    images, labels = make_training_set(args.images, (192, 192), seed=args.seed, cover=args.cover)
    print(f"{len(images)} scenes in {time.perf_counter() - t_start:.0f} s", flush=True)
    settings = TrainSettings(
        epochs=1, crop=args.crop, batch=args.batch, steps_per_epoch=args.steps, lr=args.lr, val_fraction=0.05,
        class_weighting=False, seed=args.seed,
        augment=Augment(zoom=(0.85, 1.18), noise_gauss=0.03, noise_poisson=None, blur=0.5, contrast=(0.8, 1.25),
                        gradient=0.2),
    )
    model, previous = None, []
    if args.init is not None:
        from napari_rvae.segment import load_segmenter

        model, old = load_segmenter(args.init)
        previous = [{"record": old.get("default_record", {}), "training": old.get("training", {})}]
    trainer = SegmenterTrainer(images, labels, model=model, config=None if model is not None else CONFIG,
                               settings=settings)
    budget = args.minutes * 60.0
    t_train = time.perf_counter()
    epoch_s = None
    for _ in range(args.max_epochs):
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
    trainer.save(args.output)  # the weights first: a failure in scoring must not lose the training
    scores = heldout_scores(trainer.model)
    print("held-out:", scores, flush=True)
    record = {
        "script": "python scripts/atom_finder/train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"scripts/atom_finder/training_data.make_training_set({args.images}, (192, 192), seed={args.seed}, "
                f"cover={args.cover})",
        "n_parameters": count_parameters(trainer.model),
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
        "heldout": scores,
        "previous_runs": previous,
    }
    trainer.save(args.output, extra={
        "name": "atoms-default",
        "description": "atom finder trained on domain-randomised synthetic STEM scenes; labels 1 background, 2 atom",
        "default_record": record, "canonical_spacing_px": CANONICAL_SPACING, "predict_tile": 512,
        "rescale_hint": "the detector rescales each frame by canonical_spacing_px / (estimated nearest-neighbour "
                        "spacing) before prediction"})
    print(f"saved {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
