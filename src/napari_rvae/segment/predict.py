"""Tiled prediction, uncertainty and self-training labels.

Frames are normalised one by one (:func:`~.augment.normalise_frame`: 1st / 99th
percentiles → 0 / 1, NaN pixels → the frame's median), optionally rescaled,
cut into overlapping tiles, run through the network in batches (tiles from all
frames together), and blended back with cosine (Hann) ramps across the
overlaps, so there are no seams. Output: class probabilities ``(T, C, Y, X)``
float32, channel ``c`` = napari label ``c + 1``.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import normalise_frame
from .quantise import quantise_int8
from .unet import UNet

PRECISIONS = ("float32", "bfloat16", "int8", "auto")
CALIBRATION_TILES = 4
CALIBRATION_CROP = 256


def as_frames(frames) -> np.ndarray:
    """Validate a frame or movie and return it as ``(T, Y, X)`` float32 (not yet normalised).

    Raises ``ValueError`` for RGB(A) images, wrong ndim and frames smaller than 8×8.
    """
    arr = np.asarray(frames)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"frames must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and min(arr.shape[:2]) > 4:
        raise ValueError(
            f"frames of shape {arr.shape} look like an RGB(A) image; convert it to grey-scale (Y, X) first"
        )
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"frames must be an image (Y, X) or a movie (T, Y, X), got shape {arr.shape}")
    if arr.shape[0] == 0 or min(arr.shape[1:]) < 8:
        raise ValueError(f"frames of shape {arr.shape} are too small to segment (need at least 8×8 pixels)")
    return arr.astype(np.float32, copy=False)


def fold_batchnorm(model: UNet) -> nn.Module:
    """An inference copy of ``model`` with every BatchNorm folded into its convolution.

    ``conv → BN`` in eval mode is one affine map, so the copy computes the same
    function with one pass less over each activation.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, nn.Sequential) and len(module) >= 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            conv, bn = module[0], module[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                            padding=conv.padding, dilation=conv.dilation, bias=True)
            with torch.no_grad():
                new.weight.copy_(conv.weight * scale[:, None, None, None])
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                new.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            module[0] = new
            module[1] = nn.Identity()
    return fused


