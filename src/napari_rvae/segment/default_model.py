"""The shipped default atom finder (weights inside the package; no download).

A small U-Net (labels 1 background, 2 atom) trained only on the project's
synthetic lattices by ``python -m napari_rvae.segment.train_default``; its
training record is in ``model.json`` and ``docs/segmentation.md``. It expects
nearest-neighbour atom spacings of roughly 6–25 pixels; for other spacings
predict with ``rescale ≈ 12 / spacing_px``.
"""

from __future__ import annotations

from pathlib import Path

from .train import load_segmenter
from .unet import UNet

DEFAULT_ATOM_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "atoms-default"
ATOM_CHANNEL = 1  # probability channel of label 2 (atom)


def load_default_atom_model(with_config: bool = False) -> UNet | tuple[UNet, dict]:
    """Load the shipped atom-finding U-Net (eval mode, CPU).

    Parameters
    ----------
    with_config : bool
        Also return the ``model.json`` content (training record, held-out scores).

    Returns
    -------
    model : UNet, or ``(model, config)``; channel ``ATOM_CHANNEL`` of
    :func:`~.predict.predict`'s output is the atom probability.
    """
    if not (DEFAULT_ATOM_MODEL_DIR / "model.safetensors").exists():
        raise ValueError(
            f"the default atom model is missing from {DEFAULT_ATOM_MODEL_DIR}; reinstall napari-rvae or "
            "train one with `python -m napari_rvae.segment.train_default -o DIR` and pass its folder"
        )
    model, config = load_segmenter(DEFAULT_ATOM_MODEL_DIR)
    return (model, config) if with_config else model
