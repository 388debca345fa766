"""Decoder + reconstruction loss evaluated chunk by chunk, in cache.

The reconstruction loss is a sum over pixels, and once the per-window first
layer (``A_b``, ``c_b``, see ``decoders``) is known every pixel is
independent. So the forward pass of the pixel MLP, the loss and its whole
backward pass can be done for a few windows at a time: the activations of a
chunk (a few MB) stay in cache instead of streaming 40 MB tensors through
memory several times per layer, and the gradients are accumulated as we go.
:class:`FusedSpatialLoss` returns the summed loss; its ``backward`` only
scales the stored gradients. The arithmetic is that of the unfused decoder
(same FLOPs, same result up to float rounding).

All parameters arrive in "sigmoid space" (see ``layers``): ``u1 = σ(p·A_bᵀ + c1_b)``,
``u_l = σ(u_{l−1}·W_lᵀ + c_l)``, ``out = u_L·w_outᵀ + b_out``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.nn import functional as F

_sigmoid_backward = torch.ops.aten.sigmoid_backward


class FusedSpatialLoss(torch.autograd.Function):
    """Summed reconstruction loss of a spatial decoder (see module docstring)."""

    @staticmethod
    def forward(ctx, grid, target, a, c1, w_out, b_out, chunk, likelihood, scale, workers, *hidden):
        # hidden = (W_2, c_2, W_3, c_3, ...): W_l (H_l, H_{l−1}); c_l (B, H_l)
        ws, cs = hidden[0::2], hidden[1::2]
        bsz = target.shape[0]
        g_a, g_c1 = torch.zeros_like(a), torch.zeros_like(c1)
        g_cs = [torch.zeros_like(c) for c in cs]
        wts = [w.t().contiguous() for w in ws]
        workers = _workers(bsz, chunk, workers)
        args = (grid, target, a, c1, w_out, b_out, ws, wts, cs, chunk, likelihood, scale, g_a, g_c1, g_cs)
        if workers == 1:
            parts = [_chunks(0, bsz, *args)]
        else:
            # one Python thread per core, one torch thread each: the small in-cache ops
            # then run without OpenMP barriers (which collapse when another process is busy)
            bounds = np.linspace(0, bsz, workers + 1).round().astype(int)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                futures = [_pool(workers).submit(_chunks, int(lo), int(hi), *args)
                           for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
                parts = [f.result() for f in futures]
            finally:
                torch.set_num_threads(threads)
        total = sum(p[0] for p in parts)
        g_wout = sum(p[1] for p in parts)
        g_bout = sum(p[2] for p in parts)
        g_ws = [sum(p[3][i] for p in parts) for i in range(len(ws))]
        grads = [g_a, g_c1, g_wout, g_bout]
        ctx.save_for_backward(*grads, *[g for pair in zip(g_ws, g_cs) for g in pair])
        return total * scale

    @staticmethod
    def backward(ctx, grad_total):
        saved = ctx.saved_tensors
        g = [t * grad_total for t in saved]
        return (None, None, g[0], g[1], g[2], g[3], None, None, None, None, *g[4:])


@torch.no_grad()  # grad mode is thread-local: worker threads must switch it off themselves
def _chunks(lo, hi, grid, target, a, c1, w_out, b_out, ws, wts, cs, chunk, likelihood, scale, g_a, g_c1, g_cs):
    """Forward + backward of windows ``lo:hi`` in chunks; per-window gradients are written
    into their (disjoint) rows, shared-weight gradients are returned."""
    n_hidden = len(ws)
    n_pix = target.shape[1]
    grid_t = grid.t().contiguous()
    g_wout, g_bout = torch.zeros_like(w_out), torch.zeros_like(b_out)
    g_ws = [torch.zeros_like(w) for w in ws]
    total = torch.zeros((), dtype=target.dtype, device=target.device)
    for s in range(lo, hi, chunk):
        e = min(hi, s + chunk)
        m = e - s
        # forward, keeping the chunk's activations
        u = torch.baddbmm(c1[s:e].unsqueeze(1), grid.expand(m, -1, -1), a[s:e].transpose(1, 2))
        us = [torch.sigmoid_(u).reshape(m * n_pix, -1)]
        for i in range(n_hidden):
            pre = torch.mm(us[-1], wts[i]).view(m, n_pix, -1)
            pre += cs[i][s:e].unsqueeze(1)
            us.append(torch.sigmoid_(pre).view(m * n_pix, -1))
        out = torch.addmv(b_out.expand(m * n_pix), us[-1], w_out[0]).view(m, n_pix)
        x = target[s:e]
        if likelihood == "bernoulli":
            total += F.binary_cross_entropy_with_logits(out, x, reduction="sum")
            d_out = torch.sigmoid(out) - x
        else:
            d_out = out - x
            total += 0.5 * d_out.square().sum()
        if scale != 1.0:
            d_out = d_out * scale
        d_out = d_out.reshape(-1)
        # backward of the chunk
        g_wout[0] += torch.mv(us[-1].t(), d_out)
        g_bout += d_out.sum()
        delta = _sigmoid_backward(torch.outer(d_out, w_out[0]), us[-1])
        for i in range(n_hidden - 1, -1, -1):
            g_ws[i] += torch.mm(delta.t(), us[i])
            g_cs[i][s:e] += delta.view(m, n_pix, -1).sum(1)
            delta = _sigmoid_backward(torch.mm(delta, ws[i]), us[i])
        d1 = delta.view(m, n_pix, -1)
        g_c1[s:e] += d1.sum(1)
        # (d, P)·(m, P, H): 5.8× faster than the (m, H, P)·(m, P, d) bmm it replaces (measured)
        g_a[s:e] += torch.matmul(grid_t, d1).transpose(1, 2)
    return total, g_wout, g_bout, g_ws


_POOL: dict = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOL:
        _POOL[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="napari-rvae-fused")
    return _POOL[workers]


def share_work(fn, items, workers: int | None = None) -> None:
    """Call ``fn(item)`` for every item, on the calling thread and up to ``workers − 1`` pool
    threads, torch single-threaded in each (no OpenMP barriers).

    Items are claimed one at a time from a shared counter, and the caller works too: a helper
    that a busy core keeps from starting claims nothing and is not waited for, so the call
    never takes much longer than doing everything on the calling thread. The caller's grad
    and inference modes apply in the helpers; the first exception is re-raised."""
    items = list(items)
    workers = max(1, min(workers or torch.get_num_threads(), len(items)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a cache-sized piece gains nothing from OpenMP, and loses a lot on a busy machine
    try:
        if workers == 1:
            for item in items:
                fn(item)
            return
        lock = threading.Condition()
        state = {"next": 0, "running": 0}
        errors: list = []
        grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

        def claim(helper: bool):
            with lock:
                i = state["next"]
                if i >= len(items) or errors:
                    return None
                state["next"] = i + 1
                state["running"] += helper
                return items[i]

        def helper():
            # no torch.set_num_threads here: the count is not strictly per thread (a set in another
            # thread was seen to change the main thread's), and a helper that starts after the caller
            # restored it could leave the process on one thread
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                while (item := claim(True)) is not None:
                    try:
                        fn(item)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        errors.append(exc)
                    finally:
                        with lock:
                            state["running"] -= 1
                            lock.notify_all()

        for _ in range(workers - 1):
            _pool(workers - 1).submit(helper)
        while (item := claim(False)) is not None:
            fn(item)
        with lock:
            lock.wait_for(lambda: state["running"] == 0)
        if errors:
            raise errors[0]
    finally:
        torch.set_num_threads(threads)


def parallel_ranges(fn, n: int, chunk: int, workers: int | None = None) -> None:
    """Call ``fn(lo, hi)`` over ``range(n)`` in pieces of ``chunk`` (see :func:`share_work`)."""
    pieces = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    share_work(lambda piece: fn(*piece), pieces, workers)  # share_work caps workers at the pieces


def _workers(bsz: int, chunk: int, workers: int | None = None) -> int:
    """Parallel workers: ``workers`` (default torch's thread count), at most one per chunk."""
    return max(1, min(workers or torch.get_num_threads(), -(-bsz // max(chunk, 1))))


def fused_reconstruction(decoder, content, angle, shift, target, likelihood: str, scale: float = 1.0,
                         grid=None, chunk: int = 2, workers: int | None = None) -> torch.Tensor:
    """Summed reconstruction loss of a fast :class:`SpatialDecoder` on ``target`` ``(B, P')``.

    ``grid``: the pixel coordinates of ``target``'s columns (default all pixels);
    ``chunk``: windows per cache-sized piece; ``workers``: parallel threads (default
    torch's thread count).
    """
    grid = decoder.grid if grid is None else grid
    mlp = decoder.mlp
    n = len(mlp.widths)
    a, c1 = decoder.first_layer(content, angle, shift)  # 2·pre-activation parameters
    hidden = []
    extra = content if (len(mlp.extra_weights) and decoder.n_content) else None
    for i in range(1, n):
        w, b = mlp.weights[i], mlp.biases[i]
        c = (b - w.sum(1)) * 2
        if extra is not None:
            c = c + (extra @ mlp.extra_weights[i - 1].t()) * 2
        hidden += [w * 4, c.expand(len(content), -1)]
    w_out, b_out = mlp.weights[n] * 2, mlp.biases[n] - mlp.weights[n].sum(1)
    return FusedSpatialLoss.apply(grid, target.contiguous(), a, c1, w_out, b_out, int(chunk), likelihood,
                                  float(scale), workers, *hidden)
