"""Distributed training speed: one single-thread process vs ``torchrun`` with N single-thread ranks.

Same windows, same settings, same epochs (the distributed run keeps the global batch, see
``docs/distributed-training.md``). Both runs are the real command line (``napari-rvae train``,
then ``torchrun … -m napari_rvae.cli train --distributed``), each in its own processes with
``OMP_NUM_THREADS=1``. Reported per run: training samples/s (windows per second of the epochs'
training loops, from the model's history), the wall time of the whole command, and the final
train / test losses; then the ratios. The CPU model and flags and the load average before and
after go into the JSON: on a shared machine the ratio is only meaningful at low load.

    python -m benchmarks.ddp_speed -o ddp_speed.json            # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import subprocess_env


def oriented_blobs(n: int, width: int, seed: int = 1) -> np.ndarray:
    """``n`` windows ``(width, width)`` of an elongated Gaussian at a random angle plus noise:
    structure an rVAE learns (the angle) and a loss that falls over the epochs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:width, :width] - (width - 1) / 2
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    blob = np.exp(-(u / (width / 8)) ** 2 - (v / (width / 20)) ** 2)
    return (blob + 0.05 * rng.normal(size=blob.shape)).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_description() -> dict:
    info = {"processor": platform.processor(), "cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and "model" not in info:
            info["model"] = value.strip()
        if key.strip() == "flags" and "flags" not in info:
            info["flags"] = value.split()
    return info


def train_command(windows: Path, output: Path, *, ranks: int, epochs: int, batch: int, seed: int) -> list[str]:
    args = ["train", str(windows), "-o", str(output), "--epochs", str(epochs), "--batch", str(batch),
            "--seed", str(seed), "--threads", "1", "--device", "cpu", "--overwrite"]
    if ranks == 1:
        return [sys.executable, "-m", "napari_rvae.cli", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
            "-m", "napari_rvae.cli", *args, "--distributed"]


def timed_run(command: list[str], output: Path) -> dict:
    env = subprocess_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} … failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    history = json.loads((output / "model.json").read_text())["history"]
    seen = sum(h["windows_seen"] for h in history)
    seconds = sum(h["seconds"] for h in history)
    return {"samples_per_s": round(seen / seconds, 1), "train_loop_s": round(seconds, 2), "wall_s": round(wall, 2),
            "final_train_loss": history[-1]["train_loss"], "final_test_loss": history[-1]["test_loss"],
            "train_loss_per_epoch": [round(h["train_loss"], 4) for h in history]}


def run(n: int = 4000, width: int = 24, epochs: int = 3, batch: int = 100, ranks: int = 2, seed: int = 0,
        log=print) -> dict:
    result = {"settings": {"windows": n, "window": width, "epochs": epochs, "batch": batch, "ranks": ranks,
                           "seed": seed, "threads_per_process": 1},
              "cpu": cpu_description(), "python": platform.python_version(), "load_before": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="napari-rvae-ddp-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "windows.npy", oriented_blobs(n, width, seed=seed + 1))
        for name, count in (("single", 1), ("distributed", ranks)):
            log(f"{name}: {count} process(es), load {os.getloadavg()[0]:.2f}")
            result[name] = timed_run(train_command(tmp / "windows.npy", tmp / name, ranks=count, epochs=epochs,
                                                   batch=batch, seed=seed), tmp / name)
            log(f"   {result[name]['samples_per_s']:.0f} windows/s, final loss {result[name]['final_train_loss']:.3f}")
    single, multi = result["single"], result["distributed"]
    result["samples_per_s_ratio"] = round(multi["samples_per_s"] / single["samples_per_s"], 3)
    result["wall_ratio"] = round(single["wall_s"] / multi["wall_s"], 3)
    result["final_train_loss_relative_difference"] = round(
        abs(multi["final_train_loss"] - single["final_train_loss"]) / abs(single["final_train_loss"]), 4)
    result["load_after"] = list(os.getloadavg())
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, help="results JSON (default: print only)")
    p.add_argument("--n", type=int, default=4000, help="windows (default 4000)")
    p.add_argument("--window", type=int, default=24, help="window width in pixels (default 24)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=100, help="global batch (default 100)")
    p.add_argument("--ranks", type=int, default=2, help="torchrun processes (default 2)")
    args = p.parse_args(argv)
    result = run(args.n, args.window, args.epochs, args.batch, args.ranks)
    text = json.dumps(result, indent=1)
    if args.output:
        args.output.write_text(text + "\n")
    print(json.dumps({k: result[k] for k in ("samples_per_s_ratio", "wall_ratio",
                                             "final_train_loss_relative_difference", "load_before", "load_after")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
