"""Latent maps on the image and their FFT smoothness (paper 004, Fig. 8).

A **latent map** is the value of one latent at the centre of windows cut on a
regular grid (step ``step`` pixels) over the image. An order parameter is
smooth on the scale of the lattice; a latent into which the shift has
"leaked" shows the lattice period (and its beating with the sampling grid).

**Smoothness score** of a map ``m`` (paper: "the ratio of central peak
intensity to the total image intensity"): subtract the mean, taper with a 2D
Hann window (so the map's edges do not spread power over all frequencies),
take the power spectrum ``P = |FFT|²`` and return

    score = Σ_{|k| ≤ cutoff} P(k) / Σ_k P(k)

with ``k`` in cycles per image pixel. The default ``cutoff`` is
``1 / (2 · window)``: half a cycle per window width — far below the lattice
frequencies (a window holds at least one lattice period) and above the
frequencies of an order parameter that varies over several windows. A score
near 1 is smooth; periodic features push power outside the centre. A flat
map (zero variance) scores NaN.
"""

from __future__ import annotations

import numpy as np


def latent_maps(model, image, *, step: int = 2, columns=None, normalisation: dict | None = None):
    """Encode windows on a grid over one image and arrange each latent as a map.

    Parameters
    ----------
    model : InvariantVAE
        A trained 2D model (its window size is used).
    image : (Y, X) array
    step : int
        Grid spacing in pixels.
    columns : sequence of str, optional
        Latents to map (default the content latents ``z0 …``).
    normalisation : dict, optional
        Window normalisation (default the model's).

    Returns
    -------
    maps : dict name → (ny, nx) float array
    ys, xs : (ny,), (nx,) window-centre rows and columns (pixels)
    """
    from ..patches import grid_sites
    from ..vae import encode_sites

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image: expected a 2D image, got shape {img.shape}")
    w = model.config.window[0]
    sites = grid_sites(img.shape, w, step)
    table, _ = encode_sites(model, img[None], sites, normalisation)
    ys, xs = np.unique(sites["y"].to_numpy()), np.unique(sites["x"].to_numpy())
    names = list(columns) if columns is not None else [f"z{i}" for i in range(model.config.latent)]
    maps = {}
    for name in names:
        if name not in table.columns:
            raise ValueError(f"columns: the model has no latent {name!r}")
        maps[name] = table[name].to_numpy().reshape(len(ys), len(xs))
    return maps, ys, xs


def smoothness(latent_map, *, step: float = 1.0, cutoff: float | None = None, window: int | None = None) -> float:
    """FFT smoothness score of one latent map (see module docstring), in [0, 1].

    Parameters
    ----------
    latent_map : (ny, nx) array
        Latent values on a grid; NaN values are replaced by the mean.
    step : float
        Grid spacing in image pixels (to express frequencies per pixel).
    cutoff : float, optional
        Radius of the central region in cycles per image pixel.
    window : int, optional
        Window width (pixels) for the default ``cutoff = 1 / (2 · window)``.
    """
    m = np.asarray(latent_map, dtype=np.float64)
    if m.ndim != 2 or min(m.shape) < 4:
        raise ValueError(f"latent_map: expected a 2D map of at least 4 × 4 points, got shape {m.shape}")
    if cutoff is None:
        if window is None:
            raise ValueError("give cutoff (cycles per pixel) or window (pixels) for the default cutoff")
        cutoff = 1.0 / (2.0 * float(window))
    if not cutoff > 0 or not step > 0:
        raise ValueError(f"cutoff and step must be > 0, got {cutoff} and {step}")
    finite = np.isfinite(m)
    if not finite.any():
        return float("nan")
    m = np.where(finite, m, m[finite].mean())
    m = m - m.mean()
    taper = np.outer(np.hanning(m.shape[0]), np.hanning(m.shape[1]))
    power = np.abs(np.fft.fft2(m * taper)) ** 2
    total = power.sum()
    if not total > 0:
        return float("nan")
    ky = np.fft.fftfreq(m.shape[0], d=step)
    kx = np.fft.fftfreq(m.shape[1], d=step)
    central = np.hypot(ky[:, None], kx[None, :]) <= cutoff
    return float(power[central].sum() / total)


def combined_score(scores, how: str = "max") -> float:
    """One score per model from the per-latent scores: ``"max"`` (paper 004: "the greater of
    the intensities computed from the two latent variables") or ``"min"`` (every latent smooth)."""
    s = np.asarray(list(scores), dtype=np.float64)
    s = s[np.isfinite(s)]
    if how not in ("max", "min"):
        raise ValueError(f"how: expected 'max' or 'min', got {how!r}")
    if s.size == 0:
        return float("nan")
    return float(s.max() if how == "max" else s.min())
