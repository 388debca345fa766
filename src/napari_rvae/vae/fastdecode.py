"""Inference-only decoding of a spatial decoder, in cache-sized blocks of rows.

A decoded window is ``P`` independent rows (one per pixel) once the
per-window first layer ``A_b, c_b`` is known (see ``decoders``). This module
evaluates the folded-sigmoid MLP (see ``layers``) one window per block (a
window above ``rows`` pixels in pixel ranges), blocks shared among one Python
thread per core (``fused.share_work``). Fewer windows than cores (a single
point) run on the calling thread with torch's own threads instead. The folded
weights are cached on the decoder until a parameter changes; activations are updated in place and results written
straight into the caller's output array. Same arithmetic as
``SpatialDecoder.forward`` (float32; tested to rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from .decoders import per_window_first_layer
from .fused import share_work

ROWS = 2048  # most pixels per block: 2048 × 128 float32 = 1 MB of activations, in L2


def _constants(decoder):
    """The decoder MLP's folded constants (:meth:`TanhMLP.folded`) split for decoding:
    ``wq (H1, d)``, ``wz (k, H1)``, ``b1 (H1,)`` (all doubled), hidden ``[(Wᵀ, c)]``,
    skip weights ``[(2·E)ᵀ]``, ``w_out (H,)``, ``b_out``; cached with the same key."""
    mlp = decoder.mlp
    layers = mlp.folded()
    cached = getattr(decoder, "_fast_constants", None)
    if cached is not None and cached[0] is layers:
        return cached[1]
    first_t, b1 = layers[0]  # (d + k, H1)
    out_t, out_c = layers[-1]
    const = {"wq": (first_t[: decoder.dims].t() * decoder.grid_scale).contiguous(), "wz": first_t[decoder.dims :].contiguous(),
             "b1": b1 * decoder.grid_scale, "hidden": layers[1:-1], "extra": [], "w_out": out_t[:, 0].contiguous(),
             "b_out": out_c.reshape(1)}
    if len(mlp.extra_weights) and decoder.n_content:
        with torch.no_grad():
            const["extra"] = [(e * 2).t().contiguous() for e in mlp.extra_weights]
    decoder._fast_constants = (layers, const)
    return const


def _first_layer(decoder, const, content, angle, shift):
    """``(A (B, H1, d), c1 (B, H1))`` of ``SpatialDecoder.first_layer`` (doubled), from the cache."""
    if decoder.n_content:
        bias = torch.addmm(const["b1"], content, const["wz"])
    else:
        bias = const["b1"].expand(len(content), -1)
    return per_window_first_layer(const["wq"], bias, angle if decoder.rotate else None, shift)


def _blocks(n_windows: int, n_pix: int, rows: int):
    """``(b, p0, p1)`` blocks: one window each, split into pixel ranges of at most ``rows``."""
    per = -(-n_pix // max(-(-n_pix // rows), 1))
    return [(b, p, min(n_pix, p + per)) for b in range(n_windows) for p in range(0, n_pix, per)]


def decode_into(decoder, out: torch.Tensor, content, angle=None, shift=None, rows: int = ROWS,
                workers: int | None = None) -> None:
    """Decode ``len(content)`` windows of a fast :class:`SpatialDecoder` into ``out`` ``(B, P)``
    (decoder output: logits for a Bernoulli model). Runs under ``torch.inference_mode``."""
    with torch.inference_mode():
        const = _constants(decoder)
        a, c1 = _first_layer(decoder, const, content, angle, shift)
        # hidden layers: (Wᵀ, c, per-window c (B, H) for a skip-rVAE or None)
        hidden = [(wt, c, c.unsqueeze(0) + content @ e if e is not None else None)
                  for (wt, c), e in zip(const["hidden"], const["extra"] or [None] * len(const["hidden"]))]
        w_out, b_out = const["w_out"], const["b_out"]
        grid = decoder.grid
        n_pix = grid.shape[0]
        workers = workers or torch.get_num_threads()
        blocks = _blocks(len(content), n_pix, rows)

        def run(block):
            b, p0, p1 = block
            u = torch.sigmoid_(torch.addmm(c1[b], grid[p0:p1], a[b].t()))
            for wt, c, per_window in hidden:
                u = torch.sigmoid_(torch.addmm(c if per_window is None else per_window[b], u, wt))
            torch.addmv(b_out, u, w_out, out=out[b, p0:p1])

        if len(content) < workers:
            # a single point: torch's own threads split each matmul; measured faster than Python
            # threads (whose GIL hand-offs per op cost more than the work), quiet or busy
            for block in blocks:
                run(block)
        else:
            share_work(run, blocks, workers)


def can_decode_fast(model) -> bool:
    """Whether :func:`decode_into` applies (a fast spatial decoder on the CPU)."""
    return bool(model.config.spatial and model.decoder.mlp.fast and model.decoder.grid.device.type == "cpu")


def decode_array(model, content: np.ndarray, angle=None, shift=None, classes=None) -> np.ndarray:
    """Decoder output ``(N, P)`` float32 for float32 arrays ``content (N, k)``, ``angle (N,)``,
    ``shift (N, d)`` (model units), ``classes (N,)``."""
    inputs = model._decoder_inputs(
        None if angle is None else torch.from_numpy(angle),
        None if shift is None else torch.from_numpy(shift),
        torch.from_numpy(content), None if classes is None else torch.from_numpy(classes), None)
    a, sh, c, _ = inputs
    out = np.empty((len(content), model.config.n_pixels), dtype=np.float32)
    decode_into(model.decoder, torch.from_numpy(out), c, a, sh)
    return out
