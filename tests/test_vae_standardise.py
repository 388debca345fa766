"""Standardised content latents (vae.standardise): an exact change of latent units that puts the
encoded windows at the prior's mean and variance, applied after training by the skip-rVAE."""

import numpy as np
import pytest
import torch

from napari_rvae.vae import VAEConfig, Trainer, build_model
from napari_rvae.vae.latents import decode, encode
from napari_rvae.vae.standardise import _encoder_head, standardise_latents


def _off_centre(config, seed=1):
    """A model whose encoder puts the content latents far from the prior (z0 ≈ +2, z1 ≈ −3)."""
    model = build_model(config, seed=seed)
    _, bias = _encoder_head(model.encoder)
    n, k = model.encoder.n_latent, config.latent
    with torch.no_grad():
        bias[n - k:n] += torch.tensor([2.0, -3.0][:k])
    return model


@pytest.mark.parametrize("arch,encoder,n_classes", [("skip-rvae", "mlp", 0), ("skip-rvae", "mlp", 2),
                                                    ("rvae", "conv", 0), ("vae", "mlp", 0)])
def test_same_windows_in_new_units(arch, encoder, n_classes):
    config = VAEConfig(arch=arch, window=(16, 16), latent=2, encoder=encoder, n_classes=n_classes,
                       grid_scale=5.0 if arch == "skip-rvae" else 1.0)
    model = _off_centre(config)
    x = np.random.default_rng(0).random((60, 16, 16)).astype(np.float32)
    before = encode(model, x)
    classes = np.arange(5) % 2 if n_classes else None
    z_old = before[["z0", "z1"]].to_numpy()
    decoded_old = decode(model, z_old[:5], angle=0.4, classes=classes)
    record = standardise_latents(model, x)
    after = encode(model, x)
    z_new = after[["z0", "z1"]].to_numpy()
    sigma_new = after[["z0_sigma", "z1_sigma"]].to_numpy()
    offset, scale = np.array(record["offset"]), np.array(record["scale"])
    assert abs(offset[0] - 2) < 1 and abs(offset[1] + 3) < 1  # it found the displacement
    np.testing.assert_allclose(offset + scale * z_new, z_old, atol=1e-4)  # old = offset + scale × new
    np.testing.assert_allclose(scale * sigma_new, before[["z0_sigma", "z1_sigma"]].to_numpy(), rtol=1e-4)
    # the prior's mean and variance for the windows' aggregate posterior
    np.testing.assert_allclose(z_new.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z_new.var(0) + (sigma_new**2).mean(0), 1, atol=1e-3)
    # the decoder draws exactly what it drew at the old point
    np.testing.assert_allclose(decode(model, z_new[:5], angle=0.4, classes=classes), decoded_old, atol=1e-4)
    rest = [c for c in before.columns if not c.startswith(("z0", "z1"))]
    np.testing.assert_allclose(after[rest].to_numpy(), before[rest].to_numpy(), atol=1e-5)  # angle, shifts
    assert model.latent_standardisation == [record]


def test_skip_rvae_trainer_standardises_and_the_record_round_trips(tmp_path):
    from napari_rvae.vae.defaults import model_defaults
    from napari_rvae.vae.files import load_model, save_model

    x = np.random.default_rng(2).random((80, 20, 20)).astype(np.float32)
    assert model_defaults("skip-rvae", x)["standardise_latents"] is True
    assert "standardise_latents" not in model_defaults("rvae", x)
    config = VAEConfig(arch="skip-rvae", window=(20, 20), latent=2, standardise_latents=True)
    model = _off_centre(config)
    Trainer(model, x, batch_size=20, seed=0, threads=1).fit(1)
    z = encode(model, x)[["z0", "z1"]].to_numpy()
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
    assert len(model.latent_standardisation) == 1
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.config.standardise_latents and again.latent_standardisation == model.latent_standardisation
    np.testing.assert_allclose(encode(again, x)[["z0", "z1"]].to_numpy(), z, atol=1e-5)
    # off by default: an rVAE's latents stay where training left them
    plain = _off_centre(VAEConfig(arch="rvae", window=(20, 20), latent=2))
    Trainer(plain, x, batch_size=20, seed=0, threads=1).fit(1)
    assert not getattr(plain, "latent_standardisation", [])
