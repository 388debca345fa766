"""``train``: build a model for a stack of windows and train it, in one call (notebooks, scripts).

For control over each epoch (progress, Stop / Continue) use :class:`~napari_rvae.vae.Trainer`
directly; this is that loop run to the end.
"""

from __future__ import annotations

import numpy as np

from .config import VAEConfig
from .models import InvariantVAE, build_model
from .trainer import Trainer


def train(windows, *, arch: str = "rvae", latent: int = 2, epochs: int = 20, batch_size: int | None = None,
          lr: float | None = None, seed: int = 0, device: str = "auto", threads: int | None = None,
          pixel_fraction: float | None = None, normalisation: dict | None = None, log=None, **config) -> InvariantVAE:
    """Train a VAE / rVAE / skip-rVAE / shift-VAE on windows and return the trained model.

    Parameters
    ----------
    windows : Windows or array (N, h, w) or (N, w)
        What :func:`napari_rvae.cut_windows` returns (its normalisation travels with the model),
        or a plain float array normalised as you like.
    arch : {"rvae", "skip-rvae", "shift-vae", "vae"}
    latent : int
        Content latents ``z0 … z{latent−1}`` (besides the angle and shifts of the invariant models).
    epochs, batch_size, lr, seed, device, threads, pixel_fraction
        Training settings (``batch_size``, ``lr``, ``pixel_fraction``: default the architecture's,
        :func:`~napari_rvae.vae.defaults.training_defaults`) (see :class:`~napari_rvae.vae.Trainer`); same seed and data give the
        same model on the CPU.
    normalisation : dict, optional
        How the windows were normalised, stored with the model (default: the ``Windows``' own).
    log : callable, optional
        Receives one line per epoch (e.g. ``print``).
    config
        Any other :class:`~napari_rvae.vae.VAEConfig` field (``rotation_prior``, ``encoder`` …).

    Returns
    -------
    InvariantVAE with ``history`` (one dict per epoch) and ``normalisation`` attached; save it
    with :func:`napari_rvae.save_model`.

    Examples
    --------
    >>> cut = cut_windows(movie, sites, 24, normalisation="global")      # doctest: +SKIP
    >>> model = train(cut, arch="rvae", latent=2, epochs=20)             # doctest: +SKIP
    >>> latents = encode(model, cut.windows)                             # doctest: +SKIP
    """
    stack = getattr(windows, "windows", windows)
    x = np.asarray(stack, dtype=np.float32)
    if x.ndim not in (2, 3) or len(x) < 2:
        raise ValueError(f"windows: expected at least two windows as (N, h, w) or (N, w), got shape {x.shape}")
    if normalisation is None:
        normalisation = getattr(windows, "normalisation", None) or {"mode": "none"}
    from .defaults import model_defaults, training_defaults

    fit = training_defaults(arch)
    batch_size = fit["batch"] if batch_size is None else batch_size
    lr = fit["lr"] if lr is None else lr
    pixel_fraction = fit["pixel_fraction"] if pixel_fraction is None else pixel_fraction
    config = {**model_defaults(arch, x, normalisation), **config}
    model = build_model(VAEConfig(arch=arch, window=tuple(x.shape[1:]), latent=latent, **config), seed=seed)
    model.normalisation = normalisation
    trainer = Trainer(model, x, batch_size=batch_size, lr=lr, seed=seed, device=device, threads=threads,
                      pixel_fraction=pixel_fraction)
    for stats in trainer.run(int(epochs)):
        if log is not None:
            log(f"epoch {stats['epoch']}/{epochs}: loss {stats['train_loss']:.4g} (test {stats['test_loss']:.4g})")
    model.history = list(trainer.state.history)
    return model
