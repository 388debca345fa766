"""The model: an encoder and a decoder wired by a :class:`VAEConfig`.

Latent layout of the encoder output: ``[angle] [dx, dy | dx] z0 … z{k−1}``
(structural latents first, as in ``VAEConfig.structural_names``).

* angle (rVAE, skip-rVAE): the decoder rotates its grid by the sampled angle
  itself (radians); its prior is N(μ, rotation_prior²) with the mean left
  free, so only the spread is penalised and any orientation is allowed.
* shift latents: N(0, 1) prior; the decoder shift is
  ``latent × translation_prior`` in half-window units, i.e.
  ``latent × translation_prior × (w − 1)/2`` pixels.
* content latents z: N(0, 1) prior.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import VAEConfig
from .decoders import MLPDecoder, SpatialDecoder
from .encoders import ConvEncoder, MLPEncoder
from .harmonics import HarmonicAngle, turn_windows
from .fused import fused_reconstruction, parallel_ranges
from .losses import reconstruction

CONV_CHANNELS = (16, 32, 64)


class InvariantVAE(nn.Module):
    """VAE / rVAE / skip-rVAE / shift-VAE built from a :class:`VAEConfig`."""

    def __init__(self, config: VAEConfig, fast: bool = True):
        super().__init__()
        self.config = config
        n_enc = config.n_structural + config.latent
        self.circular = config.has_angle and config.angle_encoding == "circular"
        n_enc += int(self.circular)  # (cos, sin)-like pair for the angle's mean
        self.harmonic = config.has_angle and config.angle_encoding == "equivariant"
        if self.harmonic:
            self.angle_head = HarmonicAngle(config.window, symmetry=config.angle_symmetry)
        if config.encoder == "mlp":
            self.encoder = MLPEncoder(config.n_pixels, config.encoder_widths, n_enc, fast=fast,
                                      input_scale=config.encoder_input_scale)
        else:
            self.encoder = ConvEncoder(config.window, CONV_CHANNELS, n_enc)
        n_content = config.latent + config.n_classes
        if config.spatial:
            self.decoder = SpatialDecoder(
                config.window, n_content, config.decoder_widths,
                rotate=config.has_angle, skip=config.arch == "skip-rvae", fast=fast,
                grid_scale=config.grid_scale,
            )
        else:
            self.decoder = MLPDecoder(config.n_pixels, n_content, config.decoder_widths, fast=fast)

    # ---- pieces ---------------------------------------------------------------
    def encode(self, x: torch.Tensor):
        """Windows ``(B, *window)`` → ``(mean, logvar)`` ``(B, n_structural + latent)``.

        With a circular angle the encoder's first two outputs ``(a, b)`` give the
        angle's mean ``atan2(b, a)`` (radians, on the circle) and its log-variance
        is the first log-variance output."""
        if self.harmonic:
            return self._encode_turned(x)
        mean, logvar = self.encoder(x)
        if not self.circular:
            return mean, logvar
        angle = torch.atan2(mean[:, 1], mean[:, 0]).unsqueeze(1)
        return torch.cat([angle, mean[:, 2:]], 1), torch.cat([logvar[:, :1], logvar[:, 2:]], 1)

    def _encode_turned(self, x: torch.Tensor):
        """Equivariant angle: the angle from :class:`.harmonics.HarmonicAngle`; the window is
        turned back by it and the encoder reads from that window, inside its inscribed disk (the
        corners a turn fills in from the edges are left out), a correction of the angle, the
        shifts (in the template's frame, turned to the window's) and the content latents, so
        these do not see the rotation."""
        head = self.angle_head.angle(x)
        mean, logvar = self.encoder(turn_windows(x, -head) * self.angle_head.disk)
        n_shift = self.config.n_shift
        if n_shift:
            c, s = torch.cos(head), torch.sin(head)
            sx, sy = mean[:, 1], mean[:, 2]
            mean = torch.cat([mean[:, :1], torch.stack([c * sx - s * sy, s * sx + c * sy], 1), mean[:, 3:]], 1)
        # the encoder's first output corrects the head's angle; read from the turned-back window,
        # the correction does not change when the window turns, so the sum still turns with it
        return torch.cat([(head + mean[:, 0]).unsqueeze(1), mean[:, 1:]], 1), logvar

    def split(self, latents: torch.Tensor):
        """``(B, n)`` → ``(angle or None, shift or None, content)`` (model units)."""
        cfg = self.config
        i = 0
        angle = shift = None
        if cfg.has_angle:
            angle, i = latents[:, 0], 1
        if cfg.n_shift:
            shift, i = latents[:, i : i + cfg.n_shift], i + cfg.n_shift
        return angle, shift, latents[:, i:]

    def _decoder_inputs(self, angle, shift, content, classes, pixels):
        cfg = self.config
        if cfg.n_classes:
            if classes is None:
                raise ValueError("this model is class-conditional: pass the class of each window")
            onehot = nn.functional.one_hot(classes.long(), cfg.n_classes).to(content.dtype)
            content = torch.cat([content, onehot], dim=1)
        if shift is not None:
            shift = shift * cfg.translation_prior
        grid = None
        if pixels is not None:
            grid = self.decoder.grid[pixels] if cfg.spatial else pixels
        return angle, shift, content, grid

    def decode_parts(self, angle, shift, content, classes=None, pixels=None):
        """Decoder output (logits for Bernoulli) ``(B, P)`` or at ``pixels`` (indices)."""
        angle, shift, content, grid = self._decoder_inputs(angle, shift, content, classes, pixels)
        return self.decoder(content, angle, shift, grid=grid)

    @property
    def can_fuse(self) -> bool:
        """Whether :meth:`reconstruction_sum` can use the cache-chunked fused path."""
        return self.config.spatial and self.decoder.mlp.fast

    def reconstruction_sum(self, target, z, classes=None, pixels=None, scale: float = 1.0,
                           fused: bool = True, chunk: int = 2, workers: int | None = None) -> torch.Tensor:
        """Summed reconstruction loss (negative log-likelihood) of ``target`` ``(B, P')``
        given sampled latents ``z``. ``fused`` uses :mod:`.fused` when possible (cache-sized
        chunks of ``chunk`` windows on ``workers`` threads), also without gradients."""
        angle, shift, content = self.split(z)
        if fused and self.can_fuse and torch.is_grad_enabled():
            angle, shift, content, grid = self._decoder_inputs(angle, shift, content, classes, pixels)
            return fused_reconstruction(self.decoder, content, angle, shift, target, self.config.likelihood,
                                        scale, grid=grid, chunk=chunk, workers=workers)
        if fused and target.device.type == "cpu" and not torch.is_grad_enabled():  # pieces written in place
            sums = torch.zeros(len(target), dtype=target.dtype)

            def piece(lo, hi):
                sl = slice(lo, hi)
                decoded = self.decode_parts(None if angle is None else angle[sl], None if shift is None else shift[sl],
                                            content[sl], None if classes is None else classes[sl], pixels)
                sums[sl] = reconstruction(decoded, target[sl], self.config.likelihood, scale)

            parallel_ranges(piece, len(target), max(chunk, 4), workers)
            return sums.sum()
        decoded = self.decode_parts(angle, shift, content, classes, pixels)
        return reconstruction(decoded, target, self.config.likelihood, scale).sum()

    def sample(self, x: torch.Tensor, generator=None):
        """Encode and draw one latent sample: ``(z, mean, logvar)``, each ``(B, n)``."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + eps * torch.exp(0.5 * logvar), mean, logvar

    def forward(self, x: torch.Tensor, classes=None, pixels=None, generator=None):
        """One stochastic pass: ``(decoded (B, P'), mean, logvar)``."""
        z, mean, logvar = self.sample(x, generator)
        angle, shift, content = self.split(z)
        return self.decode_parts(angle, shift, content, classes, pixels), mean, logvar


def build_model(config: VAEConfig, seed: int | None = 0, fast: bool = True) -> InvariantVAE:
    """Build a model with weights initialised from ``seed`` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        return InvariantVAE(config, fast=fast)
