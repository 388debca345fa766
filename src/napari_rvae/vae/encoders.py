"""Encoders: windows → mean and log-variance of the latents."""

from __future__ import annotations

import torch
from torch import nn

from .layers import TanhMLP


class MLPEncoder(nn.Module):
    """Flattened window × ``input_scale`` → tanh MLP (``widths``) → ``(mean, logvar)``, each ``(B, n_latent)``.

    ``input_scale`` < 1 (windows of many pixels, :class:`~.config.VAEConfig` ``encoder_input_scale``):
    the first layer's weights start divided by it, so the encoder starts as the same function, but
    an Adam step (about the learning rate on every weight) moves its units ``input_scale`` times as
    far: they no longer saturate on windows of thousands of pixels."""

    def __init__(self, n_pixels: int, widths, n_latent: int, fast: bool = True, input_scale: float = 1.0):
        super().__init__()
        self.n_latent = n_latent
        self.input_scale = float(input_scale)
        self.mlp = TanhMLP(n_pixels, widths, 2 * n_latent, fast=fast)
        if self.input_scale != 1.0:
            with torch.no_grad():
                self.mlp.weights[0].div_(self.input_scale)

    def forward(self, x: torch.Tensor):
        flat = x.reshape(len(x), -1)
        if self.input_scale != 1.0:
            flat = flat * self.input_scale
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
