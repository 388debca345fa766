"""Inference-only decoding of a spatial decoder, in cache-sized blocks of rows.

A decoded window is ``P`` independent rows (one per pixel) once the
per-window first layer ``A_b, c_b`` is known (see ``decoders``). This module
evaluates the folded-sigmoid MLP (see ``layers``) one window per block (or,
with fewer windows than cores or a window above ``rows`` pixels, a pixel
range of one window: a single point is split over all cores), spread over one
Python thread per core. The folded weights are cached on the decoder until a
parameter changes; activations are updated in place and results written
straight into the caller's output array. Same arithmetic as
``SpatialDecoder.forward`` (float32; tested to rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from .fused import _pool

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
    const = {"wq": first_t[: decoder.dims].t().contiguous(), "wz": first_t[decoder.dims :].contiguous(),
             "b1": b1, "hidden": layers[1:-1], "extra": [], "w_out": out_t[:, 0].contiguous(),
             "b_out": float(out_c[0])}
    if len(mlp.extra_weights) and decoder.n_content:
        with torch.no_grad():
            const["extra"] = [(e * 2).t().contiguous() for e in mlp.extra_weights]
    decoder._fast_constants = (layers, const)
    return const


def _first_layer(decoder, const, content, angle, shift):
    """``(A (B, H1, d), c1 (B, H1))`` of ``SpatialDecoder.first_layer`` (doubled), from the cache."""
    wq = const["wq"]
    bias = const["b1"] + content @ const["wz"] if decoder.n_content else const["b1"].expand(len(content), -1)
    if decoder.rotate and angle is not None:
        c, s = torch.cos(angle).unsqueeze(1), torch.sin(angle).unsqueeze(1)
        a = torch.stack([wq[:, 0] * c - wq[:, 1] * s, wq[:, 0] * s + wq[:, 1] * c], dim=2)
    else:
        a = wq.expand(len(content), -1, -1)
    if shift is not None:
        bias = bias - (a @ shift.unsqueeze(2)).squeeze(2)
    return a, bias


def _blocks(n_windows: int, n_pix: int, rows: int, workers: int):
    """``(b, p0, p1)`` blocks: one window each, split into pixel ranges when there are fewer
    windows than workers or a window exceeds ``rows``."""
    parts = max(-(-n_pix // rows), -(-workers // n_windows), 1)
    per = -(-n_pix // parts)
    return [(b, p, min(n_pix, p + per)) for b in range(n_windows) for p in range(0, n_pix, per)]


def decode_into(decoder, out: torch.Tensor, content, angle=None, shift=None, rows: int = ROWS,
                workers: int | None = None) -> None:
    """Decode ``len(content)`` windows of a fast :class:`SpatialDecoder` into ``out`` ``(B, P)``
    (decoder output: logits for a Bernoulli model). Runs under ``torch.inference_mode``."""
    with torch.inference_mode():
        const = _constants(decoder)
        a, c1 = _first_layer(decoder, const, content, angle, shift)
        hidden = [(wt, c.unsqueeze(0) + content @ e if const["extra"] else c.unsqueeze(0).expand(len(content), -1))
                  for (wt, c), e in zip(const["hidden"], const["extra"] or [None] * len(const["hidden"]))]
        w_out, b_out = const["w_out"], const["b_out"]
        grid = decoder.grid
        n_pix = grid.shape[0]
        workers = workers or torch.get_num_threads()
        blocks = _blocks(len(content), n_pix, rows, workers)
        workers = max(1, min(workers, len(blocks)))

        def run(block_list):
            with torch.inference_mode():
                for b, p0, p1 in block_list:
                    u = torch.sigmoid_(torch.addmm(c1[b], grid[p0:p1], a[b].t()))
                    for wt, c in hidden:
                        u = torch.sigmoid_(torch.addmm(c[b], u, wt))
                    dest = out[b, p0:p1]
                    torch.mv(u, w_out, out=dest)
                    dest += b_out

        if workers == 1:
            run(blocks)
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one Python thread per core, torch single-threaded in each
        try:
            futures = [_pool(workers).submit(run, blocks[i::workers]) for i in range(workers)]
            for f in futures:
                f.result()
        finally:
            torch.set_num_threads(threads)


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
