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
import warnings

import numpy as np
import pandas as pd

from ._checks import as_movie, as_probabilities, lazy_movie, nearest_neighbour_distance
from .atoms import (
    METHODS,
    _threshold_image,
    atoms_from_image,
    atoms_from_probabilities,
    classify_by_intensity,
    site_intensity,
)
from .lattice import Lattice, estimate_lattice, scale_defaults
from .plausibility import check_sites, confirms, decorated
from .refine import refine_sites

#: Network arithmetic for the segmenter (``napari_rvae.segment.Predictor``; kept here so that
#: importing detection does not import torch).
PRECISIONS = ("float32", "bfloat16", "int8", "auto")

CLASSIFY = ("auto", "channel", "intensity", "none")
CONTRASTS = ("auto", "bright", "dark")
AUTO_METHOD = "model"  # what method="auto" runs (docs/detection.md shows the evidence)


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
    edge_margin: float = 2.0,
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
    data = as_movie(movie)
    plan = plan_detection(data, method=method, model=model, with_probabilities=probabilities is not None,
                          threshold=threshold, spacing=spacing, sigma=sigma, min_distance=min_distance,
                          edge_margin=edge_margin, refine=refine, half_box=half_box, classify=classify,
                          intensity_radius=intensity_radius, rescale=rescale, precision=precision,
                          contrast=contrast, lattice=lattice)
    maps = None if probabilities is None else as_probabilities(probabilities)
    sites, channels = detect_frames(data, plan, probabilities=maps)
    return finish_detection(sites, plan, data.shape, channels)


@dataclasses.dataclass(frozen=True)
class DetectionPlan:
    """Everything :func:`detect_atoms` settles before looking at the frames one by one: the method,
    the lattice (estimated once for the whole movie) and every scale-dependent parameter. Frames (or
    chunks of frames) detected with one plan give exactly the rows that the whole movie gives."""

    chosen: str
    model: object
    lattice: Lattice
    spacing_given: bool
    threshold: float | None
    sigma: float
    min_distance: float
    edge_margin: float
    refine: bool
    half_box: int | None
    classify: str
    intensity_radius: float | None
    rescale: float | None
    precision: str

    @property
    def measured(self) -> float | None:
        return self.lattice.spacing if self.lattice.found or self.lattice.candidate else None

    def record(self) -> dict:
        return {"method": self.chosen, "lattice": self.lattice.to_dict(), "inverted": self.lattice.contrast == "dark",
                "parameters": {"sigma": self.sigma, "min_distance": self.min_distance, "threshold": self.threshold,
                               "rescale": self.rescale, "edge_margin": self.edge_margin, "refine": self.refine,
                               "precision": self.precision if self.chosen == "model" else None}, "findings": []}


