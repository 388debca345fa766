"""Encoders: windows → mean and log-variance of the latents."""

from __future__ import annotations

import torch
from torch import nn

from .layers import TanhMLP


class MLPEncoder(nn.Module):
    """Flattened window → tanh MLP (``widths``) → ``(mean, logvar)``, each ``(B, n_latent)``."""

    def __init__(self, n_pixels: int, widths, n_latent: int, fast: bool = True):
        super().__init__()
        self.n_latent = n_latent
        self.mlp = TanhMLP(n_pixels, widths, 2 * n_latent, fast=fast)

    def forward(self, x: torch.Tensor):
        flat = x.reshape(len(x), -1)
        # encoding (no autograd): the cached folded weights, no per-call scaling passes
        out = self.mlp.infer(flat) if self.mlp.fast and torch.is_inference_mode_enabled() else self.mlp(flat)
        return out[:, : self.n_latent], out[:, self.n_latent :]


class ConvEncoder(nn.Module):
    """3×3 conv + LeakyReLU (+ 2×2 max-pool while the map is ≥ 8 px) per entry of
    ``channels``, then a linear layer to ``(mean, logvar)``."""

    def __init__(self, window, channels, n_latent: int):
        super().__init__()
        self.n_latent = n_latent
        layers, c_in, size = [], 1, list(window)
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.1)]
            if min(size) >= 8:
                layers.append(nn.MaxPool2d(2))
                size = [s // 2 for s in size]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * size[0] * size[1], 2 * n_latent)

    def forward(self, x: torch.Tensor):
        out = self.head(self.features(x.unsqueeze(1)).flatten(1))
        return out[:, : self.n_latent], out[:, self.n_latent :]
