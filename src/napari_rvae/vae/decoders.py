"""Decoders: latents → windows.

The spatial (coordinate) decoder is the heart of the rVAE: a fixed pixel grid
``p`` in [−1, 1] is mapped to template coordinates ``q = R(−θ)(p − s)`` and a
tanh MLP evaluates the template at every ``q``, also given the content latents
``z``. A window whose content is rotated by ``θ`` (radians, acting on
``(x = column, y = row)``) and shifted by ``s`` is therefore explained by the
same ``z``.

Speed: the first layer is linear in ``q`` and ``z``, so per window it is
``A_b·p + c_b`` with ``A_b = W_q·R(−θ_b)`` (width × 2) and
``c_b = −A_b·s_b + W_z·z_b + b``: the rotation, the shift and the whole
latent part are computed once per window, not once per pixel, and the
``(B, P, width)`` pre-activation is one batched matmul of the fixed grid.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import TanhMLP


def pixel_grid(window) -> torch.Tensor:
    """Pixel coordinates in [−1, 1], ``(P, d)``: columns ``(x, y)`` for 2D (row-major
    pixel order, x = column), ``(x,)`` for 1D."""
    if len(window) == 1:
        return torch.linspace(-1, 1, window[0]).unsqueeze(1)
    h, w = window
    y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def per_window_first_layer(w_q, bias, angle=None, shift=None):
    """``(A (B, H, d), c (B, H))`` from the grid weights ``W_q (H, d)`` and the per-window bias
    ``(B, H)``: ``A_b = W_q·R(−θ_b)`` (``W_q`` without an angle), ``c_b = bias_b − A_b·s_b``."""
    if angle is not None:
        c, s = torch.cos(angle).unsqueeze(1), torch.sin(angle).unsqueeze(1)
        # columns of W_q·R(−θ): R(−θ) = [[c, s], [−s, c]] on (x, y)
        a = torch.stack([w_q[:, 0] * c - w_q[:, 1] * s, w_q[:, 0] * s + w_q[:, 1] * c], dim=2)
    else:
        a = w_q.expand(bias.shape[0], -1, -1)  # shape[0], not len(): stays symbolic when traced
    if shift is not None:
        bias = bias - torch.einsum("bhd,bd->bh", a, shift)
    return a, bias


class SpatialDecoder(nn.Module):
    """Coordinate decoder for rVAE (``rotate=True``), shift-VAE (``rotate=False``);
    ``skip=True`` feeds the content latents (and class) into every layer. ``grid_scale``
    multiplies the coordinates the first layer sees (and the shift, which is in grid units):
    with windows several features wide, the tanh units start (and learn) at the features'
    spatial frequency instead of one wave per window (see ``VAEConfig.grid_scale``)."""

    def __init__(self, window, n_content: int, widths, rotate: bool, skip: bool = False, fast: bool = True,
                 grid_scale: float = 1.0):
        super().__init__()
        self.dims = len(window)
        self.rotate = rotate
        self.grid_scale = float(grid_scale)
        self.n_content = n_content
        self.register_buffer("grid", pixel_grid(window), persistent=False)
        self.mlp = TanhMLP(self.dims + n_content, widths, 1, n_extra=n_content if skip else 0, fast=fast)

    def first_layer(self, content, angle=None, shift=None):
        """Per-window first layer: ``(A (B, H, d), c (B, H))`` with pre-activation
        ``A_b·p + c_b`` at grid point ``p`` (doubled when ``fast``, as the
        sigmoid layers expect)."""
        w = self.mlp.weights[0]
        w_q, w_z = w[:, : self.dims] * self.grid_scale, w[:, self.dims :]
        scale = 2.0 if self.mlp.fast else 1.0
        # the bias scales with the grid: the units' ridges (w·q + b = 0) spread over the window
        # instead of all passing near its centre
        b = self.mlp.biases[0] * self.grid_scale if self.grid_scale != 1.0 else self.mlp.biases[0]
        bias = b + (content @ w_z.t() if self.n_content else 0)  # (B, H) or (H,)
        if bias.dim() == 1:
            bias = bias.expand(content.shape[0], -1)
        a, bias = per_window_first_layer(w_q, bias, angle if self.rotate else None, shift)
        return a * scale, bias * scale

    def forward(self, content, angle=None, shift=None, grid=None):
        """Decode ``(B, P)`` values at ``grid`` (default: every pixel).

        ``content`` ``(B, k)``; ``angle`` ``(B,)`` radians; ``shift`` ``(B, d)``
        in grid units (half-window = 1).
        """
        grid = self.grid if grid is None else grid
        a, bias = self.first_layer(content, angle, shift)
        first = torch.baddbmm(bias.unsqueeze(1), grid.expand(a.shape[0], -1, -1), a.transpose(1, 2))
        out = self.mlp(None, extra=content if self.n_content else None, first=first, first_doubled=self.mlp.fast)
        return out.squeeze(-1)


class MLPDecoder(nn.Module):
    """Plain VAE decoder: latents → tanh MLP → all pixels ``(B, P)``."""

    def __init__(self, n_pixels: int, n_content: int, widths, fast: bool = True):
        super().__init__()
        self.mlp = TanhMLP(n_content, widths, n_pixels, fast=fast)

    def forward(self, content, angle=None, shift=None, grid=None):
        out = self.mlp(content)
        return out if grid is None else out[:, grid]