def plan_detection(movie, *, method: str = "auto", model="default", with_probabilities: bool = False,
                   threshold: float | None = None, spacing: float | None = None, sigma: float | None = None,
                   min_distance: float | None = None, edge_margin: float = 2.0, refine: bool = True,
                   half_box: int | None = None, classify: str = "auto", intensity_radius: float | None = None,
                   rescale: float | None = None, precision: str = "auto", contrast: str = "auto",
                   lattice: Lattice | None = None) -> DetectionPlan:
    """The :class:`DetectionPlan` of :func:`detect_atoms` (same parameters; ``with_probabilities``: maps will
    be given). Reads only the frames the lattice estimate needs, so ``movie`` may be lazy (dask, memory map)."""
    if method not in METHODS + ("auto",):
        raise ValueError(f"method: expected auto or one of {', '.join(METHODS)}, got {method!r}")
    if classify not in CLASSIFY:
        raise ValueError(f"classify: expected one of {', '.join(CLASSIFY)}, got {classify!r}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast: expected one of {', '.join(CONTRASTS)}, got {contrast!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    chosen = AUTO_METHOD if method == "auto" else method
    if with_probabilities and method == "auto":
        chosen = "model"
    if lattice is None:
        lattice = movie_lattice(movie, spacing=spacing, contrast=contrast)
    else:
        if spacing is not None:
            lattice = dataclasses.replace(lattice, spacing=float(spacing), found=True)
        if contrast != "auto":
            lattice = dataclasses.replace(lattice, contrast=contrast)
    scale_free = with_probabilities or (chosen == "peaks" and sigma is not None and min_distance is not None) \
        or (chosen == "model" and rescale is not None)
    if not lattice.found and not lattice.candidate and not scale_free:
        raise ValueError(f"no atomic lattice found in the frames ({lattice.note}); if they do hold atoms, give their "
                         "spacing in pixels (spacing= / --spacing)")
    measured = lattice.spacing if lattice.found or lattice.candidate else None
    scale = scale_defaults(measured) if measured else {}
    if sigma is None:  # threshold + components merges atoms that the matched smoothing would join
        sigma = scale.get("sigma", 1.0) if chosen != "threshold" else 0.5 * scale.get("sigma", 2.0)
    sigma = float(sigma)
    min_distance = scale.get("min_distance", 2.0) if min_distance is None else float(min_distance)
    if not with_probabilities and chosen == "model":
        if rescale is None and not callable(model):
            rescale = training_rescale(_load_model(model)[1], measured)
        if precision == "auto" and not callable(model):
            from .. import segment

            precision = "bfloat16" if segment.native_bfloat16() else "float32"
    radius = intensity_radius if intensity_radius is not None else scale.get("intensity_radius")
    return DetectionPlan(chosen=chosen, model=model, lattice=lattice, spacing_given=spacing is not None,
                         threshold=threshold, sigma=sigma, min_distance=min_distance, edge_margin=edge_margin,
                         refine=refine, half_box=half_box, classify=classify, intensity_radius=radius,
                         rescale=rescale, precision=precision)


def detect_frames(frames, plan: DetectionPlan, *, probabilities=None, first_frame: int = 0,
                  keep_maps: bool = False):
    """Find, refine and measure the atoms of ``frames`` with ``plan``: ``(sites, channels)``, frame numbers
    counted from ``first_frame``; ``class`` comes from the segmenter's channels, is 0 otherwise until
    :func:`finish_detection` classifies the whole movie; ``channels``: the maps' channel count (None without
    maps). With ``keep_maps``: ``(sites, channels, maps)``."""
    data = as_movie(frames)
    work = _for_detection(data, plan.lattice.contrast)
    maps = probabilities
    if maps is None and plan.chosen == "model":
        maps = model_probabilities(work, plan.model, rescale=1.0 if plan.rescale is None else plan.rescale,
                                   precision=plan.precision)
    if maps is not None and (maps.shape[0], maps.shape[2], maps.shape[3]) != data.shape:
        raise ValueError(f"probabilities: shape {maps.shape} does not match the movie {data.shape}")
    threshold = 0.5 if plan.threshold is None else plan.threshold
    measured = plan.measured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one warning below instead of one per step
        if maps is not None and plan.chosen == "model":
            sites = atoms_from_probabilities(maps, threshold=threshold, method="peaks",
                                             min_distance=plan.min_distance, edge_margin=plan.edge_margin,
                                             smooth=0.1 * measured if measured else 0.0)
        elif maps is not None:
            sites = atoms_from_probabilities(maps, threshold=threshold, edge_margin=plan.edge_margin)
        elif plan.chosen == "threshold":
            sites = _threshold_image(work, threshold, plan.sigma, plan.edge_margin)
        else:
            sites = atoms_from_image(work, sigma=plan.sigma, min_distance=plan.min_distance, threshold=threshold,
                                     edge_margin=plan.edge_margin)
    if len(sites):
        if plan.refine:
            sites = refine_sites(work, sites, half_box=plan.half_box)
        sites["intensity"] = _intensities(work, sites, plan.intensity_radius)
        if first_frame:
            sites["frame"] += first_frame
    channels = None if maps is None else int(maps.shape[1])
    return (sites, channels, maps) if keep_maps else (sites, channels)


def uses_channel_classes(plan: DetectionPlan, channels: int | None) -> bool:
    """Whether the class comes from the segmenter's channels (else from the intensity, or none)."""
    if plan.classify == "channel" and channels is None:
        raise ValueError("classify='channel' needs probability maps (method='model' or probabilities=...)")
    return plan.classify == "channel" or (plan.classify == "auto" and channels is not None and channels > 2)


def finish_detection(sites: pd.DataFrame, plan: DetectionPlan, shape: tuple, channels: int | None,
                     classes: np.ndarray | None = None) -> pd.DataFrame:
    """Classify over the whole movie, check the sites against the lattice and record it all in
    ``sites.attrs["detection"]`` (warnings for the findings). ``classes``: already computed (chunked runs)."""
    record = plan.record()
    if len(sites) == 0:
        warnings.warn("no atoms found in any frame; returning an empty sites table", stacklevel=3)
        sites.attrs["detection"] = record
        return sites
    if classes is not None:
        sites["class"] = classes
    else:
        sites["class"] = movie_classes(sites["intensity"].to_numpy(), plan, channels, sites["class"].to_numpy())
    lattice = plan.lattice
    seen = decorated(sites, lattice)
    if (lattice.candidate or not lattice.regular) and not plan.spacing_given:
        # the autocorrelation alone was not conclusive (no periodicity, or no regular ring of
        # directions): the atoms found must sit at the spacing along a lattice's star of bonds
        if not confirms(sites, seen, shape):
            why = f"{lattice.note}; " if lattice.note else ""
            raise ValueError(f"no atomic lattice found in the frames ({why}the maxima at the candidate spacing "
                             f"{lattice.spacing:.1f} px are not arranged as atoms); if they do hold atoms, give "
                             "their spacing in pixels (spacing= / --spacing)")
        if lattice.candidate:
            note = "the autocorrelation was not conclusive (contamination, grains or few periods); the detected " \
                   "atoms confirm the spacing" + (f"; {seen.note}" if seen.note != lattice.note else "")
            seen = dataclasses.replace(seen, found=True, note=note)
    if seen is not lattice:
        record["lattice"] = seen.to_dict()
    record["findings"] = check_sites(sites, seen, shape, method=plan.chosen)
    for finding in record["findings"]:
        warnings.warn(finding, stacklevel=3)
    sites.attrs["detection"] = record
    return sites


def movie_classes(intensity: np.ndarray, plan: DetectionPlan, channels: int | None,
                  current: np.ndarray) -> np.ndarray:
    """The class column of the whole movie's sites: the segmenter's channel classes kept, or split by
    intensity over the whole movie, or 0."""
    if uses_channel_classes(plan, channels):
        return current
    if plan.classify == "none":
        return np.zeros(len(intensity), dtype=np.int64)
    return classify_by_intensity(intensity)


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
