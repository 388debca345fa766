"""The trained model shared by the docks of one viewer (Train VAE → Latent explorer), and its decoder."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._state import workflow


def model_link(viewer):
    """The viewer's :class:`~._state.Workflow`, which holds its current model (``.model``,
    ``model_changed``, ``set_model``)."""
    return workflow(viewer)


def model_decoder(model) -> Callable[[np.ndarray, float, float, float], np.ndarray]:
    """``decode(z, angle, dx, dy) -> (h, w)`` for the latent explorer, from a trained model."""
    from ..vae import decode

    latent = int(model.config.latent)

    def decode_one(z, angle, dx, dy):
        z = np.asarray(z, dtype=np.float32).ravel()
        if z.size != latent:  # the table and the model disagree: pad / cut to the model's latents
            z = np.resize(np.concatenate([z, np.zeros(latent, np.float32)]), latent)
        return decode(model, z[None], angle, dx, dy)[0]

    decode_one.__name__ = f"{model.config.arch} decoder"
    return decode_one
