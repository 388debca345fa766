"""Invariant VAEs: VAE, rVAE, skip-rVAE and shift-VAE, their trainer and latent tools.

Typical use::

    from napari_rvae.vae import VAEConfig, build_model, Trainer, encode, save_model
    model = build_model(VAEConfig(arch="rvae", window=(28, 28), latent=2), seed=0)
    for stats in Trainer(model, windows, seed=0).run(epochs=20):
        print(stats["epoch"], stats["test_loss"])
    latents = encode(model, windows)          # angle (rad), dx, dy (pixels), z0, z1
    save_model(model, "my_model")
"""

from .config import BetaSchedule, VAEConfig
from .files import load_model, save_model, train_state
from .latents import decode, encode, encode_sites, kl_per_latent, latent_grid, manifold, reconstruct, wrap_angle
from .models import InvariantVAE, build_model
from .trainer import Trainer, TrainState

__all__ = [
    "BetaSchedule", "VAEConfig", "InvariantVAE", "build_model", "Trainer", "TrainState",
    "encode", "decode", "encode_sites", "manifold", "latent_grid", "reconstruct", "wrap_angle", "kl_per_latent",
    "save_model", "load_model", "train_state",
]
