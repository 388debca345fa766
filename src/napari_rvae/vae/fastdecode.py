"""Inference-only decoding of a spatial decoder, in cache-sized blocks of rows.

A decoded window is ``P`` independent rows (one per pixel) once the
per-window first layer ``A_b, c_b`` is known (see ``decoders``). This module
evaluates the folded-sigmoid MLP (see ``layers``) on blocks of about
``rows`` rows — a piece of one window when few windows are decoded (a single
point is split over all cores), whole windows otherwise — with the weights
folded once per call, activations reused in place and results written
straight into the caller's output array. Same arithmetic as
``SpatialDecoder.forward`` (float32; tested to rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from .fused import _pool

ROWS = 2048  # rows per block: 2048 × 128 float32 = 1 MB of activations, in L2


def _folded(decoder, content):
    """Per-call constants in sigmoid space: hidden ``[(Wᵀ (H, H'), c (B, H'))]``, ``w_out (H,)``,
    ``b_out``."""
    mlp = decoder.mlp
    n = len(mlp.widths)
    hidden = []
    extra = content if (len(mlp.extra_weights) and decoder.n_content) else None
    for i in range(1, n):
        w, b = mlp.weights[i], mlp.biases[i]
        c = (b - w.sum(1)) * 2
        c = c.expand(len(content), -1) if extra is None else c + (extra @ mlp.extra_weights[i - 1].t()) * 2
        hidden.append(((w * 4).t().contiguous(), c.contiguous()))
    w_out = (mlp.weights[n] * 2)[0].contiguous()
    b_out = float((mlp.biases[n] - mlp.weights[n].sum(1))[0])
    return hidden, w_out, b_out


def _blocks(n_windows: int, n_pix: int, rows: int, workers: int):
    """``(b0, b1, p0, p1)`` blocks: groups of whole windows, or pixel ranges of one window
    (when there are fewer windows than workers, or a window exceeds ``rows``)."""
    if n_windows >= workers and n_pix <= rows:
        per_w = max(1, min(rows // n_pix, -(-n_windows // workers)))
        return [(b, min(n_windows, b + per_w), 0, n_pix) for b in range(0, n_windows, per_w)]
    parts = max(-(-n_pix // rows), -(-workers // n_windows))
    per = -(-n_pix // parts)
    return [(b, b + 1, p, min(n_pix, p + per)) for b in range(n_windows) for p in range(0, n_pix, per)]


def decode_into(decoder, out: torch.Tensor, content, angle=None, shift=None, rows: int = ROWS,
                workers: int | None = None) -> None:
    """Decode ``len(content)`` windows of a fast :class:`SpatialDecoder` into ``out`` ``(B, P)``
    (decoder output: logits for a Bernoulli model). Runs under ``torch.inference_mode``."""
    with torch.inference_mode():
        a, c1 = decoder.first_layer(content, angle, shift)  # already doubled
        hidden, w_out, b_out = _folded(decoder, content)
        grid = decoder.grid
        n_pix = grid.shape[0]
        workers = workers or torch.get_num_threads()
        blocks = _blocks(len(content), n_pix, rows, workers)
        workers = max(1, min(workers, len(blocks)))

        def run(block_list):
            with torch.inference_mode():
                for b0, b1, p0, p1 in block_list:
                    m, np_ = b1 - b0, p1 - p0
                    u = torch.baddbmm(c1[b0:b1].unsqueeze(1), grid[p0:p1].expand(m, -1, -1),
                                      a[b0:b1].transpose(1, 2))
                    u = torch.sigmoid_(u).view(m * np_, -1)
                    for wt, c in hidden:
                        pre = torch.mm(u, wt).view(m, np_, -1)
                        pre += c[b0:b1].unsqueeze(1)
                        u = torch.sigmoid_(pre).view(m * np_, -1)
                    dest = out[b0:b1, p0:p1].view(-1)  # contiguous: one window, or whole windows
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
