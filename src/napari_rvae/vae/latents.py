"""Latent tools: encode windows or sites, decode any latent point, manifold grids, reconstructions.

Units: ``angle`` in radians wrapped to (−π, π]; ``dx, dy`` in pixels
(``dx`` along columns, ``dy`` along rows); content latents ``z0 … z{k−1}``
are dimensionless (N(0, 1) prior). ``*_sigma`` columns give the encoder's
standard deviation in the same units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..patches import cut_windows, cut_windows_1d, recipe_options, windows_as_array, with_orientation
from .fastdecode import can_decode_fast, decode_array
from .fused import parallel_ranges
from .models import InvariantVAE


def wrap_angle(angle):
    """Wrap radians to (−π, π]."""
    a = np.asarray(angle, dtype=np.float64)
    wrapped = np.mod(a + np.pi, 2 * np.pi) - np.pi
    return np.where(wrapped == -np.pi, np.pi, wrapped)


ENCODE_PIECE = 2048  # windows per encoder call on the CPU


def _pixels_per_unit(model: InvariantVAE) -> np.ndarray:
    """Pixels per shift latent unit, per axis (x, then y)."""
    cfg = model.config
    sizes = cfg.window[::-1]  # (w,) or (w, h): x first
    return np.array([cfg.translation_prior * (n - 1) / 2 for n in sizes])


def _device(model):
    return next(model.parameters()).device


def encode(model: InvariantVAE, windows, batch_size: int = 20000) -> pd.DataFrame:
    """Encode windows into a latent table (encoder means and σ).

    Parameters
    ----------
    windows : array (N, h, w) or (N, w)
        Normalised like the training windows.
    batch_size : int
        Windows per encoder call (large calls keep the matmuls large).

    Returns
    -------
    DataFrame with ``N`` rows: ``angle`` (rad, rVAE only), ``dx, dy`` (pixels;
    ``dx`` only in 1D; absent for a plain VAE), ``z0 …``, then the matching
    ``*_sigma`` columns.
    """
    cfg = model.config
    x = windows_as_array(windows, cfg.window[-1])
    if x.shape[1:] != cfg.window:
        raise ValueError(f"windows: the model expects windows of shape {cfg.window}, got {x.shape[1:]}")
    model.eval()
    dev = _device(model)
    n_lat = cfg.n_structural + cfg.latent
    result = np.empty((len(x), 2 * n_lat), dtype=np.float32)  # means, then σ

    def piece(lo, hi):
        mean, logvar = model.encode(torch.from_numpy(x[lo:hi]).to(dev))
        result[lo:hi] = torch.cat([mean, torch.exp(0.5 * logvar)], 1).cpu().numpy()

    with torch.inference_mode():
        if dev.type == "cpu" and batch_size > ENCODE_PIECE:
            # pieces of ENCODE_PIECE windows (still large matmuls) spread over one Python thread
            # per core, torch single-threaded in each: no OpenMP barriers to stall on a busy machine
            parallel_ranges(piece, len(x), ENCODE_PIECE)
        else:
            for s in range(0, len(x), batch_size):
                piece(s, min(len(x), s + batch_size))
    if cfg.has_angle:
        result[:, 0] = wrap_angle(result[:, 0])
    ppu = _pixels_per_unit(model)
    k0 = int(cfg.has_angle)
    for k in range(cfg.n_shift):
        result[:, k0 + k] *= ppu[k]
        result[:, n_lat + k0 + k] *= ppu[k]
    names = cfg.structural_names() + [f"z{i}" for i in range(cfg.latent)]
    return pd.DataFrame(result.astype(np.float64), columns=names + [f"{n}_sigma" for n in names])


@torch.no_grad()
def decode(model: InvariantVAE, z, angle=0.0, dx=0.0, dy=0.0, classes=None, batch_size: int = 4) -> np.ndarray:
    """Decode content latents into windows, at any angle and shift.

    Parameters
    ----------
    z : array (N, k) or (k,)
        Content latents.
    angle : float or array (N,)
        Rotation in radians (rVAE models).
    dx, dy : float or array (N,)
        Shift in pixels (spatial models).
    classes : int or array (N,), optional
        Class for a class-conditional model.

    Returns
    -------
    ndarray float32 ``(N, *window)``: the decoded means (sigmoid of the
    logits for a Bernoulli model).
    """
    cfg = model.config
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != cfg.latent:
        raise ValueError(f"z: this model has {cfg.latent} content latents, got {z.shape[1]} values per point")
    n = len(z)
    ppu = _pixels_per_unit(model)
    angle = np.broadcast_to(np.asarray(angle, dtype=np.float32), (n,)).copy()
    shifts = [np.broadcast_to(np.asarray(v, dtype=np.float32), (n,)).copy() / np.float32(ppu[k])
              for k, v in enumerate([dx, dy][: cfg.n_shift])]
    if cfg.n_classes:
        if classes is None:
            raise ValueError("this model is class-conditional: pass classes")
        classes = np.broadcast_to(np.asarray(classes, dtype=np.int64), (n,))
    if model.training:
        model.eval()
    if can_decode_fast(model):  # cache-sized row blocks over all cores, no autograd
        sh = np.stack([v for v in shifts], axis=1) if cfg.n_shift else None
        out = decode_array(model, np.ascontiguousarray(z), angle if cfg.has_angle else None, sh,
                           None if classes is None else np.array(classes, dtype=np.int64))
        if cfg.likelihood == "bernoulli":
            out = 1.0 / (1.0 + np.exp(-out))
        return out.reshape((n,) + cfg.window)
    out = np.empty((n, cfg.n_pixels), dtype=np.float32)
    dev = _device(model)

    def piece(s, e):
        content = torch.from_numpy(np.ascontiguousarray(z[s:e])).to(dev)
        a = torch.from_numpy(np.ascontiguousarray(angle[s:e])).to(dev) if cfg.has_angle else None
        sh = None
        if cfg.n_shift:
            sh = torch.from_numpy(np.stack([v[s:e] for v in shifts], axis=1)).to(dev)
        cls = None if classes is None else torch.from_numpy(np.ascontiguousarray(classes[s:e])).to(dev)
        decoded = model.decode_parts(a, sh, content, cls)
        if cfg.likelihood == "bernoulli":
            decoded = torch.sigmoid(decoded)
        out[s:e] = decoded.cpu().numpy()

    if dev.type == "cpu":
        parallel_ranges(piece, n, batch_size)  # cache-sized pieces, one thread per core
    else:
        for s in range(0, n, 4096):
            piece(s, min(n, s + 4096))
    return out.reshape((n,) + cfg.window)


def latent_grid(d: int = 10, kind: str = "linear", span: float = 3.0, quantiles=(0.05, 0.95)) -> np.ndarray:
    """Grid values along one latent: ``linspace(−span, span, d)`` or the Normal
    icdf of ``linspace(*quantiles, d)`` (``kind="icdf"``)."""
    if d < 1:
        raise ValueError(f"d must be ≥ 1 grid points, got {d}")
    if kind == "linear":
        return np.linspace(-span, span, d)
    if kind == "icdf":
        from scipy.stats import norm

        return norm.ppf(np.linspace(quantiles[0], quantiles[1], d))
    raise ValueError(f"grid kind {kind!r} unknown; use 'linear' or 'icdf'")


def manifold(model: InvariantVAE, d: int = 10, dims=(0, 1), kind: str = "linear", span: float = 3.0,
             angle: float = 0.0, dx: float = 0.0, dy: float = 0.0, fixed=None, classes=None):
    """Decode a ``d × d`` grid over two content latents in one batch.

    Returns ``(images (d, d, h, w), mosaic (d·h, d·w), grid values (d,))``;
    row ``i`` of the mosaic is latent ``dims[1]`` decreasing downwards, column
    ``j`` is latent ``dims[0]`` increasing to the right. Other latents take
    ``fixed`` (default 0). Decoded in cache-sized batches of windows.
    """
    cfg = model.config
    if cfg.dims != 2:
        raise ValueError("manifold: needs a model of 2D windows")
    values = latent_grid(d, kind, span)
    z = np.zeros((d, d, cfg.latent), dtype=np.float32)
    if fixed is not None:
        z[:] = np.asarray(fixed, dtype=np.float32)
    if cfg.latent >= 1:
        z[:, :, dims[0]] = values[None, :]
    if cfg.latent >= 2:
        z[:, :, dims[1]] = values[::-1, None]
    images = decode(model, z.reshape(-1, cfg.latent), angle, dx, dy, classes)
    h, w = cfg.window
    images = images.reshape(d, d, h, w)
    mosaic = images.transpose(0, 2, 1, 3).reshape(d * h, d * w)
    return images, mosaic, values


@torch.no_grad()
def reconstruct(model: InvariantVAE, windows, classes=None, batch_size: int = 4) -> np.ndarray:
    """Decode each window from its encoder means (angle and shift included); same shape as ``windows``."""
    cfg = model.config
    x = windows_as_array(windows, cfg.window[-1])
    model.eval()
    dev = _device(model)
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, len(x), batch_size):
        mean, _ = model.encode(torch.from_numpy(x[s : s + batch_size]).to(dev))
        angle, shift, content = model.split(mean)
        cls = None
        if classes is not None:
            cls = torch.as_tensor(np.asarray(classes)[s : s + batch_size], dtype=torch.long, device=dev)
        decoded = model.decode_parts(angle, shift, content, cls)
        if cfg.likelihood == "bernoulli":
            decoded = torch.sigmoid(decoded)
        out[s : s + batch_size] = decoded.cpu().numpy().reshape((-1,) + cfg.window)
    return out


def encode_sites(model: InvariantVAE, movie, sites: pd.DataFrame, normalisation: dict | None = None,
                 **cut_options):
    """Cut windows at the sites (model's window size and normalisation) and add latents.

    Returns ``(table, report)``: a copy of ``sites`` with ``angle, dx, dy, z0 …``
    columns (and ``*_sigma``) added; rows that could not be cut (border, NaN,
    …) hold NaN and are counted in the :class:`~napari_rvae.patches.WindowReport`.
    ``normalisation`` defaults to the one stored with the model
    (``model.normalisation``), else ``"none"``.
    """
    cfg = model.config
    norm = normalisation or getattr(model, "normalisation", None) or {"mode": "none"}
    opts = recipe_options(norm)
    opts.update(cut_options)
    sites = with_orientation(sites, norm)
    if cfg.dims == 2:
        if cfg.window[0] != cfg.window[1]:
            raise ValueError("encode_sites: only square windows can be cut from a movie")
        cut = cut_windows(movie, sites, cfg.window[0], **opts)
    else:
        cut = cut_windows_1d(movie, sites, cfg.window[0], **opts)
    table = sites.copy()
    if len(cut):
        latents = encode(model, cut.windows)
    else:
        names = cfg.structural_names() + [f"z{i}" for i in range(cfg.latent)]
        latents = pd.DataFrame(columns=names + [f"{n}_sigma" for n in names], dtype=float)
    for name in latents.columns:
        column = np.full(len(table), np.nan)
        column[cut.rows] = latents[name].to_numpy()
        table[name] = column
    return table, cut.report


def kl_per_latent(model: InvariantVAE, windows, structural: bool = False) -> np.ndarray:
    """Mean KL (nats per window) of each content latent over ``windows``: a collapsed latent is ≈ 0.

    With ``structural``, every latent in the model's order (angle, dx, dy, z0 …); the angle's
    prior bounds only its σ (as in the training loss), so its KL says how sharply it is encoded.
    """
    cfg = model.config
    x = windows_as_array(windows, cfg.window[-1])
    with torch.no_grad():
        mean, logvar = model.encode(torch.from_numpy(x).to(_device(model)))
    mean, logvar = mean.double(), logvar.double()
    kl = 0.5 * (mean.square() + logvar.exp() - 1 - logvar)
    if cfg.has_angle:
        var = logvar[:, 0].exp() / cfg.rotation_prior**2
        kl[:, 0] = 0.5 * (var - 1 - torch.log(var))
    kl = kl.mean(0).cpu().numpy()
    return kl if structural else kl[cfg.n_structural :]
