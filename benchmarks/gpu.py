"""GPU numbers of ``napari-rvae bench`` (section ``gpu``): recorded when CUDA is available.

On a machine without CUDA the section says so (``{"skipped": …}``) and costs nothing. With CUDA it
records the device (name, memory, CUDA and torch versions) and

* rVAE training samples/s on the reference windows (``bench_windows``, batch 100), after a
  warm-up epoch, with the final loss;
* encode and decode windows/s;
* U-Net inference frames/s on 512² frames (the AtomAI-size network of the ``segment`` section),
  float32 and bfloat16, with the largest probability difference from the CPU.
"""

from __future__ import annotations

import time

import numpy as np


def _synchronised(fn):
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def gpu_benchmark(n: int = 20000, epochs: int = 2, frames: int = 12, log=print) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
    from benchmarks.segment import _randomise_batchnorm, benchmark_frames
    from benchmarks.vae.benchdata import bench_windows
    from napari_rvae.segment import Predictor, UNet
    from napari_rvae.segment.unet import atomai_equivalent_config
    from napari_rvae.vae import Trainer, VAEConfig, build_model, decode, encode

    props = torch.cuda.get_device_properties(0)
    result: dict = {"device": torch.cuda.get_device_name(0), "devices": torch.cuda.device_count(),
                    "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
                    "torch": torch.__version__}
    windows, _, _ = bench_windows(n, 28, seed=0)
    model = build_model(VAEConfig(arch="rvae", window=(28, 28), latent=2), seed=0)
    trainer = Trainer(model, windows, batch_size=100, seed=0, device="cuda")
    trainer.fit(1)  # warm-up: kernels, allocator
    stats, seconds = _synchronised(lambda: trainer.fit(epochs))
    result["train"] = {"windows": n, "epochs": epochs, "batch": 100,
                       "samples_per_s": round(sum(s["windows_seen"] for s in stats) / seconds, 1),
                       "final_train_loss": stats[-1]["train_loss"], "final_test_loss": stats[-1]["test_loss"]}
    log(f"   train {result['train']['samples_per_s']:.0f} windows/s on {result['device']}")
    latents, seconds = _synchronised(lambda: encode(model, windows))
    z = latents[["z0", "z1"]].to_numpy()[:4096]
    _, decode_s = _synchronised(lambda: decode(model, z, angle=0.0))
    result["encode_windows_per_s"] = round(n / seconds, 1)
    result["decode_windows_per_s"] = round(len(z) / decode_s, 1)
    torch.manual_seed(0)
    net = _randomise_batchnorm(UNet(atomai_equivalent_config()))
    movie = benchmark_frames(frames)
    cpu = Predictor(net, tile=512, batch=1)(movie[:2])
    unet = {}
    for precision in ("float32", "bfloat16"):
        predictor = Predictor(net, tile=512, batch=4, precision=precision, device="cuda")
        predictor(movie[:2])  # warm-up
        probs, seconds = _synchronised(lambda: predictor(movie))
        unet[precision] = {"frames_per_s": round(frames / seconds, 2),
                           "max_abs_difference_from_cpu": float(np.abs(probs[:2] - cpu).max())}
    result["unet_512"] = unet
    log(f"   U-Net {unet['float32']['frames_per_s']:.1f} frames/s (float32)")
    return result
