"""U-Net inference speed on 512² frames (used by ``napari-rvae bench``).

Compares, in one run and alternating, (a) a plain eager PyTorch prediction
of an AtomAI-size U-Net (16 filters, levels 1-2-2, three cascaded dilated
convolutions; fp32, NCHW, BatchNorm unfused, ``no_grad``, one frame per
forward pass, softmax to numpy — what AtomAI's ``Segmentor.predict`` does)
with (b) our :class:`~.predict.Predictor` on the same network (BatchNorm
folded into the convolutions, channels-last memory, ``inference_mode``,
whole-frame tiles), the same with ``precision="int8"`` (calibrated on the
benchmark frames before timing), and (c) our shipped default atom model. The machine is
shared, so each result carries the load average and the torch thread count.

:func:`bench_vs_atomai` times AtomAI's own ``Segmentor.predict`` (run by the
Python of an AtomAI environment in a child process) alternately with ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_rvae.synth.render import add_noise, normalise01, render_spots
from napari_rvae.segment.predict import Predictor
from napari_rvae.segment.unet import UNet, atomai_equivalent_config

ATOMAI_RECORDED = {
    "frames_per_s": [5.2, 5.9],
    "gflop_per_frame": 17.2,
    "note": "AtomAI 0.8.1 Segmentor.predict, 2 threads, measured on an AVX-512 machine (shared/bench)",
}


def benchmark_frames(n: int = 6, size: int = 512, seed: int = 1, spacing: float = 12.0) -> np.ndarray:
    """Frames like ``shared/bench/synth.make_frames``: rotated square lattice, 5 % vacancies, noise; ``(n, size, size)``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    k = int(size / spacing) + 4
    ij = np.stack(np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij"), -1).reshape(-1, 2)
    for f in range(n):
        th = rng.uniform(-np.pi, np.pi)
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        pos = ij * spacing @ rot.T + size / 2 + rng.uniform(0, spacing, 2)
        pos = pos[np.all((pos > 2) & (pos < size - 3), 1)]
        pos = pos[rng.random(len(pos)) >= 0.05]
        img = render_spots((size, size), pos, 1 + 0.05 * rng.standard_normal(len(pos)), 1.8)
        out[f] = normalise01(add_noise(img, rng, read_noise=0.1))
    return out


def conv_gflop(model: UNet, size: int = 512) -> float:
    """Multiply-add FLOPs (×2) of all convolutions for one ``size``² frame, in GFLOP."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += 2 * out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 1, size, size))
    for h in handles:
        h.remove()
    return total / 1e9


def reference_predict(model: UNet, frames: np.ndarray) -> np.ndarray:
    """The plain way (AtomAI-style): eager fp32 NCHW, one frame per pass, softmax to numpy."""
    model.eval()
    outs = []
    with torch.no_grad():
        for frame in frames:
            x = torch.from_numpy(frame[None, None])
            outs.append(torch.softmax(model(x), 1).numpy())
    return np.concatenate(outs)


def _randomise_batchnorm(model: UNet, seed: int = 0) -> UNet:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _best_fps(fn, frames, repeats: int) -> list:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(frames)
        times.append(time.perf_counter() - t)
    return times


def bench_unet_inference(n_frames: int = 6, repeats: int = 3, threads: int | None = None,
                         compile: bool = True) -> dict:
    """Frames/s of reference vs ours (AtomAI-size net) and of the default atom model, alternating.

    Returns a dict with ``frames_per_s`` per variant (best of ``repeats``), the
    ratio ours / reference, GFLOP per frame, the maximum probability difference
    between ours and the reference (same weights), load averages and threads.
    """
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    frames = benchmark_frames(n_frames)
    net = _randomise_batchnorm(UNet(atomai_equivalent_config()))
    ours = Predictor(net, tile=512, batch=1)
    variants = {"ours_eager": ours, "ours_int8": Predictor(net, tile=512, batch=1, precision="int8")}
    variants["ours_int8"](frames)  # calibration on the benchmark frames, not timed
    compile_s = None
    if compile:
        variants["ours_compiled"] = Predictor(net, tile=512, batch=1, compile=True)
        t0 = time.perf_counter()
        variants["ours_compiled"](frames[:1])
        compile_s = round(time.perf_counter() - t0, 1)
    from napari_rvae.segment.default_model import load_default_atom_model

    try:
        default = load_default_atom_model()
        fast_default = Predictor(default, batch=4)  # the model's own tiling (its predict_tile)
    except ValueError:
        default = fast_default = None
    load_before = os.getloadavg()
    # warm-up (oneDNN primitive creation) outside the timings
    reference_predict(net, frames[:1])
    ours(frames[:1])
    if fast_default is not None:
        fast_default(frames[:1])
    t_ref, t_def = [], []
    t_var = {k: [] for k in variants}
    for _ in range(repeats):  # alternate so load changes hit all variants alike
        t_ref += _best_fps(lambda f: reference_predict(net, f), frames, 1)
        for k, fn in variants.items():
            t_var[k] += _best_fps(fn, frames, 1)
        if fast_default is not None:
            t_def += _best_fps(fast_default, frames, 1)
    ref_probs = reference_predict(net, frames[:1])
    diff = {k: float(np.abs(ref_probs - fn(frames[:1])).max()) for k, fn in variants.items()}
    result = {
        "frame_shape": [512, 512],
        "n_frames": n_frames,
        "torch_threads": torch.get_num_threads(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "atomai_size_net": {
            "n_parameters": sum(p.numel() for p in net.parameters()),
            "gflop_per_frame": round(conv_gflop(net), 2),
            "reference_frames_per_s": round(n_frames / min(t_ref), 3),
            **{f"{k}_frames_per_s": round(n_frames / min(t), 3) for k, t in t_var.items()},
            **{f"{k}_speedup_vs_reference": round(min(t_ref) / min(t), 2) for k, t in t_var.items()},
            "max_abs_prob_difference_vs_reference": diff,
            "compile_seconds_first_call": compile_s,
        },
        "atomai_recorded": ATOMAI_RECORDED,
    }
    if default is not None:
        result["default_atom_model"] = {
            "n_parameters": sum(p.numel() for p in default.parameters()),
            "gflop_per_frame": round(conv_gflop(default), 2),
            "tile": fast_default.tile, "overlap": fast_default.overlap,
            "frames_per_s": round(n_frames / min(t_def), 3),
            "speedup_vs_reference_atomai_size": round(min(t_ref) / min(t_def), 2),
        }
    return result


# --- AtomAI's own Segmentor.predict, in its own environment, alternating with ours -------------
# Runs inside AtomAI's Python: builds AtomAI's default Segmentor (16 filters, untrained — speed
# does not depend on the weights) and answers one line per request with the seconds taken.
_WORKER = r"""
import json, sys, time, types, warnings
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
try:
    import torchvision  # noqa: F401
except Exception:  # CUDA torchvision next to CPU torch: skip its C extension registrations
    for k in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[k]
    for m in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules[m] = types.ModuleType(m)
warnings.simplefilter("ignore")
import atomai
frames = np.load(sys.argv[1])
seg = atomai.models.Segmentor(nb_classes=1)
seg.predict(frames[:1], compute_coords=False, verbose=False)  # warm-up
n_par = sum(p.numel() for p in seg.net.parameters())
print(json.dumps({"ready": True, "atomai": atomai.__version__, "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "n_parameters": n_par}), flush=True)
for line in sys.stdin:
    if line.strip() != "predict":
        break
    t = time.perf_counter()
    seg.predict(frames, compute_coords=False, verbose=False)
    print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)
"""


def bench_vs_atomai(atomai_python: str | os.PathLike, n_frames: int = 6, repeats: int = 3,
                    threads: int = 2, compile: bool = False) -> dict:
    """Frames/s of AtomAI's ``Segmentor.predict`` and of our predictors, alternating in one run.

    Parameters
    ----------
    atomai_python : path
        Python executable of an environment with AtomAI (e.g. ``.venv-atomai/bin/python``).
    n_frames : int
        512² frames per timed call (``benchmark_frames``).
    repeats : int
        Alternating rounds; each variant's best round is reported.
    threads : int
        torch threads on both sides.
    compile : bool
        Also time ``Predictor(compile=True)`` (its first call compiles, 15–80 s, not timed).

    Returns
    -------
    dict: frames/s per variant (``*_int8``: ``Predictor(precision="int8")``, calibrated on the
    benchmark frames by an untimed first call), speed-ups vs AtomAI, parameter counts, load
    averages, versions.
    """
    from napari_rvae.segment.default_model import load_default_atom_model

    atomai_python = Path(atomai_python)
    if not atomai_python.is_file():
        raise ValueError(f"atomai_python {atomai_python} is not a file; pass the python of an AtomAI environment")
    if n_frames < 1 or repeats < 1 or threads < 1:
        raise ValueError("n_frames, repeats and threads must be >= 1")
    torch.set_num_threads(int(threads))
    frames = benchmark_frames(n_frames)
    torch.manual_seed(0)
    net = _randomise_batchnorm(UNet(atomai_equivalent_config()))
    variants = {"ours_atomai_size": Predictor(net, tile=512, batch=1)}
    if compile:
        variants["ours_atomai_size_compiled"] = Predictor(net, tile=512, batch=1, compile=True)
    variants["ours_atomai_size_int8"] = Predictor(net, tile=512, batch=1, precision="int8")
    default = load_default_atom_model()
    variants["ours_default_atom_model"] = Predictor(default, batch=4)
    variants["ours_default_atom_model_int8"] = Predictor(default, batch=4, precision="int8")
    calibrate_s = {}
    for k, fn in variants.items():
        t = time.perf_counter()
        fn(frames if k.endswith("_int8") else frames[:1])  # warm-up / compile / int8 calibration (not timed)
        if k.endswith("_int8"):
            calibrate_s[k] = round(time.perf_counter() - t, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "frames.npy")
        np.save(path, frames)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MPLBACKEND": "Agg"}
        proc = subprocess.Popen([str(atomai_python), "-c", _WORKER, path, str(threads)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            hello = proc.stdout.readline()
            if not hello:
                raise ValueError(f"the AtomAI worker failed to start: {proc.stderr.read()[-2000:]}")
            info = json.loads(hello)
            load_before = os.getloadavg()
            times = {"atomai": [], **{k: [] for k in variants}}
            for _ in range(repeats):
                proc.stdin.write("predict\n")
                proc.stdin.flush()
                times["atomai"].append(json.loads(proc.stdout.readline())["seconds"])
                for k, fn in variants.items():
                    t = time.perf_counter()
                    fn(frames)
                    times[k].append(time.perf_counter() - t)
            load_after = os.getloadavg()
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)
    fps = {k: n_frames / min(v) for k, v in times.items()}
    return {
        "frame_shape": [512, 512], "n_frames": n_frames, "repeats": repeats, "torch_threads": threads,
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "atomai": {k: info[k] for k in ("atomai", "torch", "threads", "n_parameters")},
        "frames_per_s": {k: round(v, 3) for k, v in fps.items()},
        "speedup_vs_atomai": {k: round(fps[k] / fps["atomai"], 2) for k in variants},
        "seconds_per_round": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "int8_active": {k: fn.active_precision == "int8" for k, fn in variants.items() if k.endswith("_int8")},
        "int8_first_call_seconds": calibrate_s,
        "int8_max_abs_prob_difference_vs_float32": {
            k: float(np.abs(variants[k](frames[:1]) - variants[k[:-5]](frames[:1])).max()) for k in calibrate_s},
        "ours_atomai_size_parameters": sum(p.numel() for p in net.parameters()),
        "ours_atomai_size_gflop_per_frame": round(conv_gflop(net), 2),
    }


if __name__ == "__main__":  # pragma: no cover
    import sys

    if len(sys.argv) > 2:  # THREADS ATOMAI_PYTHON
        print(json.dumps(bench_vs_atomai(sys.argv[2], threads=int(sys.argv[1])), indent=1))
    else:
        print(json.dumps(bench_unet_inference(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None), indent=1))
