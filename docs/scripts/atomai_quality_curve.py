"""AtomAI's rVAE quality after every epoch, on the benchmark data (run with AtomAI's own venv).

The issue's "time to AtomAI's 20-epoch quality" needs AtomAI's quality after 20 epochs. Its
baseline script measures the quality probe only after its (3-epoch) run, so this script trains
AtomAI 0.8.1's rVAE with its defaults (MLP 2×128 tanh, latent 2 + angle + dx/dy, Adam 1e-4) at
batch 100 on ``synth.make_patches(20000, seed=0)`` and, after each epoch, applies the same probe
as ``atomai_baseline.py``: k-NN(15) accuracy of the 4 structural variants from the content
latents, fitted on the first half of the windows and scored on the second.

Usage (from the project root, AtomAI installed as in ``../shared/bench/README.md``)::

    .venv-atomai/bin/python docs/scripts/atomai_quality_curve.py --epochs 20 --out atomai_curve.json

Quality does not depend on the machine's load, so this may run with one thread on a busy machine;
epoch times are recorded but only a quiet run's times compare with ``napari-rvae bench``.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bench-dir", default=os.path.join("..", "shared", "bench"),
                    help="folder holding the reference's synth.py")
    ap.add_argument("--out", default="atomai_quality_curve.json")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    sys.path.insert(0, os.path.abspath(args.bench_dir))
    import synth  # the reference's deterministic data generator
    from atomai_baseline import import_atomai  # the reference's own import (torchvision shim)
    aoi, _ = import_atomai()
    from sklearn.neighbors import KNeighborsClassifier

    X, meta = synth.make_patches(args.n, seed=0)
    half = len(X) // 2
    curve = []
    rvae = aoi.models.rVAE(X.shape[1:], latent_dim=2)
    original = rvae.train_epoch

    def probed_epoch():
        t = time.perf_counter()
        out = original()
        seconds = time.perf_counter() - t
        z_mean, _ = rvae.encode(X)
        zc = z_mean[:, 3:]
        knn = KNeighborsClassifier(15).fit(zc[:half], meta["variant"][:half])
        acc = float(knn.score(zc[half:], meta["variant"][half:]))
        curve.append({"epoch": len(curve) + 1, "epoch_s": round(seconds, 2), "knn15": round(acc, 4),
                      "train_loss": round(float(-out), 4)})
        print(json.dumps(curve[-1]), flush=True)
        with open(args.out, "w") as f:
            json.dump({"data_fingerprint": synth.fingerprint(X), "threads": args.threads,
                       "batch_size": args.batch_size, "atomai": getattr(aoi, "__version__", "?"),
                       "curve": curve}, f, indent=1)
        return out

    rvae.train_epoch = probed_epoch
    with tempfile.TemporaryDirectory() as scratch:
        rvae.fit(X, training_cycles=args.epochs, batch_size=args.batch_size,
                 filename=os.path.join(scratch, "rvae"))


if __name__ == "__main__":
    main()
