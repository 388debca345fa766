"""AtomAI's rVAE inference timings, for ``napari-rvae bench`` (run by AtomAI's own Python).

Standalone: it imports only AtomAI, numpy and the reference benchmark's ``synth.py`` and
``atomai_baseline.py`` (for its torchvision shim), never napari_rvae. It times, on
``synth.make_patches(20000, 28, seed=0)`` and an rVAE with AtomAI 0.8.1's defaults (speed does
not depend on the weights): ``encode`` of all windows (best of 3, as the reference script),
one-point ``decode`` (median of 300 after 5 warm-ups), a batched 20 × 20 grid ``decode``
(median of 10) and ``manifold2d(d=20)`` (its 400 one-point decodes and figure; median of 3).

Usage: ``python atomai_inference.py --bench-dir ../shared/bench --threads 2 --out out.json``
"""

import argparse
import json
import os
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", required=True, help="folder holding the reference's synth.py")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from scipy.stats import norm

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sys.path.insert(0, os.path.abspath(args.bench_dir))
    import synth
    from atomai_baseline import import_atomai

    aoi, _ = import_atomai()
    x, _ = synth.make_patches(20000, seed=0)
    rvae = aoi.models.rVAE(x.shape[1:], latent_dim=2)

    def timed(fn, repeats: int, warmup: int = 0) -> list:
        for _ in range(warmup):
            fn()
        seconds = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t)
        return seconds

    def manifold2d():
        rvae.manifold2d(d=d, savefig=False)
        plt.close("all")

    d = 20
    grid = np.array([[a, b] for a in norm.ppf(np.linspace(0.95, 0.05, d)) for b in norm.ppf(np.linspace(0.05, 0.95, d))])
    enc = timed(lambda: rvae.encode(x), 3)
    single = timed(lambda: rvae.decode(np.zeros((1, 2))), 300, warmup=5)
    batched = timed(lambda: rvae.decode(grid), 10, warmup=1)
    manifold = timed(manifold2d, 3)
    out = {"atomai": getattr(aoi, "__version__", "?"), "threads": args.threads, "fingerprint": synth.fingerprint(x),
           "encode_windows_per_s": round(len(x) / min(enc)), "encode_n": len(x),
           "single_decode_ms_median": round(1e3 * float(np.median(single)), 3),
           "manifold20_batched_ms": round(1e3 * float(np.median(batched)), 1),
           "manifold2d_d20_s": round(float(np.median(manifold)), 3)}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
