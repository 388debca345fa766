"""Put a trained model's content latents where their prior is: an exact change of latent units.

The latent-plane maps (manifold, chemistry map, physicality map) decode a grid over ``±3`` on
the content latents, assuming the encoded windows fill the N(0, 1) prior. A model trained with
a sharp likelihood (``noise_sigma`` 0.1: the reconstruction term weighs 100× a unit-variance
one) feels the KL term only weakly, and its windows can end up encoded far from the prior: the
skip-rVAE on graphene windows put them at ``z1 ≈ −3.1 ± 0.7`` and ``z0 ≈ −0.5 ± 0.15``, so the
``±3`` grid decoded mostly latent points no window was encoded at (the decoder's extrapolation,
values down to −1.2), and the chemistry map found "91 % unphysical" while the windows decoded at
the encoded points were pristine honeycomb neighbourhoods.

:func:`standardise_latents` moves and rescales each content latent ``z = m + s·z'`` so the
windows' aggregate posterior has the prior's mean and variance (``m`` = mean of the encoder
means, ``s² = var(means) + mean(σ²)``), and rewrites the encoder's last layer and the decoder's
latent inputs so the model computes exactly the same windows: decoding ``z'`` gives what
decoding ``m + s·z'`` gave. This choice of ``(m, s)`` is the one that minimises the KL term of
the windows for the model's function, so the ELBO can only improve; a collapsed latent (means all
alike, σ ≈ 1) keeps ``s ≈ 1`` and stays collapsed.
"""

from __future__ import annotations

import numpy as np
import torch

#: a latent whose aggregate σ is outside this range (latent units) is left as it is
SCALE_LIMITS = (1e-3, 1e3)


@torch.no_grad()
def standardise_latents(model, windows) -> dict:
    """Rescale the content latents of ``model`` in place so ``windows`` (normalised like the
    training windows) are encoded with mean 0 and aggregate variance 1 per latent.

    Returns ``{"offset": [m…], "scale": [s…]}`` (old latent = offset + scale × new latent),
    also appended to ``model.latent_standardisation``. Models without content latents are left
    unchanged (empty lists).
    """
    from .latents import encode

    k = int(model.config.latent)
    record = {"offset": [], "scale": []}
    if k == 0 or len(windows) < 2:
        return record
    table = encode(model, windows)
    means = table[[f"z{i}" for i in range(k)]].to_numpy(np.float64)
    sigmas = table[[f"z{i}_sigma" for i in range(k)]].to_numpy(np.float64)
    m = means.mean(0)
    s = np.sqrt(means.var(0) + np.square(sigmas).mean(0))
    bad = ~(np.isfinite(m) & np.isfinite(s) & (s > SCALE_LIMITS[0]) & (s < SCALE_LIMITS[1]))
    m[bad], s[bad] = 0.0, 1.0
    _rewrite(model, m, s)
    record = {"offset": [float(v) for v in m], "scale": [float(v) for v in s]}
    model.latent_standardisation = list(getattr(model, "latent_standardisation", [])) + [record]
    return record


def _encoder_head(encoder):
    """``(weight, bias)`` of the encoder's last linear layer (rows: means, then log-variances)."""
    if hasattr(encoder, "head"):
        return encoder.head.weight, encoder.head.bias
    return encoder.mlp.weights[-1], encoder.mlp.biases[-1]


def _rewrite(model, m: np.ndarray, s: np.ndarray) -> None:
    """Encoder outputs ``(μ − m)/s`` and ``log σ² − 2 log s``; the decoder takes ``m + s·z'``."""
    k = len(m)
    weight, bias = _encoder_head(model.encoder)
    mt = torch.as_tensor(m, dtype=weight.dtype, device=weight.device)
    st = torch.as_tensor(s, dtype=weight.dtype, device=weight.device)
    n = model.encoder.n_latent  # means in rows [0, n), log-variances in [n, 2n); content last in each
    means, logvars = slice(n - k, n), slice(2 * n - k, 2 * n)
    weight[means] /= st[:, None]
    bias[means] = (bias[means] - mt) / st
    bias[logvars] -= 2 * torch.log(st)
    decoder = model.decoder
    mlp = decoder.mlp
    dims = int(getattr(decoder, "dims", 0))  # spatial decoders: coordinates first, then content (+ classes)
    columns = slice(dims, dims + k)
    first = mlp.weights[0]
    # the spatial decoder multiplies its first bias by grid_scale (decoders.SpatialDecoder.first_layer)
    mlp.biases[0] += (first[:, columns] @ mt) / float(getattr(decoder, "grid_scale", 1.0))
    first[:, columns] *= st[None]
    for i, extra in enumerate(mlp.extra_weights):  # skip connections into hidden layers 1…
        mlp.biases[i + 1] += extra[:, :k] @ mt
        extra[:, :k] *= st[None]
