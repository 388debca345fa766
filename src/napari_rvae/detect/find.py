"""``detect_atoms``: one call from a movie (or probability maps) to the atom sites table.

Composes :mod:`.atoms` (finding, intensity, classes) and :mod:`.refine`
(sub-pixel positions). The segmenter is reached only through
:func:`model_probabilities`, which imports :mod:`napari_rvae.segment` lazily,
so detection works without torch when ``method="peaks"`` or probability maps
are given.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from ._checks import as_movie, as_probabilities, nearest_neighbour_distance
from .atoms import (
    METHODS,
    _threshold_image,
    atoms_from_image,
    atoms_from_probabilities,
    classify_by_intensity,
    site_intensity,
)
from .refine import refine_sites

CLASSIFY = ("auto", "channel", "intensity", "none")


def model_probabilities(movie, model="default", *, rescale: float = 1.0, precision: str = "float32") -> np.ndarray:
    """Probability maps ``(T, C, Y, X)`` from a segmenter, imported lazily.

    Parameters
    ----------
    movie : (T, Y, X) array
    model : "default", path or callable
        ``"default"``: the shipped atom finder
        (``napari_rvae.segment.load_default_atom_model``); a path: a segmenter
        folder (``napari_rvae.segment.load_segmenter``); a callable:
        ``movie -> (T, C, Y, X)`` probabilities (channel 0 = background).
    rescale : float
        Passed to ``napari_rvae.segment.predict``: predict at a resized scale
        (e.g. ``12 / spacing_in_pixels`` for the default model on very
        different atom spacings) and map back.
    precision : {"float32", "int8"}
        Network arithmetic (``napari_rvae.segment.Predictor``): ``"int8"`` is
        about 2× faster per frame, calibrated on this movie, and falls back to
        float32 with a warning if the model cannot be quantised. Ignored for a
        callable ``model``.
    """
    if precision not in ("float32", "int8"):
        raise ValueError(f"precision: expected 'float32' or 'int8', got {precision!r}")
    if callable(model):
        return as_probabilities(model(movie), "model output")
    try:
        from .. import segment
    except ImportError as err:
        raise ValueError(f"the segmentation package is not available ({err}); use method='peaks' instead") from None
    if isinstance(model, str) and model == "default":
        net = segment.load_default_atom_model()
    elif isinstance(model, (str, os.PathLike)):
        net, _config = segment.load_segmenter(model)
    else:
        raise ValueError(f"model: expected 'default', a model folder or a callable, got {type(model).__name__}")
    return as_probabilities(segment.predict(net, movie, rescale=rescale, precision=precision), "model output")


def detect_atoms(
    movie,
    *,
    method: str = "peaks",
    model="default",
    probabilities=None,
    threshold: float | None = None,
    sigma: float = 1.0,
    min_distance: int | None = None,
    edge_margin: float = 2.0,
    refine: bool = True,
    half_box: int | None = None,
    classify: str = "auto",
    intensity_radius: float | None = None,
    rescale: float = 1.0,
    precision: str = "float32",
) -> pd.DataFrame:
    """Atom sites of every frame: find, refine, measure intensity, classify.

    Parameters
    ----------
    movie : (T, Y, X) or (Y, X) array
        Raw frames (bright atoms, HAADF-like).
    method : {"peaks", "threshold", "model"}
        ``"peaks"``: peak finding on the smoothed raw image. ``"threshold"``:
        threshold + connected components + centroid of the normalised raw image
        (or of ``probabilities`` when given). ``"model"``: the segmenter's
        probability maps (``probabilities`` if given, else ``model``), then
        threshold + components.
    model : "default", path or callable
        Segmenter for ``method="model"`` (see :func:`model_probabilities`).
    probabilities : (T, C, Y, X) array, optional
        Precomputed segmenter output (channel 0 = background); used by
        ``"model"`` and ``"threshold"``.
    threshold : float, optional
        Probability threshold for maps (default 0.5), or the relative peak
        height for ``"peaks"`` (default 0.5, see :func:`atoms_from_image`).
    sigma : float
        Smoothing (pixels) for ``"peaks"`` / ``"threshold"`` on the raw image.
    min_distance : int, optional
        Minimum peak separation (pixels) for ``"peaks"``.
    edge_margin : float
        Drop atoms closer than this (pixels) to the border.
    refine : bool
        Sub-pixel 2D Gaussian refinement of all atoms (adds ``fit_sigma``, ``refined``).
    half_box : int, optional
        Refinement box half-size (pixels); default ¼ of the nearest-neighbour distance.
    classify : {"auto", "channel", "intensity", "none"}
        Class from the segmenter channel (``"channel"``, the default for maps
        with more than one class) or from clustering the integrated intensity
        over the whole movie (``"intensity"``, the default otherwise).
    intensity_radius : float, optional
        Disc radius (pixels) of the integrated intensity; default 0.3 × the
        median nearest-neighbour distance (at least 1.5).
    rescale : float
        Segmenter input rescale for ``method="model"`` (see :func:`model_probabilities`).
    precision : {"float32", "int8"}
        Segmenter arithmetic for ``method="model"`` (see :func:`model_probabilities`).

    Returns
    -------
    sites : DataFrame
        ``frame, y, x, kind="atom", class, intensity`` (+ ``fit_sigma, refined``).
        Empty (with a warning) when no atom is found.
    """
    data = as_movie(movie)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if classify not in CLASSIFY:
        raise ValueError(f"classify: expected one of {', '.join(CLASSIFY)}, got {classify!r}")
    maps = None
    if probabilities is not None:
        maps = as_probabilities(probabilities)
    elif method == "model":
        maps = model_probabilities(data, model, rescale=rescale, precision=precision)
    if maps is not None and (maps.shape[0], maps.shape[2], maps.shape[3]) != data.shape:
        raise ValueError(f"probabilities: shape {maps.shape} does not match the movie {data.shape}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one warning below instead of one per step
        if maps is not None and method in ("model", "threshold"):
            sites = atoms_from_probabilities(
                maps, threshold=0.5 if threshold is None else threshold, edge_margin=edge_margin
            )
        elif method == "threshold":
            sites = _threshold_image(data, 0.5 if threshold is None else threshold, sigma, edge_margin)
        else:
            sites = atoms_from_image(
                data,
                sigma=sigma,
                min_distance=min_distance,
                threshold=0.5 if threshold is None else threshold,
                edge_margin=edge_margin,
            )
    if len(sites) == 0:
        warnings.warn("no atoms found in any frame; returning an empty sites table", stacklevel=2)
        return sites
    if refine:
        sites = refine_sites(data, sites, half_box=half_box)
    sites["intensity"] = _intensities(data, sites, intensity_radius)
    use_channel = classify == "channel" or (classify == "auto" and maps is not None and maps.shape[1] > 2)
    if classify == "channel" and maps is None:
        raise ValueError("classify='channel' needs probability maps (method='model' or probabilities=...)")
    if not use_channel and classify != "none":
        sites["class"] = classify_by_intensity(sites["intensity"].to_numpy())
    elif classify == "none":
        sites["class"] = 0
    return sites


def _intensities(data: np.ndarray, sites: pd.DataFrame, radius: float | None) -> np.ndarray:
    frames = sites["frame"].to_numpy()
    yx = sites[["y", "x"]].to_numpy(dtype=np.float64)
    out = np.full(len(sites), np.nan)
    for t in np.unique(frames):
        rows = np.flatnonzero(frames == t)
        r = radius
        if r is None:
            nn = nearest_neighbour_distance(yx[rows])
            r = max(1.5, 0.3 * nn) if np.isfinite(nn) else 1.5
        out[rows] = site_intensity(data[t], yx[rows], r)
    return out
