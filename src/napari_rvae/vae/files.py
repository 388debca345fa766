"""Model files: ``model.safetensors`` (weights) + ``model.json`` (everything else).

``model.json`` holds ``kind: "vae"``, the architecture (:class:`VAEConfig`,
with the priors and the β schedule), the window size, the normalisation of the
training windows, the training history and settings, and the package version.
A model saved during training also has ``training.safetensors`` (Adam's moments and
the random generator) described by ``model.json``'s ``optimizer`` entry, so that
``train --resume`` continues exactly. The folder is replaced as a whole on every save.
Loading never unpickles (see :func:`napari_rvae.io.files.load_model_files`).
"""

from __future__ import annotations

import os

import torch

from ..io.files import load_model_files, load_tensor_file, save_model_files
from .config import VAEConfig
from .models import InvariantVAE, build_model
from .trainer import Trainer, TrainState

FORMAT_VERSION = 1
CHECKPOINT_NAME = "training.safetensors"


def save_model(model: InvariantVAE, folder: str | os.PathLike, *, normalisation: dict | None = None,
               history: list | None = None, training: dict | None = None, trainer: Trainer | None = None):
    """Save a model into ``folder``, replacing the folder as a whole; returns the folder path.

    ``normalisation`` (from :func:`napari_rvae.patches.normalise`) and
    ``history`` default to the ones attached to the model
    (``model.normalisation``, ``model.history``). With ``trainer``, its optimizer and
    random-generator state are saved too (``training.safetensors``) for an exact resume.
    """
    cfg = model.config
    norm = normalisation if normalisation is not None else getattr(model, "normalisation", {"mode": "none"})
    hist = history if history is not None else getattr(model, "history", [])
    config = {
        "kind": "vae",
        "format_version": FORMAT_VERSION,
        "arch": cfg.arch,
        "window": list(cfg.window),
        "config": cfg.to_dict(),
        "normalisation": norm,
        "priors": {"rotation_prior": cfg.rotation_prior, "translation_prior": cfg.translation_prior},
        "beta_schedule": cfg.to_dict()["beta"],
        "history": hist,
        "training": training if training is not None else getattr(model, "training_settings", {}),
    }
    if getattr(model, "latent_standardisation", None):  # vae.standardise: old latent = offset + scale × new
        config["latent_standardisation"] = list(model.latent_standardisation)
    tensors = {k: v for k, v in model.state_dict().items()}
    extra = None
    if trainer is not None:
        checkpoint, meta = trainer.checkpoint()
        config["optimizer"] = {"file": CHECKPOINT_NAME, **meta}
        extra = {CHECKPOINT_NAME: checkpoint}
    return save_model_files(folder, tensors, config, extra=extra)


def load_model(folder: str | os.PathLike, device: str = "cpu") -> InvariantVAE:
    """Load a model saved by :func:`save_model`.

    The returned model carries ``normalisation``, ``history`` (list of epoch
    statistics), ``training_settings`` and ``package_version`` attributes;
    :func:`train_state` turns its history into a :class:`TrainState` to resume.

    Raises
    ------
    ValueError
        Not a VAE model folder, a pickle, a truncated or corrupt file, or
        weights that do not match the stored architecture.
    """
    tensors, config = load_model_files(folder, kind="vae")
    try:
        cfg = VAEConfig.from_dict(config["config"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{folder}: model.json has no valid 'config' ({err})") from None
    model = build_model(cfg, seed=None)
    expected = set(model.state_dict())
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(f"{folder}: weights do not match the architecture (missing {missing[:3]}, unexpected {extra[:3]})")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        raise ValueError(f"{folder}: weights do not match the architecture ({err})") from None
    model.normalisation = config.get("normalisation", {"mode": "none"})
    model.history = list(config.get("history", []))
    model.training_settings = dict(config.get("training", {}))
    model.latent_standardisation = list(config.get("latent_standardisation", []))
    model.package_version = config.get("package_version")
    model.optimizer_meta = config.get("optimizer") if isinstance(config.get("optimizer"), dict) else None
    return model.to(torch.device(device))


def load_checkpoint(folder: str | os.PathLike, model: InvariantVAE) -> tuple[dict, dict] | None:
    """The ``(tensors, meta)`` optimizer checkpoint saved with a model (for
    ``Trainer(checkpoint=…)``), or ``None`` when the model was saved without one."""
    meta = getattr(model, "optimizer_meta", None)
    if not meta:
        return None
    from pathlib import Path

    path = Path(folder)
    path = (path.parent if path.is_file() else path) / CHECKPOINT_NAME
    if meta.get("file") != CHECKPOINT_NAME or not path.is_file():
        raise ValueError(f"{path}: model.json describes an optimizer state but {CHECKPOINT_NAME} is missing")
    return load_tensor_file(path), meta


def train_state(model: InvariantVAE) -> TrainState:
    """A :class:`TrainState` continuing a loaded model's history (epoch count included),
    so the β schedule resumes where it stopped."""
    history = list(getattr(model, "history", []))
    epoch = max((int(h.get("epoch", 0)) for h in history), default=0)
    return TrainState(status="idle", epoch=epoch, history=history)
