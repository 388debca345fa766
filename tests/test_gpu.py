"""The GPU path: training, U-Net inference, encode / decode and distributed training on CUDA,
with the assertions of the CPU tests (skipped where ``torch.cuda.is_available()`` is false).

``NAPARI_RVAE_TEST_DEVICE`` (default ``cuda``) names the device; ``=cpu`` runs the same checks on
the CPU, which is how they are kept working on machines without a GPU.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from napari_rvae.segment import predict
from napari_rvae.vae import Trainer, VAEConfig, build_model, decode, encode, load_model, manifold, save_model

from test_segment_predict import small_model, spots_image
from test_vae_distributed import SMALL, history, oriented_blobs, torchrun
from test_vae_training import motif_windows

DEVICE = os.environ.get("NAPARI_RVAE_TEST_DEVICE", "cuda")
on_device = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                reason="no CUDA device (set NAPARI_RVAE_TEST_DEVICE=cpu to run these checks on the CPU)")


@pytest.fixture(autouse=True)
def _one_cpu_thread_and_full_float32(one_torch_thread):
    """One CPU thread; on CUDA, float32 convolutions and matrix products without TF32 (cuDNN uses
    TF32 for convolutions by default, ~1e-3 relative error), so the device is compared with the
    CPU at float32 rounding."""
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@on_device
@pytest.mark.slow  # 49 s on the CPU (NAPARI_RVAE_TEST_DEVICE=cpu)
def test_rvae_trained_on_the_device_recovers_rotation_angles():
    """As test_vae_training's full-circle test (seed 0): circular agreement of the encoded
    angle with the true one ≥ 0.95 after 24 epochs, the model trained on the device."""
    x, theta = motif_windows(2000, max_angle=np.pi)
    cfg = VAEConfig(arch="rvae", window=(16, 16), latent=0, encoder_widths=(128, 64), decoder_widths=(64, 64, 64))
    model = build_model(cfg, seed=0)
    trainer = Trainer(model, x, batch_size=32, lr=3e-3, seed=0, device=DEVICE, threads=1)
    assert trainer.device.type == torch.device(DEVICE).type
    trainer.fit(24)
    assert next(model.parameters()).device.type == trainer.device.type
    angle = encode(model, x)["angle"].to_numpy()
    assert abs(np.mean(np.exp(1j * (angle - theta)))) >= 0.95


@on_device
def test_encode_decode_on_the_device_match_the_cpu(tmp_path):
    """A model trained on the device, saved and loaded on the CPU: encode, decode and the
    manifold agree between device and CPU to 1e-4 (float32 rounding of different kernels)."""
    x, _ = motif_windows(300, w=12, seed=1)
    cfg = VAEConfig(arch="rvae", window=(12, 12), latent=2, encoder_widths=(32,), decoder_widths=(16, 16, 16))
    model = build_model(cfg, seed=0)
    stats = Trainer(model, x, batch_size=50, device=DEVICE, threads=1).fit(3)
    assert stats[-1]["train_loss"] < stats[0]["train_loss"]
    save_model(model, tmp_path / "m")
    on_cpu = load_model(tmp_path / "m")
    on_gpu_model = load_model(tmp_path / "m", device=DEVICE)
    assert next(on_gpu_model.parameters()).device.type == torch.device(DEVICE).type
    a, b = encode(on_cpu, x), encode(on_gpu_model, x)
    np.testing.assert_allclose(b.to_numpy(dtype=float), a.to_numpy(dtype=float), rtol=1e-4, atol=1e-4)
    z = a[["z0", "z1"]].to_numpy()[:20]
    np.testing.assert_allclose(decode(on_gpu_model, z, angle=0.3), decode(on_cpu, z, angle=0.3), atol=1e-4)
    np.testing.assert_allclose(manifold(on_gpu_model, d=4)[0], manifold(on_cpu, d=4)[0], atol=1e-4)


@on_device
def test_unet_inference_on_the_device_matches_the_cpu():
    """The U-Net's probabilities on the device equal the CPU's to 1e-4, tiled and whole, and sum to 1."""
    model = small_model()
    frames = np.stack([spots_image((150, 171), seed=s) for s in range(2)])
    for tile in (None, 64):
        cpu = predict(model, frames, tile=tile, overlap=32 if tile else None)
        dev = predict(model, frames, tile=tile, overlap=32 if tile else None, device=DEVICE)
        assert dev.shape == cpu.shape == (2, 3, 150, 171) and dev.dtype == np.float32
        np.testing.assert_allclose(dev.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(dev, cpu, atol=1e-4)
    if torch.device(DEVICE).type != "cpu":
        with pytest.raises(ValueError, match="CPU only"):
            predict(model, frames, precision="int8", device=DEVICE)


@on_device
def test_distributed_training_on_the_device(tmp_path):
    """``train --distributed`` with one rank per GPU (NCCL; at most 2) or 2 gloo ranks on the
    CPU: the loss falls by a third and the model folder loads."""
    path = tmp_path / "windows.npy"
    np.save(path, oriented_blobs())
    on_gpu = torch.device(DEVICE).type == "cuda"
    ranks = min(2, torch.cuda.device_count()) if on_gpu else 2
    options = [o if o != "cpu" else ("auto" if on_gpu else "cpu") for o in SMALL]
    done = torchrun(path, "-o", tmp_path / "m", "--epochs", "4", *options, ranks=ranks)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({'nccl' if on_gpu else 'gloo'}," in done.stdout
    h = history(tmp_path / "m")
    assert h[-1]["train_loss"] < 0.67 * h[0]["train_loss"]
    settings = json.loads((tmp_path / "m" / "model.json").read_text())["training"]["distributed"]
    assert settings["world_size"] == ranks and settings["backend"] == ("nccl" if on_gpu else "gloo")
    assert load_model(tmp_path / "m") is not None


def test_bench_records_gpu_numbers_or_says_why_not():
    """``napari-rvae bench``'s gpu section: the device's name and positive rates with CUDA,
    one line saying it was skipped without."""
    from benchmarks.gpu import gpu_benchmark

    result = gpu_benchmark(n=2000, epochs=1, frames=2, log=lambda line: None)
    if not torch.cuda.is_available():
        assert result == {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
        return
    assert result["device"] == torch.cuda.get_device_name(0)
    assert result["train"]["samples_per_s"] > 0 and np.isfinite(result["train"]["final_train_loss"])
    assert result["encode_windows_per_s"] > 0 and result["decode_windows_per_s"] > 0
    assert result["unet_512"]["float32"]["max_abs_difference_from_cpu"] < 1e-3
