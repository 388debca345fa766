"""An angle read from circular harmonics: it turns with the window by construction.

For a window ``x`` and rings of radius ``ρ_r`` about its brightness centre, the harmonic
``c_{r,m} = Σ_p x(p)·g_r(|p|)·e^{i·m·φ(p)}`` (``φ`` the polar angle of pixel ``p`` on
``(x = column, y = row)``, both about the brightness centre, which moves with the content) picks up the phase ``e^{i·m·θ}`` when the window turns by ``θ``.
Products ``c_{r,m+1}·conj(c_{r',m})`` therefore pick up ``e^{iθ}`` too, whatever ``m``.
The head's output is a learned complex combination of the first harmonics and these
products (each product scaled back to one power of the intensity); its argument is the
angle. Any weights give an angle that follows a turn of the window exactly (up to
resampling), so training only chooses which rings and harmonics to trust (shifts, noise,
neighbours): an rVAE built on it cannot fall into the state where one angle serves every
window.
"""

from __future__ import annotations

import math

import numpy as np

import torch
from torch import nn
from torch.nn import functional as F

HARMONICS = 4  # highest order m
RING_STEP = 2.0  # pixels between ring radii
#: the weights are stored divided by this factor: Adam's steps on them are this much larger, so the
#: head settles in the first epochs while the encoder and decoder are still learning (about 20 steps
#: per epoch on a few thousand windows)
SPEED = 30.0


