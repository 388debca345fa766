"""The 2D shift-VAE recipe (paper 004): what makes its content latents follow an order parameter.

Windows cut at arbitrary positions of a lattice differ mostly by their phase (where the atoms
sit in the window); the physics (the order parameter) is a small change on top. A shift-VAE has
two shift latents that move the decoder's coordinate grid, so the phase can be explained by a
translation and the content latents keep the order parameter. With plain defaults that does not
happen on 2D lattices: the content latents learn the phase instead (a "template selector",
maps with the lattice period; paper 004's "leakage"). Three things fix it, measured on the
shift-lattice sample (``docs/analysis-2.md``):

* **translation prior 1** (:data:`SHIFT_VAE_2D`): the shift's prior σ is half a window, so a
  shift of half a lattice period — the phase of any window — is cheap;
* **steep coordinate units** (:func:`steepen_decoder`): the decoder's first-layer coordinate
  weights start ``slope · (w − 1)/2`` times larger, so the decoder can draw atoms a few pixels
  wide at once instead of sitting at the mean window, and a shift moves the template more than
  a content latent can;
* **shift warm-up** (:func:`content_disconnected`, :func:`shift_vae_epochs`): the first epochs
  train with the content latents disconnected from the decoder, so the shift latents and the
  decoder learn the lattice and each window's phase before any content latent can; then the KL
  weight ramps from a small β (:data:`SHIFT_VAE_BETA`).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

#: VAEConfig fields of the 2D shift-VAE (encoder / decoder widths, translation prior in half windows)
SHIFT_VAE_2D = {"encoder_widths": (128, 128), "decoder_widths": (64, 64, 64), "translation_prior": 1.0}
#: KL weight after the warm-up: linear from 0.1 to 1 (a large initial β lets the phase leak)
SHIFT_VAE_BETA = {"kind": "linear", "start": 0.1, "end": 1.0}
#: initial steepness (1/pixel) of the decoder's coordinate units
DECODER_SLOPE = 0.8
#: models trained at most (new seeds) until one's content-latent maps score ≥ GOOD_SMOOTHNESS
ATTEMPTS = 3
GOOD_SMOOTHNESS = 0.5
#: epochs of the shift warm-up (content latents disconnected), at β = 1
WARMUP_EPOCHS = 20
WARMUP_BETA = 1.0


def shift_vae_config(window: int, latent: int = 2, epochs: int = 20, **options):
    """:class:`~napari_rvae.vae.VAEConfig` of a 2D shift-VAE with the recipe's defaults
    (``options`` override them); its β schedule ramps over ``epochs``."""
    from .config import BetaSchedule, VAEConfig

    fields = dict(SHIFT_VAE_2D)
    fields.update(options)
    fields.setdefault("beta", BetaSchedule(epochs=max(1, int(epochs)), **SHIFT_VAE_BETA))
    return VAEConfig(arch="shift-vae", window=(int(window), int(window)), latent=int(latent), **fields)


def steepen_decoder(model, slope: float = DECODER_SLOPE) -> None:
    """Scale the weights and biases of the decoder's first-layer coordinate units by
    ``slope · (w − 1)/2`` (``slope`` in 1/pixel; 0 leaves the model as it is)."""
    import torch

    if not slope > 0:
        return
    window = model.config.window[-1]
    first_w, first_b = model.decoder.mlp.weights[0], model.decoder.mlp.biases[0]
    d = model.decoder.dims
    with torch.no_grad():
        first_w[:, :d] *= slope * (window - 1) / 2.0
        first_b *= slope * (window - 1) / 2.0


@contextlib.contextmanager
def content_disconnected(model):
    """Inside the block the content latents do not reach the decoder (their first-layer
    weights are 0 and get no gradient, so Adam leaves them at 0); restored on exit."""
    import torch

    first_w = model.decoder.mlp.weights[0]
    d = model.decoder.dims
    saved = first_w.detach()[:, d:].clone()
    with torch.no_grad():
        first_w[:, d:] = 0.0
    hook = first_w.register_hook(lambda g: torch.cat([g[:, :d], torch.zeros_like(g[:, d:])], 1))
    try:
        yield model
    finally:
        hook.remove()
        with torch.no_grad():
            first_w[:, d:] = saved


def is_shift_vae_2d(config) -> bool:
    return config.arch == "shift-vae" and config.dims == 2


def shift_vae_epochs(model, windows, epochs: int, *, warmup_epochs: int = WARMUP_EPOCHS,
                     warmup_beta: float = WARMUP_BETA, **train_options) -> Iterator[tuple]:
    """Train a 2D shift-VAE with the shift warm-up, step by step.

    Yields ``("trainer", trainer)`` when each phase's :class:`~napari_rvae.vae.Trainer` is built
    (to stop it) and ``("epoch", stats)`` per epoch; ``stats["epoch"]`` counts both phases and
    warm-up epochs carry ``phase = "warmup"``. The model's own β schedule applies after the
    warm-up. Sets ``model.history``. Returns whether training was stopped.
    """
    from .config import BetaSchedule
    from .trainer import Trainer

    history: list = []
    done = 0
    if warmup_epochs > 0:
        schedule = model.config.beta
        model.config.beta = BetaSchedule(kind="constant", start=warmup_beta, end=warmup_beta)
        try:
            with content_disconnected(model):
                trainer = Trainer(model, windows, **train_options)
                yield ("trainer", trainer)
                for stats in trainer.run(int(warmup_epochs)):
                    stats = dict(stats, phase="warmup")
                    history.append(stats)
                    done = stats["epoch"]
                    yield ("epoch", stats)
        finally:
            model.config.beta = schedule
            model.history = list(history)
        if trainer.state.status == "stopped":
            return True
    trainer = Trainer(model, windows, **train_options)
    yield ("trainer", trainer)
    for stats in trainer.run(int(epochs)):
        stats = dict(stats, epoch=done + stats["epoch"])
        history.append(stats)
        model.history = list(history)
        yield ("epoch", stats)
    return trainer.state.status == "stopped"


def shift_vae_attempts(build, windows, epochs: int, *, score=None, attempts: int = ATTEMPTS,
                       good: float = GOOD_SMOOTHNESS, **options) -> Iterator[tuple]:
    """Train shift-VAEs until one's latent maps are smooth: paper 004's physicality criterion
    (an order parameter varies slowly on the lattice scale) used to reject a run whose content
    latents took the lattice phase.

    ``build(attempt)`` returns a fresh model (another seed per attempt); each is trained with
    :func:`shift_vae_epochs` (``options``) and scored by ``score(model)`` (e.g. the FFT smoothness
    of its content-latent maps, higher is smoother). Training stops at the first score ≥ ``good``
    or after ``attempts`` models; the best-scored is returned (``yield from`` gives it), with
    ``model.attempts`` = every score. Without ``score`` one model is trained. Besides
    :func:`shift_vae_epochs`' items, yields ``("attempt", i, score)`` after each model; the epoch
    count runs on across attempts.
    """
    best, scores, done = None, [], 0
    for attempt in range(max(1, int(attempts)) if score is not None else 1):
        model = build(attempt)
        steps = shift_vae_epochs(model, windows, epochs, **options)
        while True:
            try:
                item = next(steps)
            except StopIteration as finished:
                stopped = bool(finished.value)
                break
            if item[0] == "epoch":
                item = ("epoch", dict(item[1], epoch=done + item[1]["epoch"], attempt=attempt))
            yield item
        done += len(model.history)
        value = float(score(model)) if score is not None and not stopped else float("nan")
        scores.append(value)
        yield ("attempt", attempt, value)
        if best is None or value > best[0] or (best[0] != best[0] and value == value):
            best = (value, model)
        if stopped or value >= good:
            break
    model = best[1]
    model.attempts = scores
    return model
