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
        import torch

        z = np.asarray(z, dtype=np.float32).ravel()
        if z.size != latent:  # the table and the model disagree: pad / cut to the model's latents
            z = np.resize(np.concatenate([z, np.zeros(latent, np.float32)]), latent)
        # one window is a few hundred µs of work: with several OpenMP threads the GUI thread waits
        # tens of ms for sleeping helpers to wake (longer on a busy machine). The count is per thread.
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            return decode(model, z[None], angle, dx, dy)[0]
        finally:
            if threads != 1:
                torch.set_num_threads(threads)

    decode_one.__name__ = f"{model.config.arch} decoder"
    return decode_one
