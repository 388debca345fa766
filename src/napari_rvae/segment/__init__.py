"""Segmentation: U-Net with a dilated-pyramid bottleneck, trained from sparse painted labels.

Labels follow napari: 0 unlabelled (ignored), 1 background, 2 … classes;
probability channel ``c`` is label ``c + 1``.
"""

from .augment import Augment, normalise_frame
from .default_model import ATOM_CHANNEL, DEFAULT_ATOM_MODEL_DIR, load_default_atom_model
from .predict import Predictor, labels_from_predictions, native_bfloat16, predict, predict_with_uncertainty, predictive_entropy
from .train import SegmenterTrainer, TrainSettings, TrainingState, load_segmenter, save_segmenter, sparse_cross_entropy
from .unet import UNet, UNetConfig

__all__ = [
    "ATOM_CHANNEL", "Augment", "DEFAULT_ATOM_MODEL_DIR", "Predictor", "SegmenterTrainer", "TrainSettings",
    "TrainingState", "UNet", "UNetConfig", "labels_from_predictions", "load_default_atom_model", "native_bfloat16", "load_segmenter",
    "normalise_frame", "predict", "predict_with_uncertainty", "predictive_entropy", "save_segmenter",
    "sparse_cross_entropy",
]
