"""Windows: the one place sub-images are cut from a movie and indexed back to sites.

Every window is centred on a site of the sites table (atoms, wall pixels, ring
centres, or grid points made by :func:`grid_sites`), so each window keeps the
row index of its site and the latents of a model can be written back as
columns of the same table.

Rules
-----
* A sub-pixel centre ``c`` (row ``y`` or column ``x``, pixels) is rounded to
  the pixel ``floor(c + 0.5)`` (halves go up, also for negative values).
  With ``centring="subpixel"`` the window is instead resampled (linear
  interpolation) so that ``c`` is exactly its geometric centre, and with
  ``orientation="COLUMN"`` it is also turned into each site's own frame (the
  angle in that column of the sites table becomes the window's +x axis).
* A window of width ``w`` covers pixels ``[c − w//2, c − w//2 + w)``: for an
  even ``w`` that is ``[c − w/2, c + w/2)``, for an odd ``w`` it is centred.
* Windows that cross the movie edge are dropped (``border="drop"``) or padded
  by repeating the edge pixels (``border="pad"``); windows holding NaN are
  dropped or kept (``nan="drop"|"keep"``). Either way the counts are in the
  returned :class:`WindowReport`: nothing is lost silently.
* ``round_columns=True`` first makes elliptical columns (a probe
  astigmatism) round by a 1-D blur along their short axis
  (:mod:`napari_rvae.columns`); the measured correction is part of the recipe.
* A circular ``mask`` (after normalisation) keeps the window within a radius
  of its site and tapers the rest to 0.
* Normalisation: ``"none"``, ``"global"`` (one min–max over all windows, or
  the stored ``lo, hi`` of a trained model) or ``"window"`` (each window
  min–max scaled to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .io.sites import make_sites, validate_sites

NORMALISATIONS = ("none", "global", "window")
BORDERS = ("drop", "pad")
CENTRINGS = ("pixel", "subpixel")


def centre_pixel(c) -> np.ndarray:
    """Round sub-pixel centres (pixels) to window-centre pixels: ``floor(c + 0.5)``."""
    return np.floor(np.asarray(c, dtype=np.float64) + 0.5).astype(np.int64)


@dataclass
class WindowReport:
    """What happened to the requested sites when their windows were cut."""

    requested: int = 0
    cut: int = 0
    class_filtered: int = 0
    subsampled: int = 0
    out_of_frames: int = 0
    border_dropped: int = 0
    border_padded: int = 0
    nan_dropped: int = 0
    nan_kept: int = 0

    def summary(self) -> str:
        """One line for a log or a status bar."""
        parts = [f"{self.cut} of {self.requested} windows cut"]
        for name, label in [
            ("class_filtered", "other classes"),
            ("subsampled", "not sampled"),
            ("out_of_frames", "delayed frame outside movie"),
            ("border_dropped", "dropped at border"),
            ("border_padded", "padded at border"),
            ("nan_dropped", "dropped with NaN"),
            ("nan_kept", "kept with NaN"),
        ]:
            n = getattr(self, name)
            if n:
                parts.append(f"{n} {label}")
        return "; ".join(parts)


@dataclass
class Windows:
    """Windows cut from a movie.

    Attributes
    ----------
    windows : ndarray, float32, shape (N, w, w) or (N, w) for 1D data
    rows : ndarray, int64, shape (N,)
        Row position (0-based, ``iloc``) of each window's site in the sites table.
    frames : ndarray, int64, shape (N,)
        Frame each window was cut from (``site frame + delay``).
    centres : ndarray, int64, shape (N, 2) or (N, 1)
        Centre pixel ``(row, col)`` (or ``(col,)`` in 1D) after rounding.
    normalisation : dict
        ``{"mode": ..., "lo": ..., "hi": ...}``; pass it back to
        :func:`normalise` to treat new windows the same way.
    report : WindowReport
    """

    windows: np.ndarray
    rows: np.ndarray
    frames: np.ndarray
    centres: np.ndarray
    normalisation: dict = field(default_factory=lambda: {"mode": "none"})
    report: WindowReport = field(default_factory=WindowReport)

    def __len__(self) -> int:
        return len(self.rows)


def normalise(windows: np.ndarray, mode: str = "global", lo: float | None = None, hi: float | None = None):
    """Scale windows (float32, any shape ``(N, ...)``) and return ``(scaled, params)``.

    ``"global"`` maps ``[lo, hi]`` to [0, 1]; ``lo, hi`` default to the finite
    min and max of ``windows`` (pass a model's stored values to treat new data
    exactly like its training data). ``"window"`` maps each window's own
    min–max to [0, 1] (a constant window becomes 0). ``"none"`` copies.
    """
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalisation {mode!r} unknown; use one of {', '.join(NORMALISATIONS)}")
    x = np.asarray(windows, dtype=np.float32)
    if mode == "none" or x.size == 0:
        return x.copy(), {"mode": mode}
    if mode == "global":
        if lo is None or hi is None:
            finite = x[np.isfinite(x)]
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 1.0
        span = hi - lo if hi > lo else 1.0
        return ((x - np.float32(lo)) / np.float32(span)).astype(np.float32), {"mode": mode, "lo": float(lo), "hi": float(hi)}
    flat = x.reshape(len(x), -1)
    wlo = np.nanmin(flat, axis=1, keepdims=True) if flat.shape[1] else flat[:, :0]
    span = np.nanmax(flat, axis=1, keepdims=True) - wlo
    span[~(span > 0)] = 1.0
    return ((flat - wlo) / span).reshape(x.shape).astype(np.float32), {"mode": mode}


def recipe_options(recipe: dict | None) -> dict:
    """``cut_windows`` keyword arguments that repeat a stored window recipe (the
    ``normalisation`` dict of :class:`Windows`, as saved with a model)."""
    recipe = recipe or {"mode": "none"}
    options = dict(normalisation=recipe.get("mode", "none"), lo=recipe.get("lo"), hi=recipe.get("hi"),
                   centring=recipe.get("centring", "pixel"), round_columns=recipe.get("round_columns", False))
    if recipe.get("orientation"):
        options["orientation"] = recipe["orientation"]
    if recipe.get("mask") is not None:
        options["mask"] = tuple(recipe["mask"])
    return options


BOND_ANGLE = "bond_angle"


def with_orientation(sites: pd.DataFrame, recipe: dict | None) -> pd.DataFrame:
    """The sites table with the orientation column a window recipe turns windows by.

    When the recipe names ``"bond_angle"`` and the table lacks it, the column is
    computed from the atom graph (:func:`napari_rvae.detect.bond_orientation`,
    with the recipe's ``bond_symmetry``, default 3) — as when the model was trained."""
    column = (recipe or {}).get("orientation")
    if not column or column in sites.columns or column != BOND_ANGLE:
        return sites
    from .detect.rings import bond_orientation

    return bond_orientation(sites, symmetry=int(recipe.get("bond_symmetry", 3)), column=column)


def _as_movie(movie, ndim: int):
    # lazy arrays (dask, zarr, h5py) stay lazy: frames are read when windows need them
    lazy = hasattr(movie, "shape") and hasattr(movie, "__getitem__") and not isinstance(movie, np.ndarray)
    data = movie if lazy else np.asarray(movie)
    if data.ndim == ndim:
        data = data[None]
    if data.ndim != ndim + 1:
        want = "(T, Y, X) or (Y, X)" if ndim == 2 else "(T, L) or (L,)"
        raise ValueError(f"movie: expected shape {want}, got {data.shape}")
    return data


def _select(sites: pd.DataFrame, classes, per_frame, seed, report: WindowReport) -> np.ndarray:
    """Row positions kept after the class filter and the per-frame random subset."""
    rows = np.arange(len(sites))
    if classes is not None:
        keep = np.isin(sites["class"].to_numpy(), np.atleast_1d(classes))
        report.class_filtered = int((~keep).sum())
        rows = rows[keep]
    if per_frame is not None:
        if int(per_frame) < 1:
            raise ValueError(f"per_frame must be ≥ 1 (windows per frame), got {per_frame}")
        rng = np.random.default_rng(seed)
        frames = sites["frame"].to_numpy()[rows]
        # a random key per site, then the per_frame smallest keys of each frame
        order = np.lexsort((rng.random(len(rows)), frames))
        sorted_frames = frames[order]
        starts = np.searchsorted(sorted_frames, sorted_frames, side="left")
        rank = np.arange(len(order)) - starts
        chosen = np.sort(rows[order[rank < int(per_frame)]])
        report.subsampled = len(rows) - len(chosen)
        rows = chosen
    return rows


def cut_windows(
    movie,
    sites: pd.DataFrame,
    window: int,
    *,
    classes=None,
    per_frame: int | None = None,
    seed: int = 0,
    delay: int = 0,
    border: str = "drop",
    nan: str = "drop",
    normalisation: str = "none",
    lo: float | None = None,
    hi: float | None = None,
    centring: str = "pixel",
    round_columns: bool | dict = False,
    orientation: str | None = None,
    mask=None,
) -> Windows:
    """Cut square windows centred on the sites of a sites table.

    Parameters
    ----------
    movie : array (T, Y, X) or (Y, X)
        The images (raw, or a segmentation / probability map). A dask array is
        read frame by frame as needed.
    sites : DataFrame
        A sites table (``frame, y, x`` in pixels, optional ``class``).
    window : int
        Window width ``w`` in pixels (≥ 2); the window covers
        ``[c − w//2, c − w//2 + w)`` around the rounded centre ``floor(c + 0.5)``.
    classes : int or sequence of int, optional
        Keep only sites of these classes.
    per_frame : int, optional
        Keep a random subset of at most this many sites per frame (seeded by ``seed``).
    delay : int
        Time delay Δ in frames: the window is cut from frame ``t + Δ`` at the
        position of a site of frame ``t``. Sites whose ``t + Δ`` lies outside
        the movie are dropped and counted.
    border : {"drop", "pad"}
        Windows crossing the movie edge are dropped, or padded with the edge pixels.
    nan : {"drop", "keep"}
        What to do with windows containing NaN.
    normalisation : {"none", "global", "window"}
        See :func:`normalise`; ``lo, hi`` fix the global range.
    centring : {"pixel", "subpixel"}
        ``"pixel"`` (papers' rule): the window is cut around the rounded centre,
        so the site lies up to ½ px (plus ½ px for an even ``w``) off the
        window's geometric centre. ``"subpixel"``: the window is resampled by
        linear interpolation at ``c + i − (w − 1)/2`` so that the site lies
        exactly on its geometric centre — the point an rVAE rotates about.
        Use it when the encoded angle must be a physical rotation (it is
        recorded in the returned ``normalisation`` dict so a model's encoding
        repeats it).
    round_columns : bool or dict
        ``True``: measure the columns' ellipticity on the movie and blur each
        frame along the columns' short axis so they come out round before the
        windows are cut (:func:`napari_rvae.columns.estimate_astigmatism`; for
        STEM images whose probe astigmatism would otherwise stop an rVAE's
        rotation from mapping one rotational variant onto the next). A dict is
        a correction measured before (as stored in the returned
        ``normalisation`` under ``"round_columns"``) and is repeated exactly.
        Columns found already round (ellipticity < 0.01) or too few to measure
        leave the movie unchanged, with a warning.
    orientation : str, optional
        Name of a sites-table column holding an angle per site (radians,
        counter-clockwise from the image's +x axis in ``atan2(Δy, Δx)`` pixel
        terms, e.g. ``"bond_angle"`` from :func:`napari_rvae.detect.bond_orientation`).
        Each window is then resampled (linear interpolation, the site on its
        exact centre) on a grid turned by that angle, so the direction
        ``angle`` of the image lies along the window's +x axis: sites of
        different lattice orientations (graphene's two sublattices, grains)
        give alike windows. Implies sub-pixel centring; recorded in the recipe.
    mask : float or (inner, outer), optional
        Circular mask (pixels from the window centre): windows are multiplied
        by 1 within ``inner``, a cosine taper to 0 at ``outer`` (default: the
        window's half width) and 0 beyond, after normalisation, so the latents
        describe the site's own neighbourhood rather than whatever lies in the
        corners. Recorded in the recipe.

    Returns
    -------
    Windows
        ``windows`` float32 ``(N, w, w)``, ``rows`` into ``sites``, and the report.
    """
    radii = None if mask is None else mask_radii(mask, window)
    cut = _cut(movie, sites, window, 2, classes, per_frame, seed, delay, border, nan, normalisation, lo, hi,
               centring, round_columns, orientation)
    spacing = site_spacing(sites)
    if spacing is not None:  # the scale the windows were cut at (e.g. for the chemistry map's bond length)
        cut.normalisation["site_spacing_px"] = round(spacing, 3)
        kinds = sites["kind"].astype(str) if "kind" in sites.columns else pd.Series(["atom"])
        cut.normalisation["site_kind"] = str(kinds.mode().iloc[0])
    if radii is not None:
        cut.windows *= circular_mask(window, *radii)
        cut.normalisation["mask"] = list(radii)
    return cut


def site_spacing(sites: pd.DataFrame, max_frames: int = 5, min_sites: int = 3) -> float | None:
    """Median nearest-neighbour distance (pixels) of all sites of a table, over its first ``max_frames``
    frames with at least ``min_sites`` sites (every class; ``None`` when no frame has that many)."""
    from .detect._checks import nearest_neighbour_distance

    if not len(sites) or not {"frame", "y", "x"} <= set(sites.columns):
        return None
    values = []
    for _, group in sites.groupby("frame", sort=True):
        if len(group) >= min_sites:
            values.append(nearest_neighbour_distance(group[["y", "x"]].to_numpy()))
        if len(values) >= max_frames:
            break
    values = [v for v in values if np.isfinite(v)]
    return float(np.median(values)) if values else None


def mask_radii(mask, window: int) -> tuple[float, float]:
    """``(inner, outer)`` radii (pixels) of a ``mask`` given as one radius or a pair."""
    values = np.atleast_1d(np.asarray(mask, dtype=np.float64)).ravel()
    if values.size not in (1, 2) or not np.isfinite(values).all():
        raise ValueError(f"mask: give a radius or (inner, outer) radii in pixels, got {mask!r}")
    inner = float(values[0])
    outer = float(values[1]) if values.size == 2 else max(inner, window / 2.0)
    if inner < 1 or outer < inner:
        raise ValueError(f"mask: need 1 ≤ inner ≤ outer (pixels), got inner {inner:g}, outer {outer:g}")
    return inner, outer


def circular_mask(window: int, inner: float, outer: float) -> np.ndarray:
    """``(w, w)`` float32 weights: 1 within ``inner`` px of the window centre, a cosine taper to 0 at ``outer``."""
    g = np.arange(int(window)) - (int(window) - 1) / 2.0
    r = np.hypot(*np.meshgrid(g, g, indexing="ij"))
    t = np.clip((outer - r) / max(outer - inner, 1e-9), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def cut_windows_1d(movie, sites: pd.DataFrame, window: int, **options) -> Windows:
    """1D version of :func:`cut_windows`: ``movie`` is ``(T, L)`` or ``(L,)``,
    sites give ``frame`` and ``x`` (``y`` is ignored); windows are ``(N, w)``."""
    keys = ("classes", "per_frame", "seed", "delay", "border", "nan", "normalisation", "lo", "hi", "centring",
            "round_columns")
    unknown = set(options) - set(keys)
    if unknown:
        raise ValueError(f"cut_windows_1d: unknown option(s) {', '.join(sorted(unknown))}")
    defaults = dict(classes=None, per_frame=None, seed=0, delay=0, border="drop", nan="drop",
                    normalisation="none", lo=None, hi=None, centring="pixel", round_columns=False)
    defaults.update(options)
    if defaults["round_columns"] and not (isinstance(defaults["round_columns"], dict)
                                          and not defaults["round_columns"].get("applied")):
        raise ValueError("round_columns applies to 2D images of columns, not to 1D signals")
    if "y" not in sites:
        sites = sites.assign(y=0.0)
    return _cut(movie, sites, window, 1, *(defaults[k] for k in keys), None)


def _cut(movie, sites, window, ndim, classes, per_frame, seed, delay, border, nan, normalisation, lo, hi,
         centring, round_columns=False, orientation=None) -> Windows:
    if int(window) != window or window < 2:
        raise ValueError(f"window must be an integer ≥ 2 pixels, got {window}")
    if border not in BORDERS:
        raise ValueError(f"border {border!r} unknown; use 'drop' or 'pad'")
    if nan not in ("drop", "keep"):
        raise ValueError(f"nan {nan!r} unknown; use 'drop' or 'keep'")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation {normalisation!r} unknown; use one of {', '.join(NORMALISATIONS)}")
    if centring not in CENTRINGS:
        raise ValueError(f"centring {centring!r} unknown; use 'pixel' or 'subpixel'")
    window = int(window)
    data = _as_movie(movie, ndim)
    correction = None
    if ndim == 2 and round_columns is not False and round_columns is not None:
        if not (round_columns is True or isinstance(round_columns, dict)):
            raise ValueError(f"round_columns must be True, False or a stored correction dict, got {round_columns!r}")
        from .columns import round_columns as make_round  # scipy / skimage only when asked for

        data, correction = make_round(data, None if round_columns is True else round_columns)
    recipe = {} if correction is None else {"round_columns": correction}  # what encoding must repeat
    sites = validate_sites(sites)
    if orientation is not None:
        if orientation not in sites.columns:
            raise ValueError(f"orientation: the sites table has no column {orientation!r} (for graphene-like "
                             "lattices add one with napari_rvae.detect.bond_orientation)")
        centring = "subpixel"
    report = WindowReport(requested=len(sites))
    rows = _select(sites, classes, per_frame, seed, report)

    frames = sites["frame"].to_numpy()[rows] + int(delay)
    inside = (frames >= 0) & (frames < data.shape[0])
    report.out_of_frames = int((~inside).sum())
    rows, frames = rows[inside], frames[inside]

    axes = ["y", "x"] if ndim == 2 else ["x"]
    exact = np.stack([sites[a].to_numpy(dtype=np.float64)[rows] for a in axes], axis=1).reshape(len(rows), ndim)
    centres = centre_pixel(exact)
    size = np.array(data.shape[1:])
    if orientation is not None:
        angle = sites[orientation].to_numpy(dtype=np.float64)[rows]
        if not np.isfinite(angle).all():
            raise ValueError(f"orientation: column {orientation!r} holds NaN or infinite angles")
        return _cut_turned(data, window, rows, frames, exact, centres, angle, border, nan, normalisation,
                           lo, hi, dict(recipe, centring="subpixel", orientation=orientation), report)
    if centring == "pixel":
        starts, width = centres - window // 2, window
        fraction = None
    else:  # sample at c + i - (w - 1)/2: the site sits on the window's geometric centre
        corner = exact - (window - 1) / 2.0
        starts = np.floor(corner).astype(np.int64)
        fraction = (corner - starts).astype(np.float32)
        width = window + 1
    needed = window if fraction is None else window + (fraction > 0)  # pixels read per axis
    fits = np.all((starts >= 0) & (starts + needed <= size), axis=1)
    if border == "drop":
        report.border_dropped = int((~fits).sum())
        rows, frames, centres, starts = rows[fits], frames[fits], centres[fits], starts[fits]
        fraction = fraction[fits] if fraction is not None else None
    else:
        report.border_padded = int((~fits).sum())

    out = np.empty((len(rows),) + (window,) * ndim, dtype=np.float32)
    chunk = max(1, 2**22 // width**ndim)  # bounded index temporaries
    for s in range(0, len(rows), chunk):
        e = min(len(rows), s + chunk)
        block = _gather(data, frames[s:e], starts[s:e], width, size)
        out[s:e] = block if fraction is None else _blend(block, fraction[s:e], window)

    if centring != "pixel":
        recipe["centring"] = centring
    return _finish(out, rows, frames, centres, nan, normalisation, lo, hi, report, recipe)


def _finish(out, rows, frames, centres, nan, normalisation, lo, hi, report, recipe: dict) -> Windows:
    """NaN policy, normalisation and the recipe (what a model must repeat when it encodes new sites)."""
    has_nan = np.isnan(out).any(axis=tuple(range(1, out.ndim)))
    if nan == "drop":
        report.nan_dropped = int(has_nan.sum())
        if has_nan.any():
            keep = ~has_nan
            out, rows, frames, centres = out[keep], rows[keep], frames[keep], centres[keep]
    else:
        report.nan_kept = int(has_nan.sum())
    out, params = normalise(out, normalisation, lo, hi)
    params.update(recipe)
    report.cut = len(rows)
    return Windows(out, rows.astype(np.int64), frames.astype(np.int64), centres, params, report)


def _cut_turned(data, window, rows, frames, exact, centres, angle, border, nan, normalisation, lo, hi,
                recipe, report) -> Windows:
    """Windows resampled on a grid turned by each site's angle (linear interpolation)."""
    from scipy.ndimage import map_coordinates

    grid = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    v, u = np.meshgrid(grid, grid, indexing="ij")  # window rows (v) and columns (u)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    reach = (window - 1) / 2.0 * (np.abs(np.cos(angle)) + np.abs(np.sin(angle)))  # half-extent of the turned grid
    size = np.array(data.shape[1:], dtype=np.float64)
    fits = np.all((exact - reach[:, None] >= 0) & (exact + reach[:, None] <= size - 1), axis=1)
    if border == "drop":
        report.border_dropped = int((~fits).sum())
        rows, frames, exact, centres = rows[fits], frames[fits], exact[fits], centres[fits]
        cos, sin = cos[fits], sin[fits]
    else:
        report.border_padded = int((~fits).sum())
    out = np.empty((len(rows), window, window), dtype=np.float32)
    for t in np.unique(frames):
        sel = np.flatnonzero(frames == t)
        frame = np.asarray(data[int(t)], dtype=np.float32)
        for s in range(0, len(sel), 4096):  # bounded coordinate temporaries
            k = sel[s:s + 4096]
            y = exact[k, 0, None, None] + u * sin[k] + v * cos[k]
            x = exact[k, 1, None, None] + u * cos[k] - v * sin[k]
            out[k] = map_coordinates(frame, [y, x], order=1, mode="nearest", prefilter=False)
    return _finish(out, rows, frames, centres, nan, normalisation, lo, hi, report, recipe)


def _gather(data, frames, starts, width: int, size) -> np.ndarray:
    """Blocks of ``width`` pixels per axis from ``starts``; indices are clipped, which
    pads by repeating the edge pixels without copying the movie."""
    ndim = starts.shape[1]
    idx = [np.clip(starts[:, k, None] + np.arange(width), 0, size[k] - 1) for k in range(ndim)]
    if isinstance(data, np.ndarray):
        if ndim == 2:
            return data[frames[:, None, None], idx[0][:, :, None], idx[1][:, None, :]].astype(np.float32, copy=False)
        return data[frames[:, None], idx[0]].astype(np.float32, copy=False)
    out = np.empty((len(frames),) + (width,) * ndim, dtype=np.float32)
    for t in np.unique(frames):  # lazy arrays (dask): read each needed frame once
        sel = np.flatnonzero(frames == t)
        frame = np.asarray(data[int(t)])
        out[sel] = frame[idx[0][sel][:, :, None], idx[1][sel][:, None, :]] if ndim == 2 else frame[idx[0][sel]]
    return out


def _blend(block: np.ndarray, fraction: np.ndarray, window: int) -> np.ndarray:
    """Linear interpolation of ``(N, w+1[, w+1])`` blocks at a sub-pixel ``fraction`` per axis."""
    for axis in range(fraction.shape[1]):
        f = fraction[:, axis].reshape((-1,) + (1,) * (block.ndim - 1))
        lo = np.take(block, np.arange(window), axis=axis + 1)
        hi = np.take(block, np.arange(1, window + 1), axis=axis + 1)
        block = np.where(f > 0, lo + f * (hi - lo), lo)  # f = 0 never reads the extra pixel (NaN-safe)
    return block


def grid_sites(shape, window: int, step: int = 1, *, frames=None) -> pd.DataFrame:
    """Sites on a regular grid (``kind="grid"``) whose windows fit inside the frame.

    Parameters
    ----------
    shape : tuple
        Movie shape ``(T, Y, X)`` (or ``(Y, X)``, one frame).
    window : int
        Window width in pixels; the first centre is at ``window // 2``.
    step : int
        Grid spacing in pixels; ``step=1`` is a window at every pixel.
    frames : sequence of int, optional
        Frames to cover (default all).
    """
    if len(shape) == 2:
        shape = (1,) + tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be (T, Y, X) or (Y, X), got {shape}")
    if int(step) < 1:
        raise ValueError(f"step must be ≥ 1 pixel, got {step}")
    t, ny, nx = (int(v) for v in shape)
    half = int(window) // 2
    ys = np.arange(half, ny - (int(window) - half) + 1, int(step))
    xs = np.arange(half, nx - (int(window) - half) + 1, int(step))
    if ys.size == 0 or xs.size == 0:
        raise ValueError(f"window {window} does not fit in frames of {ny}×{nx} pixels")
    frames = np.arange(t) if frames is None else np.asarray(frames, dtype=np.int64)
    ff, yy, xx = np.meshgrid(frames, ys, xs, indexing="ij")
    return make_sites(ff.ravel(), yy.ravel().astype(float), xx.ravel().astype(float), kind="grid")


def random_sites_like(sites: pd.DataFrame, n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """``n`` sites (default as many as ``sites``; ``kind="random"``) at random whole-pixel positions,
    each inside the bounding box of the sites of a frame drawn like the sites' frames.

    Windows on a grid whose step divides the lattice period see only a few positions of the
    lattice (a 4-px grid on a 12-px lattice: 3 × 3); windows at random positions see every one,
    as the shift-VAE paper samples them.
    """
    if len(sites) == 0:
        raise ValueError("sites: the table is empty; there is nothing to sample positions from")
    rng = np.random.default_rng(seed)
    frames = sites["frame"].to_numpy()
    if n is not None:
        frames = np.sort(rng.choice(frames, int(n), replace=int(n) > len(frames)))
    box = sites.groupby("frame")[["y", "x"]].agg(["min", "max"])
    lo_y, hi_y = box[("y", "min")].reindex(frames).to_numpy(), box[("y", "max")].reindex(frames).to_numpy()
    lo_x, hi_x = box[("x", "min")].reindex(frames).to_numpy(), box[("x", "max")].reindex(frames).to_numpy()
    y = np.floor(lo_y + rng.random(len(frames)) * (hi_y - lo_y + 1)).clip(lo_y, hi_y)
    x = np.floor(lo_x + rng.random(len(frames)) * (hi_x - lo_x + 1)).clip(lo_x, hi_x)
    return make_sites(frames, y, x, kind="random")


def windows_as_array(windows, window: int | None = None) -> np.ndarray:
    """Validate an ``(N, w, w)`` (or ``(N, w)``) stack of windows and return float32."""
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim not in (2, 3) or len(x) == 0:
        raise ValueError(f"windows: expected a non-empty (N, w, w) or (N, w) array, got shape {x.shape}")
    if x.ndim == 3 and x.shape[1] != x.shape[2]:
        raise ValueError(f"windows: expected square windows, got {x.shape[1]}×{x.shape[2]}")
    if window is not None and x.shape[1] != window:
        raise ValueError(f"windows: this model expects {window}-pixel windows, got {x.shape[1]}")
    return x