def _ramp(n: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    k = min(overlap, n // 2)
    if k > 0:
        r = (0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)).astype(np.float32)
        if taper_start:
            w[:k] = np.minimum(w[:k], r)
        if taper_end:
            w[-k:] = np.minimum(w[-k:], r[::-1])
    return np.maximum(w, 1e-4)


def _starts(size: int, tile: int, overlap: int) -> list:
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _resize(batch: torch.Tensor, shape: tuple) -> torch.Tensor:
    return F.interpolate(batch, size=shape, mode="bilinear", align_corners=False, antialias=True)


class Predictor:
    """Reusable fast inference for one model (BN folded, channels-last, no autograd).

    Parameters
    ----------
    model : UNet
    tile : int, optional
        Tile side in pixels (rounded down to a multiple of ``2**depth``). Default: the
        model's ``predict_tile`` (its training crop, stored in ``model.json``) when it
        has one, else 512 (a 512² frame in one pass).
    overlap : int, optional
        Overlap between neighbouring tiles (pixels), blended with cosine ramps
        (default ``tile // 3``).
    batch : int
        Tiles per forward pass.
    mc_dropout : bool
        Keep dropout active (Monte-Carlo dropout sampling); needs ``config.dropout > 0``.
    compile : bool
        Compile the network with ``torch.compile`` (inductor, weights frozen):
        about 1.3× faster per frame on CPU, but the first call of each tile
        shape costs 0.5–2 minutes and needs a C++ compiler; worth it for long
        movies. Falls back to eager mode (with a warning) if compiling fails.
    precision : {"float32", "bfloat16", "int8", "auto"}
        ``"bfloat16"``: the float network's convolutions in bfloat16 (torch's CPU
        autocast), logits and probabilities in float32; about 2× faster per
        frame on CPUs with native bfloat16 (AVX512-BF16 or AMX), slower on the
        others. ``"auto"``: ``"bfloat16"`` where the CPU has it natively, else
        ``"float32"`` (detection with either gives the same atoms: see
        ``docs/detection.md``). ``"int8"``: 8-bit integer inference (:mod:`.quantise`; about 2× faster
        per frame on an AVX2 CPU for a 16-filter U-Net). The network is
        quantised once per Predictor, on the first call, calibrated on up to
        ``CALIBRATION_TILES`` tiles of that call's frames, spread evenly and
        normalised exactly as for prediction (their central
        ``CALIBRATION_CROP``² pixels); later calls reuse it, so a
        Predictor reused on other movies keeps its first calibration (call
        :meth:`calibrate` to redo it). Probabilities are computed in float32
        from the de-quantised logits. If quantisation fails (an operation FX
        cannot trace, no int8 engine), it warns and predicts in float32;
        ``active_precision`` says which one ran.
    device : str
        ``"cpu"`` (default), ``"cuda"``, ``"auto"`` (CUDA, MPS, then CPU)…: where the network
        runs; tiles go there and probabilities come back as NumPy arrays. ``int8`` is CPU only.
    """

    def __init__(self, model: UNet, tile: int | None = None, overlap: int | None = None, batch: int = 4,
                 mc_dropout: bool = False, compile: bool = False, precision: str = "float32", device: str = "cpu"):
        if not isinstance(model, UNet):
            raise ValueError(f"model must be a napari_rvae UNet, got {type(model).__name__}")
        m = model.config.multiple
        if tile is None:
            tile = int(getattr(model, "predict_tile", None) or 512)
        if overlap is None:
            overlap = tile // 3
        if tile < m or overlap < 0 or batch < 1:
            raise ValueError(f"need tile >= {m}, overlap >= 0 and batch >= 1 (got {tile}, {overlap}, {batch})")
        self.n_classes = model.config.n_classes
        self.multiple = m
        self.tile = tile - tile % m
        self.overlap = min(overlap, self.tile // 2)
        self.batch = int(batch)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "int8" and (mc_dropout or compile):
            raise ValueError("precision='int8' works without mc_dropout and compile; use float32 for those")
        from .._compute import select_device

        self.device = select_device(device)
        if precision == "int8" and self.device.type != "cpu":
            raise ValueError(f"precision='int8' runs on the CPU only; use float32 or bfloat16 on {self.device.type}")
        if precision == "auto":
            precision = "bfloat16" if self.device.type == "cpu" and native_bfloat16() and not mc_dropout else "float32"
        if precision == "bfloat16" and compile:
            raise ValueError("precision='bfloat16' works without compile; use float32 for it")
        self.precision = precision
        self._model = model if precision == "int8" else None
        self._int8 = None
        self._int8_failed = False
        if mc_dropout and model.config.dropout <= 0:
            raise ValueError("MC-dropout needs a model trained with dropout > 0; use an ensemble of models instead")
        self.net = fold_batchnorm(model).to(self.device, memory_format=torch.channels_last)
        if mc_dropout:
            for mod in self.net.modules():
                if isinstance(mod, nn.Dropout2d):
                    mod.train()
        self._eager = self.net
        if compile and not mc_dropout:
            self.net = torch.compile(self.net, options={"freezing": True})

    @property
    def active_precision(self) -> str:
        """``"int8"`` once the quantised network is in use, ``"bfloat16"`` for bfloat16 convolutions, else
        ``"float32"`` (also after an int8 fallback)."""
        if self._int8 is not None:
            return "int8"
        return "bfloat16" if self.precision == "bfloat16" else "float32"

    def calibrate(self, frames, rescale: float = 1.0) -> bool:
        """(Re)build the int8 network from ``frames`` (normalised and tiled as for prediction).

        Returns whether int8 is active afterwards (``False``, with a
        ``RuntimeWarning``, when quantisation failed).
        """
        if self.precision != "int8":
            raise ValueError("calibrate() needs a Predictor with precision='int8'")
        self._int8, self._int8_failed = None, False
        self._calibrate_on(self._normalise(frames, rescale)[0])
        return self._int8 is not None

    def _calibrate_on(self, norm: np.ndarray) -> None:
        norm, th, tw, jobs = self._layout(norm)
        items = [(t, y0, x0) for t in range(norm.shape[0]) for (y0, x0) in jobs]
        pick = np.unique(np.linspace(0, len(items) - 1, min(CALIBRATION_TILES, len(items))).round().astype(int))
        # centre crops of at most CALIBRATION_CROP² pixels: the same activation statistics at a fraction of
        # the cost (observing is ~2× slower than a plain forward pass)
        ch, cw = (min(n, max(self.multiple, CALIBRATION_CROP - CALIBRATION_CROP % self.multiple)) for n in (th, tw))
        y1, x1 = (th - ch) // 2 // self.multiple * self.multiple, (tw - cw) // 2 // self.multiple * self.multiple
        tiles = np.stack([norm[t, y0 + y1 : y0 + y1 + ch, x0 + x1 : x0 + x1 + cw]
                          for t, y0, x0 in (items[i] for i in pick)])
        try:
            self._int8 = quantise_int8(self._model, tiles)
        except Exception as err:  # noqa: BLE001 - any failure: warn and predict in float32, never fail
            self._int8_failed = True
            warnings.warn(f"int8 quantisation of this model failed ({type(err).__name__}: {err}); "
                          "predicting in float32", RuntimeWarning, stacklevel=3)

    def _forward(self, tiles: np.ndarray) -> np.ndarray:
        if self._int8 is not None:
            with torch.inference_mode():
                try:
                    return torch.softmax(self._int8(torch.from_numpy(np.ascontiguousarray(tiles[:, None]))),
                                         dim=1).numpy()
                except Exception as err:  # noqa: BLE001 - a kernel that fails on this shape: float32 from now on
                    warnings.warn(f"int8 inference failed ({type(err).__name__}: {err}); predicting in float32",
                                  RuntimeWarning, stacklevel=4)
                    self._int8, self._int8_failed = None, True
        x = torch.from_numpy(tiles[:, None]).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.precision == "bfloat16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    logits = self.net(x)
                return torch.softmax(logits.float(), dim=1).cpu().numpy()
            try:
                logits = self.net(x)
            except Exception as err:  # noqa: BLE001 - compiler missing / unsupported: fall back, never fail
                if self.net is self._eager:
                    raise
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); using eager inference",
                              RuntimeWarning, stacklevel=3)
                self.net = self._eager
                logits = self.net(x)
            return torch.softmax(logits, dim=1).cpu().numpy()

    def __call__(self, frames, rescale: float = 1.0) -> np.ndarray:
        """Probabilities ``(T, C, Y, X)`` float32 for frames ``(Y, X)`` or ``(T, Y, X)``.

        ``rescale`` resizes each frame by this factor before the network sees it
        (e.g. ``12 / spacing_px`` for the default atom model) and maps the
        probabilities back to the original pixel grid.
        """
        norm, (Y, X) = self._normalise(frames, rescale)
        if self.precision == "int8" and self._int8 is None and not self._int8_failed:
            self._calibrate_on(norm)
        probs = self._tiled(norm)
        if rescale != 1.0:
            back = _resize(torch.from_numpy(probs), (Y, X)).clamp_min_(0)
            probs = (back / back.sum(1, keepdim=True).clamp_min(1e-12)).numpy()
        return np.ascontiguousarray(probs, dtype=np.float32)

    def _normalise(self, frames, rescale: float) -> tuple:
        frames = as_frames(frames)
        if not (np.isfinite(rescale) and 0.05 <= rescale <= 20):
            raise ValueError(f"rescale must be between 0.05 and 20, got {rescale}")
        T, Y, X = frames.shape
        norm = np.stack([normalise_frame(f, i) for i, f in enumerate(frames)])
        if rescale != 1.0:
            shape = (max(8, int(round(Y * rescale))), max(8, int(round(X * rescale))))
            norm = _resize(torch.from_numpy(norm)[:, None], shape)[:, 0].numpy()
        return norm, (Y, X)

    def _layout(self, norm: np.ndarray) -> tuple:
        """Pad to the model's multiple; tile size and tile origins ``[(y0, x0), ...]``."""
        T, Y, X = norm.shape
        m = self.multiple
        Yp, Xp = -(-Y // m) * m, -(-X // m) * m
        if (Yp, Xp) != (Y, X):
            mode = "reflect" if min(Y, X) > max(Yp - Y, Xp - X) else "edge"
            norm = np.pad(norm, ((0, 0), (0, Yp - Y), (0, Xp - X)), mode=mode)
        th, tw = min(self.tile, Yp), min(self.tile, Xp)
        ys, xs = _starts(Yp, th, self.overlap), _starts(Xp, tw, self.overlap)
        return norm, th, tw, [(y0, x0) for y0 in ys for x0 in xs]

    def _tiled(self, norm: np.ndarray) -> np.ndarray:
        T, Y, X = norm.shape
        norm, th, tw, jobs = self._layout(norm)
        Yp, Xp = norm.shape[1:]
        out = np.zeros((T, self.n_classes, Yp, Xp), np.float32)
        if len(jobs) == 1:
            for b in range(0, T, self.batch):
                out[b : b + self.batch] = self._forward(norm[b : b + self.batch])
            return out[:, :, :Y, :X]
        wsum = np.zeros((Yp, Xp), np.float32)
        weights = {}
        for y0, x0 in jobs:
            wy = _ramp(th, self.overlap, y0 > 0, y0 + th < Yp)
            wx = _ramp(tw, self.overlap, x0 > 0, x0 + tw < Xp)
            weights[(y0, x0)] = w = wy[:, None] * wx[None, :]
            wsum[y0 : y0 + th, x0 : x0 + tw] += w
        items = [(t, y0, x0) for t in range(T) for (y0, x0) in jobs]
        for b in range(0, len(items), self.batch):
            chunk = items[b : b + self.batch]
            tiles = np.stack([norm[t, y0 : y0 + th, x0 : x0 + tw] for t, y0, x0 in chunk])
            probs = self._forward(tiles)
            for p, (t, y0, x0) in zip(probs, chunk):
                out[t, :, y0 : y0 + th, x0 : x0 + tw] += p * weights[(y0, x0)]
        out /= wsum
        return out[:, :, :Y, :X]


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bfloat16 convolutions
    are about twice as fast as float32; elsewhere torch emulates them, more slowly."""
    from ..cpu import native_bfloat16 as native

    return native()


def predict(model: UNet, frames, *, rescale: float = 1.0, tile: int | None = None, overlap: int | None = None,
            batch: int = 4, compile: bool = False, precision: str = "float32", device: str = "cpu") -> np.ndarray:
    """Class probabilities ``(T, C, Y, X)`` float32 for an image ``(Y, X)`` or movie ``(T, Y, X)``.

    See :class:`Predictor` for the parameters; ``rescale`` (e.g. ``12 / spacing``
    in pixels for the default atom model) predicts at a resized scale and maps
    back. ``precision="int8"`` calibrates on these frames, so the result is a
    deterministic function of the model and the frames. Raises ``ValueError``
    for RGB input, wrong ndim, an all-NaN frame or a constant frame (the
    message names the frame).
    """
    return Predictor(model, tile=tile, overlap=overlap, batch=batch, compile=compile,
                     precision=precision, device=device)(frames, rescale=rescale)


def predictive_entropy(probs: np.ndarray, normalised: bool = True) -> np.ndarray:
    """Entropy ``-Σ p log p`` over the class axis of ``(T, C, Y, X)`` probabilities → ``(T, Y, X)``.

    ``normalised=True`` divides by ``log C`` so 0 = certain, 1 = all classes equally likely.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 4 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (T, C, Y, X) with C >= 2, got shape {probs.shape}")
    p = np.clip(probs, 1e-12, 1.0)
    h = -(p * np.log(p)).sum(1)
    return (h / np.log(probs.shape[1])).astype(np.float32) if normalised else h.astype(np.float32)


def predict_with_uncertainty(models, frames, *, mc_samples: int = 0, rescale: float = 1.0,
                             tile: int | None = None, overlap: int | None = None, batch: int = 4) -> dict:
    """Mean probabilities and uncertainty maps where labelling would help most.

    Parameters
    ----------
    models : UNet or list of UNet
        One model, or a snapshot / independent ensemble (same classes).
    mc_samples : int
        With one model trained with dropout: number of Monte-Carlo dropout passes.

    Returns
    -------
    dict with ``probs`` (T, C, Y, X) mean probabilities, ``entropy`` (T, Y, X)
    normalised predictive entropy of the mean, and ``variance`` (T, Y, X): the
    class-averaged variance of the probabilities across samples (``None`` for a
    single deterministic pass).
    """
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    if not models:
        raise ValueError("models is empty; pass a UNet or a list of them")
    if len({m.config.n_classes for m in models}) > 1:
        raise ValueError("all models of an ensemble must predict the same number of classes")
    if mc_samples < 0:
        raise ValueError(f"mc_samples must be >= 0, got {mc_samples}")
    runs = []
    if mc_samples > 0:
        if len(models) != 1:
            raise ValueError("use mc_samples with a single model, or an ensemble without mc_samples")
        pred = Predictor(models[0], tile, overlap, batch, mc_dropout=True)
        runs = [pred(frames, rescale) for _ in range(mc_samples)]
    else:
        runs = [Predictor(m, tile, overlap, batch)(frames, rescale) for m in models]
    mean = np.mean(runs, axis=0).astype(np.float32)
    variance = np.var(runs, axis=0).mean(1).astype(np.float32) if len(runs) > 1 else None
    return {"probs": mean, "entropy": predictive_entropy(mean), "variance": variance}


def labels_from_predictions(probs: np.ndarray, frames, confidence: float = 0.9) -> np.ndarray:
    """Self-training labels (paper 000's loop): confident predictions on chosen frames become labels.

    Parameters
    ----------
    probs : (T, C, Y, X) probabilities (from :func:`predict`).
    frames : int or sequence of int
        Frame indices whose predictions become labels; other frames get 0.
    confidence : float in (0.5, 1]
        A pixel is labelled with its most likely class (napari label ``c + 1``)
        only where that class's probability is ≥ ``confidence``; elsewhere 0
        (unlabelled, ignored by the loss).

    Returns
    -------
    labels : (T, Y, X) uint8 (uint16 beyond 254 classes)
    """
    probs = np.asarray(probs)
    if probs.ndim != 4:
        raise ValueError(f"probs must be (T, C, Y, X), got shape {probs.shape}")
    if not 0.0 < confidence <= 1.0:
        raise ValueError(f"confidence must be in (0, 1], got {confidence}")
    idx = np.atleast_1d(np.asarray(frames, dtype=np.int64))
    T = probs.shape[0]
    if idx.size == 0 or idx.min() < -T or idx.max() >= T:
        raise ValueError(f"frames must be indices in [0, {T}), got {idx.tolist()}")
    dtype = np.uint8 if probs.shape[1] < 255 else np.uint16
    labels = np.zeros((T,) + probs.shape[2:], dtype)
    for t in np.unique(idx % T):
        best = probs[t].argmax(0)
        sure = probs[t].max(0) >= confidence
        labels[t] = np.where(sure, best + 1, 0)
    return labels