class HarmonicAngle(nn.Module):
    """Windows ``(B, h, w)`` → ``(B, 2)``: a vector that turns with the window (cos-, sin-like).

    ``symmetry`` ``n`` > 1 (content with an n-fold axis, e.g. 3 for atom-centred graphene
    windows, whose first and second harmonics vanish): the head uses the harmonics of orders
    ``n, 2n, …`` up to order 6 and its vector turns ``n`` times as fast as the window; the angle is its
    argument over ``n``, defined modulo ``2π/n`` like the content itself."""

    def __init__(self, window, harmonics: int = HARMONICS, symmetry: int = 1):
        super().__init__()
        self.symmetry = int(symmetry)
        if self.symmetry > 1:  # orders up to 6 (n and 2n for n ≤ 3): higher ones alias on the small rings
            harmonics = max(1, min(harmonics, 6 // self.symmetry))
        h, w = window
        y, x = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
        self.register_buffer("xy", torch.stack([x.reshape(-1), y.reshape(-1)], 1), persistent=False)  # (P, 2) px
        self.register_buffer("radii", torch.arange(RING_STEP, min(h, w) / 2 + 1e-6, RING_STEP), persistent=False)
        self.n_rings, self.harmonics = len(self.radii), harmonics
        self.inner = min(h, w) / 2  # the centre is weighed inside this radius
        # the inscribed disk (1 inside, a 1 px taper): what a turn about the centre keeps in the window
        rho = self.xy.square().sum(1).sqrt().reshape(h, w)
        self.register_buffer("disk", torch.clamp(self.inner + 0.5 - rho, 0.0, 1.0), persistent=False)
        n_features = self.n_rings + (harmonics - 1) * self.n_rings**2
        g = torch.Generator().manual_seed(12345)  # a fixed start; the model's seed sets the rest
        self.weight = nn.Parameter(torch.randn(n_features, 2, generator=g) / (SPEED * math.sqrt(n_features)))

    def centre(self, flat: torch.Tensor) -> torch.Tensor:
        """Brightness centre ``(B, 2)`` (pixels from the window centre, x then y) of what stands out
        above the window's mean, inside the inscribed disk: it moves with a shift of the content and
        turns with it, so harmonics about it follow the rotation and ignore the shift."""
        inside = (self.xy.square().sum(1) <= self.inner**2).to(flat.dtype)
        weight = torch.relu(flat - flat.mean(1, keepdim=True)) * inside
        return (weight @ self.xy) / (weight.sum(1, keepdim=True) + 1e-6)

    def harmonic_coefficients(self, x: torch.Tensor):
        """``(real, imaginary)`` of ``c_{r,m}`` for ``m = n, 2n, …`` (``n`` the symmetry), each
        ``(B, R, M)``, about :meth:`centre`."""
        flat = x.reshape(len(x), -1)
        rel = self.xy.unsqueeze(0) - self.centre(flat).unsqueeze(1)  # (B, P, 2)
        rho = torch.sqrt(rel.square().sum(2) + 1e-12)
        phi = torch.atan2(rel[..., 1], rel[..., 0])
        sigma = RING_STEP * 0.75
        rings = torch.exp(-(rho.unsqueeze(2) - self.radii) ** 2 / (2 * sigma**2)) * flat.unsqueeze(2)  # (B, P, R)
        m = torch.arange(1, self.harmonics + 1, dtype=x.dtype, device=x.device) * self.symmetry
        phase = phi.unsqueeze(2) * m  # (B, P, M)
        re = torch.einsum("bpr,bpm->brm", rings, torch.cos(phase))
        im = torch.einsum("bpr,bpm->brm", rings, torch.sin(phase))
        return re, im

    def features(self, x: torch.Tensor):
        """Complex features ``(B, F)`` as ``(real, imaginary)`` that all turn like ``e^{iθ}``."""
        b = len(x)
        re, im = self.harmonic_coefficients(x)  # (B, R, M)
        out_re, out_im = [re[:, :, 0]], [im[:, :, 0]]
        for m in range(1, self.harmonics):
            a_re, a_im = re[:, :, m, None], im[:, :, m, None]  # c_{r, m+1}
            b_re, b_im = re[:, None, :, m - 1], im[:, None, :, m - 1]  # c_{r', m}
            p_re = a_re * b_re + a_im * b_im  # a · conj(b)
            p_im = a_im * b_re - a_re * b_im
            scale = torch.rsqrt(torch.sqrt(p_re**2 + p_im**2 + 1e-12) + 1e-6)  # |p|^(-1/2): one power of x
            out_re.append((p_re * scale).reshape(b, -1))
            out_im.append((p_im * scale).reshape(b, -1))
        return torch.cat(out_re, 1), torch.cat(out_im, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = self.features(x)
        wr, wi = self.weight[:, 0] * SPEED, self.weight[:, 1] * SPEED
        return torch.stack([re @ wr - im @ wi, re @ wi + im @ wr], 1)

    def angle(self, x: torch.Tensor) -> torch.Tensor:
        """The head's angle ``(B,)`` (radians; modulo ``2π/n`` for symmetry ``n``)."""
        v = self(x)
        return torch.atan2(v[:, 1], v[:, 0]) / self.symmetry


def harmonic_power(windows, orders: int = 6, max_windows: int = 400) -> np.ndarray:
    """Mean power of the circular harmonics ``m = 1 … orders`` of windows (about their brightness
    centres, summed over rings), normalised to a maximum of 1: ``(orders,)``."""
    x = torch.as_tensor(np.asarray(windows, np.float32)[:max_windows])
    head = HarmonicAngle(tuple(x.shape[1:]), harmonics=orders)
    with torch.no_grad():
        flat = x.reshape(len(x), -1)
        re, im = head.harmonic_coefficients(x - flat.mean(1).reshape(-1, 1, 1))
        power = (re**2 + im**2).sum(1).mean(0).numpy()
    return power / max(float(power.max()), 1e-30)


def content_symmetry(windows, *, weak: float = 0.35, max_order: int = 6) -> int:
    """The rotational symmetry order ``n`` of windows' content: the largest ``n`` (up to ``max_order``)
    for which every harmonic of an order that is not a multiple of ``n`` carries less than ``weak``
    of the strongest one's power (e.g. 3 for windows centred on graphene atoms, 6 on its hollow
    sites); 1 for content without such symmetry. A turn by ``2π/n`` leaves such content unchanged,
    so an rVAE's angle on it is defined modulo ``2π/n``."""
    power = harmonic_power(windows, max_order)
    orders = np.arange(1, max_order + 1)
    for n in range(max_order, 1, -1):
        if np.all(power[orders % n != 0] < weak):
            return n
    return 1


def turn_windows(x: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Windows ``(B, h, w)`` turned by ``phi`` ``(B,)`` radians about their centres (the decoder's
    convention, R(φ) on ``(x = column, y = row)``): pixel ``p`` of the result holds the input at
    ``R(−φ)·p`` (bilinear, edges continued)."""
    c, s = torch.cos(phi), torch.sin(phi)
    zero = torch.zeros_like(c)
    theta = torch.stack([torch.stack([c, s, zero], 1), torch.stack([-s, c, zero], 1)], 1)
    grid = F.affine_grid(theta, (len(x), 1) + tuple(x.shape[1:]), align_corners=True)
    return F.grid_sample(x.unsqueeze(1), grid, mode="bilinear", padding_mode="border",
                         align_corners=True).squeeze(1)
