"""Model mechanics: exact fast paths, decoding geometry, schedules, configs."""

import json

import numpy as np
import pytest
import torch

from napari_rvae.vae import BetaSchedule, VAEConfig, build_model, decode, encode, manifold, reconstruct

torch.set_num_threads(1)


def small_config(**kw):
    base = dict(window=(12, 12), latent=2, encoder_widths=(32,), decoder_widths=(16, 16, 16))
    base.update(kw)
    return VAEConfig(**base)


@pytest.mark.parametrize("arch", ["rvae", "skip-rvae", "shift-vae"])
@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_fast_and_fused_paths_match_plain_tanh_network(arch, likelihood):
    """The sigmoid-folded layers and the cache-chunked fused loss compute the plain
    tanh network's loss and gradients (float32 rounding only)."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0, 1, (7, 12, 12)).astype(np.float32))
    cfg = small_config(arch=arch, likelihood=likelihood, n_classes=2 if arch == "skip-rvae" else 0)
    cls = torch.tensor([0, 1, 1, 0, 1, 0, 0]) if cfg.n_classes else None
    pixels = torch.tensor(rng.choice(144, 50, replace=False))
    results = {}
    for mode in ("plain", "fast", "fused"):
        model = build_model(cfg, seed=3, fast=mode != "plain")
        z, _, _ = model.sample(x, torch.Generator().manual_seed(1))
        target = x.reshape(7, -1)[:, pixels]
        loss = model.reconstruction_sum(target, z, cls, pixels, 144 / 50, fused=mode == "fused", chunk=3)
        loss.backward()
        results[mode] = (loss.item(), [p.grad.clone() for p in model.parameters()])
    ref_loss, ref_grads = results["plain"]
    for mode in ("fast", "fused"):
        loss, grads = results[mode]
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        for g, r in zip(grads, ref_grads):
            assert torch.allclose(g, r, rtol=1e-3, atol=1e-5 * r.abs().max().item() + 1e-7)


def test_decoded_angle_rotates_and_shift_translates_the_window():
    """Angle π/2 turns the decoded window by 90° (x → y, rows pointing down);
    dx, dy shift it by that many pixels."""
    model = build_model(small_config(window=(13, 13)), seed=1)
    z = np.array([[0.7, -0.4]])
    base = decode(model, z)[0]
    turned = decode(model, z, angle=np.pi / 2)[0]
    # content point (x, y) moves to R(θ)(x, y) = (−y, x)
    assert np.allclose(turned, np.rot90(base, k=-1), atol=1e-5)
    moved = decode(model, z, dx=2.0, dy=-3.0)[0]
    assert np.allclose(moved[:-3, 2:], base[3:, :-2], atol=1e-5)


def test_shift_vae_1d_decodes_shifted_profiles():
    model = build_model(VAEConfig(arch="shift-vae", window=(40,), latent=1, encoder_widths=(16,),
                                  decoder_widths=(16, 16)), seed=0)
    base = decode(model, [[0.3]])[0]
    moved = decode(model, [[0.3]], dx=4.0)[0]
    assert moved.shape == (40,)
    assert np.allclose(moved[4:], base[:-4], atol=1e-5)


def test_encode_units_and_columns():
    x = np.random.default_rng(0).uniform(0, 1, (20, 12, 12)).astype(np.float32)
    model = build_model(small_config(), seed=0)
    table = encode(model, x)
    assert list(table.columns[:5]) == ["angle", "dx", "dy", "z0", "z1"]
    assert table["angle"].between(-np.pi, np.pi, inclusive="right").all()
    # dx in pixels = latent × translation_prior × (w − 1)/2
    with torch.inference_mode():  # encode's path (the equivariant angle turns the window: same arithmetic needed)
        mean, _ = model.encode(torch.from_numpy(x))
    assert np.allclose(table["dx"], mean[:, 1].numpy() * 0.1 * 5.5, rtol=1e-5)
    assert reconstruct(model, x[:3]).shape == (3, 12, 12)
    images, mosaic, values = manifold(model, d=5)
    assert images.shape == (5, 5, 12, 12) and mosaic.shape == (60, 60) and len(values) == 5
    with pytest.raises(ValueError, match="windows"):
        encode(model, x[:, :10, :10])


def test_beta_schedules():
    assert BetaSchedule("constant", start=0.5).beta(7) == 0.5
    lin = BetaSchedule("linear", start=0.0, end=1.0, epochs=5)
    assert [lin.beta(e) for e in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cyc = BetaSchedule("cyclical", start=0.0, end=1.0, epochs=3)
    assert [cyc.beta(e) for e in range(6)] == [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    cap = BetaSchedule(capacity_start=0.0, capacity_end=10.0, capacity_epochs=6)
    assert cap.capacity(0) == 0 and cap.capacity(5) == 10 and cap.capacity(9) == 10 and cap.uses_capacity
    with pytest.raises(ValueError, match="kind"):
        BetaSchedule("exponential")


def test_config_round_trips_through_json():
    cfg = small_config(arch="skip-rvae", n_classes=3, beta=BetaSchedule("linear", 0.1, 2.0, 4))
    again = VAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="1D data has no rotation"):
        VAEConfig(arch="rvae", window=(50,))
    with pytest.raises(ValueError, match="arch"):
        VAEConfig(arch="gan")


@pytest.mark.parametrize("arch,encoder", [("vae", "mlp"), ("rvae", "mlp"), ("skip-rvae", "mlp"), ("shift-vae", "mlp"),
                                          ("shift-vae", "conv")])
def test_every_architecture_trains_one_epoch(arch, encoder):
    from napari_rvae.vae import Trainer

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (60, 12, 12)).astype(np.float32)
    cfg = small_config(arch=arch, encoder=encoder, n_classes=2 if arch == "rvae" else 0)
    classes = rng.integers(0, 2, 60) if cfg.n_classes else None
    model = build_model(cfg, seed=0)
    stats = Trainer(model, x, classes=classes, batch_size=20, threads=1).fit(1)[0]
    assert np.isfinite([stats["train_loss"], stats["test_loss"]]).all()
    assert len(encode(model, x).columns) == 2 * (cfg.n_structural + cfg.latent)


@pytest.mark.parametrize("arch", ["rvae", "skip-rvae", "shift-vae"])
@pytest.mark.parametrize("n", [1, 3, 40])
def test_fast_decode_matches_the_decoder_module(arch, n):
    """`decode`'s inference path (row blocks over threads) gives the module's output."""
    from napari_rvae.vae.latents import _pixels_per_unit

    model = build_model(small_config(arch=arch, window=(14, 14), n_classes=2 if arch == "skip-rvae" else 0), seed=2)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2)).astype(np.float32)
    angle = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    cls = rng.integers(0, 2, n) if model.config.n_classes else None
    got = decode(model, z, angle=angle, dx=0.7, dy=-1.2, classes=cls).reshape(n, -1)
    ppu = _pixels_per_unit(model)
    shift = torch.tensor([[0.7 / ppu[0], -1.2 / ppu[1]]] * n, dtype=torch.float32)
    with torch.no_grad():
        ref = model.decode_parts(torch.from_numpy(angle) if model.config.has_angle else None, shift,
                                 torch.from_numpy(z), None if cls is None else torch.from_numpy(cls))
    assert np.allclose(got, ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("n", [1, 5])
def test_fast_decode_in_pixel_ranges_matches_one_block(n):
    """Windows larger than a block are decoded in pixel ranges (on the calling thread for one
    window, shared among threads for more): same values as one block per window."""
    from napari_rvae.vae.fastdecode import decode_into

    model = build_model(small_config(arch="rvae", window=(14, 14)), seed=1)
    rng = np.random.default_rng(3)
    z = torch.from_numpy(rng.normal(size=(n, 2)).astype(np.float32))
    angle = torch.from_numpy(rng.uniform(-np.pi, np.pi, n).astype(np.float32))
    shift = torch.from_numpy(rng.normal(0, 0.2, (n, 2)).astype(np.float32))
    whole, ranges = torch.empty(n, 196), torch.full((n, 196), np.nan)
    decode_into(model.decoder, whole, z, angle, shift)
    decode_into(model.decoder, ranges, z, angle, shift, rows=50, workers=2)
    assert torch.isfinite(ranges).all()
    assert torch.allclose(whole, ranges, atol=1e-6)


def test_noise_sigma_scales_the_reconstruction_term():
    """Gaussian likelihood with decoder noise σ: reconstruction = ½·SSE/σ²."""
    from napari_rvae.vae import Trainer

    x = np.random.default_rng(0).uniform(0, 1, (20, 12, 12)).astype(np.float32)
    recon = {}
    for sigma in (1.0, 0.1):
        model = build_model(small_config(noise_sigma=sigma), seed=0)
        trainer = Trainer(model, x, seed=0, threads=1, test_fraction=0.5)
        recon[sigma] = trainer.evaluate()[1]
    assert recon[0.1] == pytest.approx(100 * recon[1.0], rel=1e-4)
    with pytest.raises(ValueError, match="noise_sigma"):
        small_config(noise_sigma=0.0)


def test_circular_angle_is_atan2_and_old_configs_load_as_linear():
    model = build_model(small_config(angle_encoding="circular"), seed=0)
    x = torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (5, 12, 12)).astype(np.float32))
    raw_mean, raw_logvar = model.encoder(x)
    mean, logvar = model.encode(x)
    assert mean.shape == (5, 5) and raw_mean.shape == (5, 6)  # angle, dx, dy, z0, z1 from 6 outputs
    assert torch.allclose(mean[:, 0], torch.atan2(raw_mean[:, 1], raw_mean[:, 0]))
    assert torch.equal(logvar[:, 1:], raw_logvar[:, 2:])
    old = small_config().to_dict()
    del old["noise_sigma"], old["angle_encoding"]
    again = VAEConfig.from_dict(old)
    assert again.noise_sigma == 1.0 and again.angle_encoding == "linear"
    assert build_model(again).encoder.n_latent == 5


def test_rotation_only_rvae_has_no_shift_latents():
    cfg = small_config(translation=False)
    model = build_model(cfg, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (4, 12, 12)).astype(np.float32)
    assert list(encode(model, x).columns[:3]) == ["angle", "z0", "z1"]
    assert decode(model, np.zeros(2), angle=0.4).shape == (1, 12, 12)
    with pytest.raises(ValueError, match="translation"):
        small_config(arch="shift-vae", translation=False)


def test_encoder_inference_cache_follows_weight_changes():
    """encode() runs on cached folded weights; new parameter values (optimiser step,
    load_state_dict, or replaced .data as in a device move) must never reuse stale ones."""
    model = build_model(VAEConfig(window=(12, 12)), seed=0)
    windows = np.random.default_rng(0).uniform(0, 1, (40, 12, 12)).astype(np.float32)
    before = encode(model, windows)["z0"].to_numpy()
    other = build_model(VAEConfig(window=(12, 12)), seed=1)
    model.load_state_dict(other.state_dict())
    np.testing.assert_allclose(encode(model, windows)["z0"], encode(other, windows)["z0"], rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        model.encoder.mlp.weights[0].data = other.encoder.mlp.weights[0].data * 0.5
    assert not np.allclose(encode(model, windows)["z0"], encode(other, windows)["z0"])
    assert not np.allclose(before, encode(other, windows)["z0"])


def test_large_windows_leave_the_encoder_units_unsaturated():
    """Adam moves every weight by about the learning rate per step, so a first layer reading 3 600
    pixels moves its tanh units ~3 600 × lr per step and saturates them (the encoder then tells windows
    apart by a handful of values: paper 003's substrate split at 60 px windows). The default
    ``encoder_input_scale`` (48² / pixels here) keeps the start the same function and the units out
    of saturation; 1 (models saved before it, and the load default for their model.json) saturates them."""
    from napari_rvae.vae import Trainer

    rng = np.random.default_rng(0)
    w = 60
    yy, xx = np.mgrid[:w, :w]
    x = np.zeros((256, w, w), np.float32)
    for window in x:
        for cy, cx in rng.uniform(8, w - 8, (6, 2)):
            window += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0).astype(np.float32)
    x = np.clip(x, 0, 1)

    def saturated(model) -> float:
        enc = model.encoder
        with torch.no_grad():
            flat = torch.from_numpy(x).reshape(len(x), -1) * enc.input_scale
            pre = torch.nn.functional.linear(flat, enc.mlp.weights[0], enc.mlp.biases[0])
        return float((pre.abs() > 2.65).float().mean())  # |tanh| > 0.99

    default = VAEConfig(arch="vae", window=(w, w), latent=2)
    assert default.encoder_input_scale == pytest.approx(48**2 / w**2)
    assert VAEConfig(arch="vae", window=(48, 48)).encoder_input_scale == 1.0  # up to 48 px unchanged
    old = default.to_dict()
    del old["encoder_input_scale"]
    assert VAEConfig.from_dict(old).encoder_input_scale == 1.0
    torch.manual_seed(3)
    plain = build_model(VAEConfig(arch="vae", window=(w, w), latent=2, encoder_input_scale=1.0), seed=0)
    scaled = build_model(default, seed=0)
    probe = torch.from_numpy(x[:8])
    with torch.no_grad():  # the same function at the start
        assert torch.allclose(plain.encoder(probe)[0], scaled.encoder(probe)[0], atol=1e-4)
    result = {}
    for name, model in (("plain", plain), ("scaled", scaled)):
        Trainer(model, x, batch_size=32, threads=1, seed=0).fit(20)
        result[name] = saturated(model)
    assert result["plain"] > 0.2 and result["scaled"] < 0.05, result
