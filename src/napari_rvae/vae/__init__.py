"""Invariant VAEs: VAE, rVAE, skip-rVAE and shift-VAE, their trainer and latent tools.

Typical use::

    from napari_rvae.vae import VAEConfig, build_model, Trainer, encode, save_model
    model = build_model(VAEConfig(arch="rvae", window=(28, 28), latent=2), seed=0)
    for stats in Trainer(model, windows, seed=0).run(epochs=20):
        print(stats["epoch"], stats["test_loss"])
    latents = encode(model, windows)          # angle (rad), dx, dy (pixels), z0, z1
    save_model(model, "my_model")
"""

# Names are imported on first use (PEP 562), so that ``napari-rvae --help`` and the
# CLI's command table do not import torch.
_NAMES = {
    "BetaSchedule": "config", "VAEConfig": "config",
    "InvariantVAE": "models", "build_model": "models",
    "Trainer": "trainer", "TrainState": "trainer", "TrainingDiverged": "trainer", "train": "train",
    "encode": "latents", "decode": "latents", "encode_sites": "latents", "manifold": "latents",
    "latent_grid": "latents", "reconstruct": "latents", "wrap_angle": "latents", "kl_per_latent": "latents",
    "save_model": "files", "load_model": "files", "train_state": "files", "load_checkpoint": "files",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
