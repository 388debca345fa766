"""Detection in three stages, so that a movie can be detected in chunks of frames with exactly the
whole movie's result (:mod:`napari_rvae.chunks`): :func:`plan_detection` settles what needs the whole
movie before any frame is detected (the method, the lattice, every scale-dependent parameter),
:func:`detect_frames` finds, refines and measures the atoms of any run of frames with that plan, and
:func:`finish_detection` does what needs all the sites (intensity classes, plausibility checks, the
record). :func:`~.find.detect_atoms` is the three in a row.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from ._checks import as_movie, nearest_neighbour_distance
from .atoms import METHODS, _threshold_image, atoms_from_image, atoms_from_probabilities, classify_by_intensity, \
    site_intensity
from .find import CLASSIFY, CONTRASTS, EDGE_MARGIN, PRECISIONS, AUTO_METHOD, _for_detection, model_probabilities, model_record, \
    movie_lattice, training_rescale
from .lattice import Lattice, scale_defaults
from .plausibility import SiteGeometry, check_sites, confirms, decorated, stars_needed
from .refine import refine_sites


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
                   min_distance: float | None = None, edge_margin: float = EDGE_MARGIN, refine: bool = True,
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
            rescale = training_rescale(model_record(model), measured)
        if precision == "auto" and not callable(model):
            from ..cpu import native_bfloat16

            precision = "bfloat16" if native_bfloat16() else "float32"
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


def finish_detection(sites: pd.DataFrame, plan: DetectionPlan, shape: tuple, channels: int | None) -> pd.DataFrame:
    """Classify over the whole movie, check the sites against the lattice and record it all in
    ``sites.attrs["detection"]`` (warnings for the findings)."""
    if len(sites):
        sites["class"] = movie_classes(sites["intensity"].to_numpy(), plan, channels, sites["class"].to_numpy())
    sites.attrs["detection"] = detection_record(plan, shape, site_geometry(sites, plan, shape), stacklevel=4)
    return sites


def site_geometry(sites: pd.DataFrame, plan: DetectionPlan, shape: tuple) -> SiteGeometry:
    """What :func:`detection_record` reads of ``sites`` (frames of a movie of ``shape``), measured."""
    confirming = _needs_confirming(plan)  # the distance to the border only serves the confirmation
    return SiteGeometry.of(sites, shape if confirming else None, stars_needed(plan.lattice, plan.spacing_given))


def _needs_confirming(plan: DetectionPlan) -> bool:
    """Whether the autocorrelation alone was not conclusive (no periodicity, or no regular ring of
    directions), so the atoms found must confirm the lattice."""
    return (plan.lattice.candidate or not plan.lattice.regular) and not plan.spacing_given


def detection_record(plan: DetectionPlan, shape: tuple, geometry: SiteGeometry, stacklevel: int = 3) -> dict:
    """The detection record of the whole movie's sites, from their :class:`SiteGeometry` (so a movie
    detected in chunks is checked without its whole table): the lattice as the sites confirm or
    update it, and the findings of the plausibility checks, each also given as a warning."""
    record = plan.record()
    if len(geometry.nn) == 0:
        warnings.warn("no atoms found in any frame; returning an empty sites table", stacklevel=stacklevel)
        return record
    lattice = plan.lattice
    seen = decorated(geometry, lattice)
    if _needs_confirming(plan):  # the atoms found must sit at the spacing along a lattice's star of bonds
        if not confirms(geometry, seen, shape):
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
    record["findings"] = check_sites(geometry, seen, shape, method=plan.chosen)
    for finding in record["findings"]:
        warnings.warn(finding, stacklevel=stacklevel)
    return record


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
