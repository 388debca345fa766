"""The trained model shared by the docks of one viewer (Train VAE → Latent explorer)."""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
from qtpy.QtCore import QObject, Signal

_LINKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class ModelLink(QObject):
    """Holds the current model of a viewer; docks listen to ``model_changed``."""

    model_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.model = None

    def set_model(self, model) -> None:
        self.model = model
        self.model_changed.emit(model)


def model_link(viewer) -> ModelLink:
    """The :class:`ModelLink` of ``viewer`` (created on first use)."""
    link = _LINKS.get(viewer)
    if link is None:
        link = _LINKS[viewer] = ModelLink()
    return link


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
