"""Model settings a skip-rVAE takes from its windows (paper 000's wide, atom-centred windows).

The skip-rVAE maps the chemistry around an atom, so its windows are several bond lengths wide
(``detect.lattice.scale_defaults()["chemistry_window"]``: five spacings). Three things keep a
coordinate decoder from learning such windows in CPU minutes, and :func:`model_defaults` sets
each from the windows:

- **angle symmetry**: an atom of a honeycomb sits on a 3-fold axis, so the first and second
  circular harmonics of its window vanish and the equivariant angle head (which reads them) sees
  only noise; the decoder then gets a random angle per window and can only draw the rotational
  average. ``angle_symmetry`` = the content's symmetry order
  (:func:`~napari_rvae.vae.harmonics.content_symmetry`) makes the head read harmonics ``n, 2n, …``
  and the angle is defined modulo ``2π/n``, like the content.
- **grid scale**: the decoder's tanh units start as waves about one window long; a lattice five
  spacings wide needs waves at its own period. ``grid_scale`` multiplies the coordinates so the
  first layer starts (and learns) at the lattice's frequency: ``GRID_WAVES · (w/2) / spacing``.
- **translation prior**: the shift latents are scaled by ``translation_prior`` half-windows; the
  generic 0.1 is 3 px on a 60 px window, and while the decoder learns, shifts drawn from the prior
  blur every atom away. Windows cut around atoms are centred within a pixel, so the prior is one
  pixel.
- **latent units**: the sharp likelihood leaves the KL term weak, and the windows can end up
  encoded far from the N(0, 1) prior (z ≈ −3 ± 0.7 on graphene), where the chemistry map's ``±3``
  grid does not look; ``standardise_latents`` rescales the content latents after training
  (exactly, :mod:`.standardise`) so the grid covers the encoded windows.
"""

from __future__ import annotations

import math

#: grid scale per (half-window / spacing): honeycomb reciprocal vectors are 4π/(3·L) rad/px, times
#: the half-window in grid units, over the largest first-layer weight at initialisation (½)
GRID_WAVES = 8.0 * math.pi / 3.0
#: 1 σ of the shift latents, pixels, for atom-centred windows of a skip-rVAE
SHIFT_PIXELS = 1.0


def model_defaults(arch: str, windows, normalisation: dict | None = None) -> dict:
    """``VAEConfig`` fields a model of ``arch`` takes from its training ``windows`` (``(N, h, w)``) and
    their recipe (``normalisation``, which records ``site_spacing_px``): empty for other models
    than the skip-rVAE; for it ``angle_symmetry``, ``grid_scale``, ``translation_prior`` and ``standardise_latents``."""
    if arch != "skip-rvae":
        return {}
    import numpy as np

    from .harmonics import content_symmetry

    shape = np.shape(windows)
    if len(shape) != 3:
        return {}
    half = (min(shape[1:]) - 1) / 2.0
    spacing = (normalisation or {}).get("site_spacing_px")
    if not spacing or not np.isfinite(spacing) or spacing <= 0:
        spacing = min(shape[1:]) / 5.0  # the chemistry window is five spacings
    if (normalisation or {}).get("site_kind") == "hollow":
        spacing = spacing / math.sqrt(3.0)  # hollow sites are √3 bonds apart
    return {"angle_symmetry": int(content_symmetry(windows)),
            "grid_scale": float(min(100.0, max(1.0, GRID_WAVES * half / spacing))),
            "translation_prior": float(min(0.1, SHIFT_PIXELS / max(half, 1.0))),
            "standardise_latents": True}


#: training settings per architecture where they differ from the generic ones (batch 100, lr 1e-3,
#: every pixel): the skip-rVAE's wide windows need many small, cheap steps (a decoder of a lattice
#: learns per step, not per window), so small batches and a random tenth of the pixels per step
TRAINING = {"skip-rvae": {"batch": 16, "lr": 3e-3, "pixel_fraction": 0.1}}
GENERIC_TRAINING = {"batch": 100, "lr": 1e-3, "pixel_fraction": 1.0}


def training_defaults(arch: str) -> dict:
    """``batch``, ``lr`` and ``pixel_fraction`` a model of ``arch`` trains with by default."""
    return {**GENERIC_TRAINING, **TRAINING.get(arch, {})}


#: fewest optimiser steps a default run gives a model: the decoder of a coordinate VAE learns per
#: step, not per window, so a single real image (≈ 1 000 windows, ≈ 35 steps of 32 per epoch) left at
#: 12 epochs stops after ≈ 400 steps with reconstructions worse than the mean window (measured on a
#: real TMD image: gain −0.30 after 411 steps, +0.60 after 1 050), while a movie's 8 000 windows pass
#: 1 200 steps in 5 epochs
MIN_STEPS = 1200
#: the most epochs :func:`epochs_for` asks for (a few dozen windows)
MAX_AUTO_EPOCHS = 400


def epochs_for(n_windows: int, batch: int, epochs: int, min_steps: int = MIN_STEPS) -> int:
    """Epochs a default run trains: ``epochs``, or more where the windows are few, so that the model
    gets at least ``min_steps`` optimiser steps (batches of ``batch``); at most ``MAX_AUTO_EPOCHS``
    unless ``epochs`` itself is more."""
    per_epoch = max(1, math.ceil(max(int(n_windows), 1) / max(int(batch), 1)))
    return int(max(epochs, min(MAX_AUTO_EPOCHS, math.ceil(max(int(min_steps), 0) / per_epoch))))
