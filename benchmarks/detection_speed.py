"""Detection time per frame with defaults, against an earlier version of the package in the same run.

    python benchmarks/detection_speed.py --baseline-src PATH/TO/OLD/src [--frames 10] [--size 512] [--rounds 3]

Both versions run ``detect_atoms(movie)`` with their defaults on the same graphene
movie (``napari-rvae sample graphene-movie``, 512² frames) in separate processes
with two threads, alternating rounds; the medians and their ratio are printed with
the CPU model and flags. Without ``--baseline-src`` only this version is timed.
Check out the baseline with ``git worktree add /tmp/baseline <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TIMER = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from napari_rvae.detect import detect_atoms
movie = np.load(sys.argv[1])
detect_atoms(movie[:1])  # warm-up: imports, model load
start = time.perf_counter()
sites = detect_atoms(movie)
seconds = time.perf_counter() - start
print(json.dumps({"per_frame_s": seconds / len(movie), "sites": int(len(sites))}))
"""


def cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in flags]
        return f"{model} ({', '.join(simd)}), {os.cpu_count()} cores"
    except (OSError, StopIteration):
        return "unknown CPU"


def time_once(src: Path | None, movie: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run([sys.executable, "-c", TIMER, str(movie)], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from napari_rvae.synth import make_sample

    with tempfile.TemporaryDirectory() as tmp:
        movie = Path(tmp) / "movie.npy"
        np.save(movie, make_sample("graphene-movie", seed=3, frames=args.frames, size=args.size)["data"])
        here = Path(__file__).resolve().parents[1] / "src"
        runs = {"this version": [], "baseline": []}
        for _ in range(args.rounds):
            runs["this version"].append(time_once(here, movie))
            if args.baseline_src is not None:
                runs["baseline"].append(time_once(args.baseline_src, movie))
    print(cpu())
    for name, rows in runs.items():
        if rows:
            per = [r["per_frame_s"] for r in rows]
            print(f"{name}: {np.median(per):.3f} s per {args.size}² frame (rounds {', '.join(f'{p:.3f}' for p in per)}), "
                  f"{rows[-1]['sites']} sites")
    if runs["baseline"]:
        ratio = np.median([r["per_frame_s"] for r in runs["this version"]]) / \
            np.median([r["per_frame_s"] for r in runs["baseline"]])
        print(f"ratio this version / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
