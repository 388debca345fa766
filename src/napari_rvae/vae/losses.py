"""Loss terms, per window (summed over pixels / latents), averaged over a batch.

* Gaussian likelihood: ``½·Σ (x − x̂)²`` (sum of squares; unit variance).
* Bernoulli likelihood: ``Σ BCE(logits, x)``; data must lie in [0, 1].
* KL of shift and content latents against N(0, 1).
* KL of the angle against N(μ, rotation_prior²): only the spread is penalised,
  the mean angle is free (any orientation of a motif is equally likely).
* Total: ``reconstruction + β·KL``, or ``reconstruction + β·|KL − C|`` with
  capacity annealing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F


def check_bernoulli_data(x) -> None:
    """Raise ``ValueError`` unless every value is in [0, 1] (a Bernoulli likelihood needs it)."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if lo < 0 or hi > 1:
        raise ValueError(
            f"the Bernoulli likelihood needs data in [0, 1] but the windows span [{lo:.4g}, {hi:.4g}]; "
            "normalise them (normalisation 'global' or 'window') or use the Gaussian likelihood"
        )


def reconstruction(decoded: torch.Tensor, target: torch.Tensor, likelihood: str, scale: float = 1.0) -> torch.Tensor:
    """Per-window negative log-likelihood ``(B,)``; ``scale`` rescales a pixel subset to the whole window."""
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(decoded, target, reduction="none").sum(1)
    else:
        nll = 0.5 * (decoded - target).square().sum(1)
    return nll * scale if scale != 1.0 else nll


def kl_terms(mean: torch.Tensor, logvar: torch.Tensor, has_angle: bool, rotation_prior: float) -> torch.Tensor:
    """Per-window KL divergence ``(B,)`` of the approximate posterior from the priors."""
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
    if has_angle:
        lp = 2 * math.log(rotation_prior)
        kl_angle = 0.5 * (logvar[:, 0].exp() / rotation_prior**2 - 1.0 - logvar[:, 0] + lp)
        return kl[:, 1:].sum(1) + kl_angle
    return kl.sum(1)


def total_loss(recon: torch.Tensor, kl: torch.Tensor, beta: float, capacity: float = 0.0, use_capacity: bool = False):
    """Batch means ``(total, reconstruction, kl)`` from per-window terms (or their means)."""
    r, k = recon.mean(), kl.mean()
    kl_term = (k - capacity).abs() if use_capacity else k
    return r + beta * kl_term, r, k
