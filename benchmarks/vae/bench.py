"""``napari-rvae bench``: training throughput, quality, inference speed, and the ratio to AtomAI.

Every number comes with the machine load (``os.getloadavg``) at the time it
was measured; ratios to AtomAI are measured in the same run, alternating the
two, so a busy machine affects both sides alike.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.vae.benchdata import REFERENCE_FINGERPRINT, bench_windows, fingerprint
from napari_rvae.vae.config import VAEConfig
from napari_rvae.vae.latents import decode, encode, manifold
from napari_rvae.vae.models import build_model
from napari_rvae.vae.trainer import Trainer

# AtomAI 0.8.1's rVAE defaults (reference benchmark): MLP 2×128 tanh encoder and decoder.
ATOMAI_ARCH = dict(arch="rvae", window=(28, 28), latent=2, encoder="mlp", encoder_widths=(128, 128),
                   decoder_widths=(128, 128, 128), rotation_prior=0.1, translation_prior=0.1)
# ... and its likelihood (unit-variance Gaussian: ½ SSE) and one-output angle: the "AtomAI settings" run
ATOMAI_MODEL = dict(ATOMAI_ARCH, noise_sigma=1.0, angle_encoding="linear")
ATOMAI_REFERENCE = {"train_samples_per_s_b100": 264, "knn15_after_3_epochs": 0.355, "chance": 0.253,
                    "train_loss_after_3_epochs": 4.341, "single_decode_ms": 0.8, "manifold20_s": 0.644,
                    "encode_per_s": 547630}
# AtomAI's k-NN(15) quality after that many epochs at batch 100 (3: its baseline script; 20: its
# per-epoch curve, docs/scripts/atomai_quality_curve.py → docs/bench-results/atomai_quality_curve_*.json)
ATOMAI_QUALITY = {3: 0.355, 20: 0.311}
# what `napari-rvae train` uses unless told otherwise (VAEConfig defaults: noise_sigma 0.1, circular angle)
SHIPPED_DEFAULTS = dict(lr=1e-3, batch_size=100, pixel_fraction=1.0)


def _load() -> list:
    return [round(v, 2) for v in os.getloadavg()]


def knn_accuracy(content: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """k-NN accuracy of ``labels`` from ``content`` latents: fit on the first half, score the second
    (the reference benchmark's quality probe)."""
    from sklearn.neighbors import KNeighborsClassifier

    half = len(content) // 2
    return float(KNeighborsClassifier(k).fit(content[:half], labels[:half]).score(content[half:], labels[half:]))


def _quality(model, windows, variant) -> float:
    table = encode(model, windows)
    return knn_accuracy(table[[c for c in table.columns if c[0] == "z" and c[1:].isdigit()]].to_numpy(), variant)


def _time_steps(windows, steps: int, batch: int, threads: int, **trainer_kw) -> float:
    """Training samples/s over ``steps`` batches (after one warm-up batch)."""
    fast = trainer_kw.pop("fast", True)
    model = build_model(VAEConfig(**ATOMAI_ARCH), seed=0, fast=fast)
    n = batch * (steps + 1)
    trainer = Trainer(model, windows[:n], batch_size=batch, lr=1e-4, seed=0, threads=threads, test_fraction=0.0,
                      **trainer_kw)
    # one epoch = warm-up batch + `steps` timed batches; time from the end of the first batch
    marks = []
    original = trainer.optimizer.step

    def step(*a, **k):
        out = original(*a, **k)
        marks.append(time.perf_counter())
        return out

    trainer.optimizer.step = step
    trainer.fit(1)
    return batch * (len(marks) - 1) / (marks[-1] - marks[0])


def run_atomai(python: str, n: int, epochs: int, batch: int, threads: int, script_dir: str) -> dict:
    """Time AtomAI's rVAE with the reference script in a subprocess (its folder is copied,
    since the script writes next to itself)."""
    work = Path(tempfile.mkdtemp(prefix="atomai-bench-"))
    try:
        for name in ("atomai_baseline.py", "synth.py"):
            shutil.copy(Path(script_dir) / name, work / name)
            os.chmod(work / name, 0o644)
        out = work / "out.json"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        load0 = _load()
        t = time.perf_counter()
        # the reference script pins 2 threads; give it the same thread count as ours instead
        launcher = (f"import sys, runpy, torch; torch.set_num_threads({int(threads)}); "
                    "torch.set_num_threads = lambda n: None; sys.argv = sys.argv[1:]; "
                    "runpy.run_path(sys.argv[0], run_name='__main__')")
        proc = subprocess.run([python, "-c", launcher, str(work / "atomai_baseline.py"), "--rvae-only", "--n", str(n),
                               "--epochs", str(epochs), "--batch-size", str(batch), "--out", str(out)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise ValueError(f"AtomAI run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        res = json.loads(out.read_text())["rvae_train"]
        return {"samples_per_s": res["samples_per_s_mean"], "threads": threads, "epoch_times_s": res["epoch_times_s"],
                "train_loss_history": res["train_loss_history"], "wall_s": round(time.perf_counter() - t, 1),
                "load_before": load0, "load_after": _load(), "n": n, "epochs": epochs, "batch": batch}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ideas(windows, batch: int, threads: int, steps: int, log) -> list:
    """Throughput of each speed idea, same architecture and batch (samples/s)."""
    rows = []
    variants = [
        ("plain tanh MLP, unfused (naive)", dict(fast=False, fused=False)),
        ("tanh via folded sigmoid", dict(fused=False)),
        ("+ fused cache-chunked loss, 1 window/chunk", dict(chunk=1)),
        ("+ fused cache-chunked loss, 2 windows/chunk", dict(chunk=2)),
        ("+ fused cache-chunked loss, 4 windows/chunk", dict(chunk=4)),
        ("+ fused, 8 windows/chunk", dict(chunk=8)),
        ("unfused, micro-batches of 20", dict(fused=False, micro_batch=20)),
        ("fused + pixel_fraction 0.5", dict(chunk=2, pixel_fraction=0.5)),
        ("fused + pixel_fraction 0.25", dict(chunk=2, pixel_fraction=0.25)),
    ]
    for name, kw in variants:
        load = _load()
        sps = _time_steps(windows, steps, batch, threads, **kw)
        rows.append({"idea": name, "samples_per_s": round(sps, 1), "load": load})
        log(f"  idea: {name:48s} {sps:8.1f} samples/s  (load {load[0]})")
    return rows


def run_bench(out: str | os.PathLike | None = None, *, n: int = 20000, epochs: int = 3, batch: int = 100,
              threads: int | None = None, atomai_python: str | None = None, atomai_script_dir: str | None = None,
              atomai_n: int = 2000, repeats: int = 2, ideas: bool = False, quality_epochs: int | None = None,
              quality_runs=("atomai_settings", "shipped_defaults", "shipped_defaults_pixel_fraction_0.25"),
              stop_at_target: bool = True, log=print) -> dict:
    """Run the benchmark and return (and optionally write) its results.

    Parameters
    ----------
    n : int
        Windows of the reference data (``bench_windows(n, 28, seed=0)``).
    epochs : int
        Epochs of the quality runs (AtomAI's reference quality is after 3).
    threads : int, optional
        torch threads (default: all cores); AtomAI gets the same.
    atomai_python : str, optional
        A Python with AtomAI 0.8.1 installed: its rVAE is timed in
        ``repeats`` short runs (``atomai_n`` windows, 1 epoch) alternating
        with ours, and the ratio is reported.
    ideas : bool
        Also time each speed idea separately.
    """
    from napari_rvae._compute import cpu_count

    threads = int(threads or cpu_count())
    torch.set_num_threads(threads)
    res: dict = {"env": {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "threads": threads, "cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(), "load_at_start": _load(),
        "malloc_env": {k: os.environ.get(k) for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")},
    }, "atomai_reference": ATOMAI_REFERENCE}
    t0 = time.perf_counter()
    windows, variant, _ = bench_windows(n, 28, seed=0)
    fp = fingerprint(windows)
    res["data"] = {"n": n, "fingerprint": fp, "matches_reference": fp == REFERENCE_FINGERPRINT if n == 20000 else None}
    log(f"data: {windows.shape} fingerprint {fp} ({'matches' if fp == REFERENCE_FINGERPRINT else 'differs from'} "
        f"the reference)  load {_load()}")

    atomai_inference = None
    if atomai_python:
        def atomai_inference():
            return run_atomai_inference(atomai_python, threads, atomai_script_dir or "")

    # 1. throughput, same architecture and batch as AtomAI, alternating with AtomAI when available
    steps = max(5, atomai_n // batch - 1)
    ours, theirs = [], []
    for r in range(repeats):
        if atomai_python:
            a = run_atomai(atomai_python, atomai_n, 1, batch, threads, atomai_script_dir or "")
            theirs.append(a)
            log(f"AtomAI rVAE train: {a['samples_per_s']:.1f} samples/s  (load {a['load_before'][0]}→{a['load_after'][0]})")
        load = _load()
        sps = _time_steps(windows, steps, batch, threads)
        ours.append({"samples_per_s": round(sps, 1), "load": load, "steps": steps})
        log(f"ours   rVAE train: {sps:.1f} samples/s  (exact, all pixels; load {load[0]})")
    res["train_throughput"] = {"arch": {k: list(v) if isinstance(v, tuple) else v for k, v in ATOMAI_ARCH.items()},
                               "batch": batch, "ours": ours, "atomai": theirs}
    med = float(np.median([o["samples_per_s"] for o in ours]))
    res["train_throughput"]["ours_median"] = med
    if theirs:
        ref = float(np.median([a["samples_per_s"] for a in theirs]))
        res["train_throughput"]["atomai_median"] = ref
        res["train_throughput"]["ratio_vs_atomai_same_run"] = round(med / ref, 2)
        log(f"ratio ours / AtomAI (same run): {med / ref:.2f}×")
    res["train_throughput"]["ratio_vs_atomai_reference_264"] = round(med / 264, 2)

    if ideas:
        res["ideas"] = _ideas(windows, batch, threads, steps, log)

    # 2. quality after `epochs` epochs: AtomAI's settings (lr 1e-4), then our shipped defaults
    # AtomAI's settings: its likelihood (unit variance) and lr; the others: AtomAI's architecture with our defaults
    runs = {"atomai_settings": dict(lr=1e-4, batch_size=batch), "shipped_defaults": dict(SHIPPED_DEFAULTS),
            "shipped_defaults_pixel_fraction_0.25": dict(SHIPPED_DEFAULTS, pixel_fraction=0.25)}
    res["quality"] = {}
    for name, kw in runs.items():
        if name not in quality_runs:
            continue
        model = build_model(VAEConfig(**(ATOMAI_MODEL if name == "atomai_settings" else ATOMAI_ARCH)), seed=0)
        trainer = Trainer(model, windows, seed=0, threads=threads, **kw)
        curve, elapsed = [], 0.0
        for stats in trainer.run(quality_epochs or epochs):
            elapsed += stats["seconds"]
            q = _quality(model, windows, variant)
            curve.append({"epoch": stats["epoch"], "train_s": round(elapsed, 1), "train_loss": round(stats["train_loss"], 3),
                          "test_loss": round(stats["test_loss"], 3), "knn15": round(q, 3),
                          "samples_per_s": round(stats["samples_per_s"], 1), "load": _load()})
            log(f"{name}: epoch {stats['epoch']} train {stats['train_loss']:.3f} test {stats['test_loss']:.3f} "
                f"kNN15 {q:.3f}  {stats['samples_per_s']:.0f} samples/s  {elapsed:.0f} s  (load {_load()[0]})")
            if name != "atomai_settings" and stop_at_target and _reached(curve[-1]):
                break  # time-to-quality runs stop once AtomAI's 3-epoch quality is reached
        res["quality"][name] = {"settings": kw, "curve": curve}
        if name == "shipped_defaults" or (name == quality_runs[-1] and "inference" not in res):
            res["inference"] = _inference(model, windows, log, atomai_inference)
    if "inference" not in res:  # speed does not depend on training
        res["inference"] = _inference(build_model(VAEConfig(**ATOMAI_ARCH), seed=0), windows, log, atomai_inference)
    # time to reach AtomAI's quality after 3 and after 20 epochs, vs AtomAI's own epochs at its same-run rate
    atomai_sps = res["train_throughput"].get("atomai_median", 264.0)
    res["time_to_atomai_quality"] = {"atomai_throughput_used": atomai_sps}
    for ref_epochs, target in ATOMAI_QUALITY.items():
        atomai_s = ref_epochs * int(round(0.85 * n)) / atomai_sps
        entry = {"atomai_epochs": ref_epochs, "atomai_knn15": target, "atomai_s_estimated": round(atomai_s, 1)}
        for name, run in res["quality"].items():
            hit = next((c for c in run["curve"] if c["knn15"] >= target), None)
            entry[name] = None if hit is None else {
                "epoch": hit["epoch"], "train_s": hit["train_s"], "speedup": round(atomai_s / max(hit["train_s"], 1e-9), 2)}
        res["time_to_atomai_quality"][f"after_{ref_epochs}_epochs"] = entry
    log(f"time to AtomAI's quality: {res['time_to_atomai_quality']}")
    res["total_s"] = round(time.perf_counter() - t0, 1)
    res["env"]["load_at_end"] = _load()
    if out is not None:
        from napari_rvae.io.files import write_json

        write_json(out, res)
    return res


def _reached(point: dict) -> bool:
    """AtomAI's best quality of :data:`ATOMAI_QUALITY` reached (k-NN(15); losses are not compared:
    with our default noise σ = 0.1 the loss is on another scale than AtomAI's unit-variance one)."""
    return point["knn15"] >= max(ATOMAI_QUALITY.values())


def run_atomai_inference(python: str, threads: int, script_dir: str) -> dict:
    """AtomAI's rVAE encode / one-point decode / 20×20 manifold timings (``atomai_inference.py``,
    a standalone script, run by AtomAI's Python in a subprocess)."""
    with tempfile.TemporaryDirectory(prefix="atomai-inference-") as work:
        out = Path(work) / "out.json"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MPLBACKEND="Agg")
        load0 = _load()
        proc = subprocess.run([python, str(Path(__file__).with_name("atomai_inference.py")), "--bench-dir",
                               str(Path(script_dir).resolve()), "--threads", str(threads), "--out", str(out)],
                              env=env, capture_output=True, text=True, cwd=work)
        if proc.returncode != 0 or not out.exists():
            raise ValueError(f"AtomAI inference run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        return dict(json.loads(out.read_text()), load_before=load0, load_after=_load())


def _our_inference(model, windows) -> dict:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        encode(model, windows)
        times.append(time.perf_counter() - t)
    lat = []
    decode(model, np.zeros((1, 2)))
    for _ in range(300):  # as many as the reference script
        t = time.perf_counter()
        decode(model, np.zeros((1, 2)), angle=0.3, dx=0.5)
        lat.append(time.perf_counter() - t)
    man = []
    for _ in range(5):
        t = time.perf_counter()
        manifold(model, d=20)
        man.append(time.perf_counter() - t)
    return {"encode_windows_per_s": round(len(windows) / min(times)),
            "single_decode_ms_median": round(1e3 * float(np.median(lat)), 3),
            "manifold20_ms_median": round(1e3 * float(np.median(man)), 1), "load": _load()}


def _inference(model, windows, log, atomai=None, rounds: int = 2) -> dict:
    """Encode rate, single-point decode latency and 20×20 manifold time. With ``atomai`` (a
    callable returning :func:`run_atomai_inference`'s dict), ``rounds`` rounds alternate AtomAI
    and ours, and the ratios of medians are reported (above 1: ours faster)."""
    ours, theirs = [], []
    for _ in range(rounds if atomai else 1):
        if atomai:
            theirs.append(atomai())
            log(f"AtomAI inference: encode {theirs[-1]['encode_windows_per_s']:,} windows/s, one decode "
                f"{theirs[-1]['single_decode_ms_median']} ms, 20×20 batched decode {theirs[-1]['manifold20_batched_ms']}"
                f" ms, manifold2d {theirs[-1]['manifold2d_d20_s']} s  (load {theirs[-1]['load_after'][0]})")
        ours.append(_our_inference(model, windows))
        log(f"ours   inference: encode {ours[-1]['encode_windows_per_s']:,} windows/s, one decode "
            f"{ours[-1]['single_decode_ms_median']} ms, 20×20 manifold {ours[-1]['manifold20_ms_median']} ms  "
            f"(load {ours[-1]['load'][0]})")

    def median(runs, key):
        return float(np.median([r[key] for r in runs]))

    out = {key: median(ours, key) for key in ("encode_windows_per_s", "single_decode_ms_median", "manifold20_ms_median")}
    out.update(rounds=ours, load=ours[-1]["load"])
    if theirs:
        same = {key: median(theirs, key) for key in ("encode_windows_per_s", "single_decode_ms_median",
                                                     "manifold20_batched_ms", "manifold2d_d20_s")}
        out["atomai_same_run"] = dict(same, rounds=theirs)
        out["ratio_vs_atomai_same_run"] = {
            "encode": round(out["encode_windows_per_s"] / same["encode_windows_per_s"], 2),
            "single_decode": round(same["single_decode_ms_median"] / out["single_decode_ms_median"], 2),
            "manifold20_vs_batched_decode": round(same["manifold20_batched_ms"] / out["manifold20_ms_median"], 2),
            "manifold20_vs_manifold2d": round(1e3 * same["manifold2d_d20_s"] / out["manifold20_ms_median"], 2)}
        log(f"ours / AtomAI (same run): {out['ratio_vs_atomai_same_run']}")
    return out


if __name__ == "__main__":  # pragma: no cover
    run_bench(sys.argv[1] if len(sys.argv) > 1 else None)
