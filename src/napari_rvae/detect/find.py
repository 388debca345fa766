"""``detect_atoms``: one call from a movie (or probability maps) to the atom sites table.

The lattice is estimated from the frames first (:mod:`.lattice`); its spacing
sets every scale-dependent default (smoothing, minimum distance, the segmenter's
input rescale, refinement box, intensity disc) and its contrast says whether the
atoms are dark (ABF/BF), in which case the frames are inverted for detection.
Atoms are then found by the shipped segmenter or by peak finding, refined
(:mod:`.refine`), measured and classified (:mod:`.atoms`), and checked against the
lattice (:mod:`.plausibility`). What was estimated, used and found is in
``sites.attrs["detection"]``.

The segmenter is reached only through :func:`atom_map` / :func:`model_probabilities`,
which import :mod:`napari_rvae.segment` lazily, so detection works without torch
when ``method="peaks"`` or probability maps are given.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import warnings

import numpy as np
import pandas as pd

from ._checks import as_movie, as_probabilities, lazy_movie
from .lattice import Lattice, estimate_lattice

#: Network arithmetic for the segmenter (``napari_rvae.segment.Predictor``; kept here so that
#: importing detection does not import torch).
PRECISIONS = ("float32", "bfloat16", "int8", "auto")

CLASSIFY = ("auto", "channel", "intensity", "none")
CONTRASTS = ("auto", "bright", "dark")
AUTO_METHOD = "model"  # what method="auto" runs (docs/detection.md shows the evidence)
#: atoms closer than this (pixels) to a frame border are not reported by default: half an atom has no
#: reliable centre
EDGE_MARGIN = 2.0


def model_probabilities(movie, model="default", *, rescale: float | None = 1.0, precision: str = "auto",
                        spacing: float | None = None) -> np.ndarray:
    """Probability maps ``(T, C, Y, X)`` from a segmenter, imported lazily.

    Parameters
    ----------
    movie : (T, Y, X) array
        Frames with bright atoms. Frames with no finite pixel or no contrast get
        background everywhere (with a warning) instead of stopping the movie.
    model : "default", path or callable
        ``"default"``: the shipped atom finder
        (``napari_rvae.segment.load_default_atom_model``); a path: a segmenter
        folder (``napari_rvae.segment.load_segmenter``); a callable:
        ``movie -> (T, C, Y, X)`` probabilities (channel 0 = background).
    rescale : float, optional
        Passed to ``napari_rvae.segment.predict``: predict at a resized scale and
        map back. ``None``: the model's training spacing (``canonical_spacing_px``
        in its ``model.json``) over ``spacing``, or 1 without either.
    precision : {"auto", "float32", "bfloat16", "int8"}
        Network arithmetic (``napari_rvae.segment.Predictor``): ``"auto"`` (default) uses
        bfloat16 where the CPU computes it natively (about 2× faster, the same atoms), else
        float32; ``"int8"`` is
        about 2× faster per frame, calibrated on this movie, and falls back to
        float32 with a warning if the model cannot be quantised. Ignored for a
        callable ``model``.
    spacing : float, optional
        Nearest-neighbour atom spacing (pixels) for ``rescale=None``.
    """
    from ._checks import frame_is_usable

    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    data = as_movie(movie)
    if callable(model):
        return as_probabilities(model(data), "model output")
    net, config = _load_model(model)
    if rescale is None:
        rescale = training_rescale(config, spacing)
    usable = [t for t in range(len(data)) if not frame_is_usable(data[t])]
    for t in sorted(set(range(len(data))) - set(usable)):
        warnings.warn(f"frame {t}: {frame_is_usable(data[t])}; no atoms detected there", stacklevel=2)
    from .. import segment

    n_classes = net.config.n_classes if hasattr(net, "config") else None
    if not usable:
        raise ValueError("no frame has contrast to segment (all NaN or constant)")
    maps = as_probabilities(segment.predict(net, data[usable], rescale=rescale, precision=precision), "model output")
    if len(usable) == len(data):
        return maps
    out = np.zeros((len(data), n_classes or maps.shape[1]) + data.shape[1:], dtype=maps.dtype)
    out[:, 0] = 1.0
    out[usable] = maps
    return out


def training_rescale(config: dict, spacing: float | None) -> float:
    """Input rescale that shows a model atoms at its training spacing (``canonical_spacing_px`` in
    its ``model.json``); 1 for a model without one or an unknown ``spacing``."""
    canonical = config.get("canonical_spacing_px")
    if not canonical or spacing is None or not np.isfinite(spacing):
        return 1.0
    return float(np.clip(canonical / spacing, 0.05, 20.0))


def model_record(model) -> dict:
    """The ``model.json`` of ``"default"`` (the shipped atom finder) or a segmenter's folder, read without
    torch or the weights (its training spacing sets the rescale)."""
    from ..io.files import read_model_record

    if isinstance(model, str) and model == "default":
        import importlib.util

        package = importlib.util.find_spec("napari_rvae.segment").submodule_search_locations[0]
        model = Path(package) / "weights" / "atoms-default"
        if not (model / "model.safetensors").exists():
            raise ValueError(f"the default atom model is missing from {model}; reinstall napari-rvae or train one "
                             "with `python -m napari_rvae.segment.train_default -o DIR` and pass its folder")
    elif not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model: expected 'default', a model folder or a callable, got {type(model).__name__}")
    return read_model_record(model, "segmenter")


def _load_model(model):
    """``(UNet, config)`` for ``"default"`` or a model folder."""
    try:
        from .. import segment
    except ImportError as err:
        raise ValueError(f"the segmentation package is not available ({err}); use method='peaks' instead") from None
    if isinstance(model, str) and model == "default":
        return segment.load_default_atom_model(with_config=True)
    if isinstance(model, (str, os.PathLike)):
        return segment.load_segmenter(model)
    raise ValueError(f"model: expected 'default', a model folder or a callable, got {type(model).__name__}")


def atom_map(movie, *, lattice: Lattice | None = None, spacing: float | None = None, model="default",
             precision: str = "auto") -> np.ndarray:
    """The segmenter's per-class probability map ``(T, C, Y, X)`` of a movie, at the movie's pixels.

    Frames are rescaled to the model's training spacing first (the spacing is
    ``spacing``, or ``lattice.spacing``, or estimated), and inverted when the
    lattice has dark atoms (ABF/BF). Channel 0 is background, channel 1 atoms
    for the shipped model. This is what the papers cut windows from.
    """
    data = as_movie(movie)
    if lattice is None:
        lattice = movie_lattice(data, spacing=spacing)
    d = spacing if spacing is not None else (lattice.spacing if lattice.found or lattice.candidate else None)
    work = _for_detection(data, lattice.contrast)
    return model_probabilities(work, model, rescale=None, spacing=d, precision=precision)


def movie_lattice(movie, *, spacing: float | None = None, contrast: str = "auto") -> Lattice:
    """The movie's estimated lattice (:func:`~.lattice.estimate_lattice`), with the user's spacing and
    contrast where given. ``movie`` may be lazy (only the frames looked at are read)."""
    data = lazy_movie(movie)
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast: expected one of {', '.join(CONTRASTS)}, got {contrast!r}")
    if spacing is not None and not (np.isfinite(spacing) and 1.0 <= spacing <= min(data.shape[1:])):
        raise ValueError(f"spacing: must be between 1 pixel and the frame size, got {spacing}")
    lattice = estimate_lattice(data)
    if spacing is not None:
        note = f"spacing given ({spacing:g} px)" + (f"; estimated {lattice.spacing:.2f} px" if lattice.found else "")
        lattice = dataclasses.replace(lattice, spacing=float(spacing), found=True, note=note)
    if contrast != "auto":
        lattice = dataclasses.replace(lattice, contrast=contrast)
    return lattice


def _for_detection(data: np.ndarray, contrast: str) -> np.ndarray:
    """The frames with atoms bright: inverted (each frame about its own maximum) for dark atoms."""
    if contrast != "dark":
        return data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames stay NaN
        top = np.nanmax(data, axis=(1, 2), keepdims=True)
    return (top - data).astype(data.dtype, copy=False)


def detect_atoms(
    movie,
    *,
    method: str = "auto",
    model="default",
    probabilities=None,
    threshold: float | None = None,
    spacing: float | None = None,
    sigma: float | None = None,
    min_distance: float | None = None,
    edge_margin: float = EDGE_MARGIN,
    refine: bool = True,
    half_box: int | None = None,
    classify: str = "auto",
    intensity_radius: float | None = None,
    rescale: float | None = None,
    precision: str = "auto",
    contrast: str = "auto",
    lattice: Lattice | None = None,
) -> pd.DataFrame:
    """Atom sites of every frame: estimate the lattice, find, refine, measure, classify, check.

    Parameters
    ----------
    movie : (T, Y, X) or (Y, X) array
        Raw frames (HAADF-like bright atoms, or ABF/BF dark atoms: detected and inverted).
    method : {"auto", "model", "peaks", "threshold"}
        ``"auto"`` (default): the shipped segmenter at the lattice's scale (see
        docs/detection.md for why). ``"model"``: the segmenter's probability
        maps (``probabilities`` if given, else ``model``), peaks of the atom
        probability. ``"peaks"``: peak finding on the smoothed frame.
        ``"threshold"``: threshold + connected components + centroid of the
        normalised frame (or of ``probabilities``).
    model : "default", path or callable
        Segmenter for ``"model"`` (see :func:`model_probabilities`).
    probabilities : (T, C, Y, X) array, optional
        Precomputed segmenter output (channel 0 = background).
    threshold : float, optional
        Probability threshold for maps (default 0.5), or the relative peak
        height for ``"peaks"`` (default 0.5, see :func:`atoms_from_image`).
    spacing : float, optional
        Nearest-neighbour atom spacing in pixels; default: estimated from the
        frames (:func:`~.lattice.estimate_lattice`). Every scale-dependent
        default below follows from it (:func:`~.lattice.scale_defaults`).
    sigma : float, optional
        Smoothing (pixels) for ``"peaks"`` (default 0.2 × spacing, about an atom's σ)
        and ``"threshold"`` (default 0.1 × spacing).
    min_distance : float, optional
        Minimum atom separation (pixels); default 0.55 × spacing.
    edge_margin : float
        Drop atoms closer than this (pixels) to the border.
    refine : bool
        Sub-pixel refinement (Gaussian fit, centroid where the fit is poor;
        adds ``fit_sigma``, ``refined``, ``position_from``).
    half_box : int, optional
        Refinement box half-size (pixels); default from the atoms' spacing and width.
    classify : {"auto", "channel", "intensity", "none"}
        Class from the segmenter channel (``"channel"``, the default for maps
        with more than one atom class) or from clustering the integrated
        intensity over the whole movie (``"intensity"``, the default otherwise).
    intensity_radius : float, optional
        Disc radius (pixels) of the integrated intensity; default 0.3 × spacing.
    rescale : float, optional
        Segmenter input rescale; default: the model's training spacing / spacing.
    precision : {"auto", "float32", "bfloat16", "int8"}
        Segmenter arithmetic (see :func:`model_probabilities`); the metadata records the one used.
    contrast : {"auto", "bright", "dark"}
        Atom contrast; ``"auto"`` reads it from the frames.
    lattice : Lattice, optional
        An estimate already made (:func:`movie_lattice`), to skip estimating again.

    Returns
    -------
    sites : DataFrame
        ``frame, y, x, kind="atom", class, intensity`` (+ ``fit_sigma, refined,
        position_from``). ``sites.attrs["detection"]`` records the lattice
        (estimated or given), the method and every parameter used, and the
        plausibility findings (each also issued as a warning).

    Raises
    ------
    ValueError
        Bad input, or no frame shows an atomic lattice and no ``spacing`` (or
        explicit ``sigma`` / ``min_distance`` / ``rescale``) was given.
    """
    from .stages import detect_frames, finish_detection, plan_detection

    data = as_movie(movie)
    plan = plan_detection(data, method=method, model=model, with_probabilities=probabilities is not None,
                          threshold=threshold, spacing=spacing, sigma=sigma, min_distance=min_distance,
                          edge_margin=edge_margin, refine=refine, half_box=half_box, classify=classify,
                          intensity_radius=intensity_radius, rescale=rescale, precision=precision,
                          contrast=contrast, lattice=lattice)
    maps = None if probabilities is None else as_probabilities(probabilities)
    sites, channels = detect_frames(data, plan, probabilities=maps)
    return finish_detection(sites, plan, data.shape, channels)
