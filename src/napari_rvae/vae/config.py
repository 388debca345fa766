"""Plain configuration of a model and its KL-weight schedule; both round-trip to JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

ARCHS = ("vae", "rvae", "skip-rvae", "shift-vae")
ENCODERS = ("mlp", "conv")
LIKELIHOODS = ("gaussian", "bernoulli")
BETA_KINDS = ("constant", "linear", "cyclical")


@dataclass
class BetaSchedule:
    """KL weight β per epoch, and optional capacity annealing.

    ``kind``: ``"constant"`` (β = ``start``), ``"linear"`` (``start`` → ``end``
    over ``epochs`` epochs, then ``end``) or ``"cyclical"`` (repeats the linear
    ramp every ``epochs`` epochs). Capacity annealing (Burgess et al. 2018):
    the KL term becomes ``β·|KL − C|`` with ``C`` (nats per window) rising
    linearly from ``capacity_start`` to ``capacity_end`` over
    ``capacity_epochs``; ``capacity_end = 0`` switches it off.
    """

    kind: str = "constant"
    start: float = 1.0
    end: float = 1.0
    epochs: int = 10
    capacity_start: float = 0.0
    capacity_end: float = 0.0
    capacity_epochs: int = 10

    def __post_init__(self):
        if self.kind not in BETA_KINDS:
            raise ValueError(f"beta schedule kind {self.kind!r} unknown; use one of {', '.join(BETA_KINDS)}")
        if self.epochs < 1 or self.capacity_epochs < 1:
            raise ValueError("beta schedule: epochs and capacity_epochs must be ≥ 1")
        if min(self.start, self.end) < 0:
            raise ValueError("beta schedule: β must be ≥ 0")

    def beta(self, epoch: int) -> float:
        """β for a (0-based) epoch."""
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            frac = min(1.0, epoch / max(1, self.epochs - 1)) if self.epochs > 1 else 1.0
        else:
            frac = (epoch % self.epochs) / max(1, self.epochs - 1) if self.epochs > 1 else 1.0
        return float(self.start + (self.end - self.start) * frac)

    def capacity(self, epoch: int) -> float:
        """KL capacity C (nats) for a (0-based) epoch; 0 when annealing is off."""
        if self.capacity_end == 0 and self.capacity_start == 0:
            return 0.0
        frac = min(1.0, epoch / max(1, self.capacity_epochs - 1))
        return float(self.capacity_start + (self.capacity_end - self.capacity_start) * frac)

    @property
    def uses_capacity(self) -> bool:
        return bool(self.capacity_end or self.capacity_start)


@dataclass
class VAEConfig:
    """Everything needed to rebuild a model (stored in ``model.json``).

    ``window`` is ``(h, w)`` for images or ``(w,)`` for 1D signals (pixels).
    ``encoder_widths`` are the hidden widths of the MLP encoder (or the
    channels of the conv encoder). ``decoder_widths`` are the tanh layer
    widths of the decoder: AtomAI's "2 × 128" rVAE decoder (a coordinate +
    latent input layer, then 2 hidden layers) is ``(128, 128, 128)``.
    ``rotation_prior`` is the σ (radians) of the angle prior;
    ``translation_prior`` scales the shift latents (in half-window units).
    ``n_classes > 0`` makes the decoder class-conditional (one-hot input).
    """

    arch: str = "rvae"
    window: tuple = (28, 28)
    latent: int = 2
    encoder: str = "mlp"
    encoder_widths: tuple = (128, 128)
    decoder_widths: tuple = (128, 128, 128)
    likelihood: str = "gaussian"
    rotation_prior: float = 0.1
    translation_prior: float = 0.1
    n_classes: int = 0
    beta: BetaSchedule = field(default_factory=BetaSchedule)

    def __post_init__(self):
        if isinstance(self.beta, dict):
            self.beta = BetaSchedule(**self.beta)
        self.window = tuple(int(v) for v in self.window)
        self.encoder_widths = tuple(int(v) for v in self.encoder_widths)
        self.decoder_widths = tuple(int(v) for v in self.decoder_widths)
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} unknown; use one of {', '.join(ARCHS)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r} unknown; use 'mlp' or 'conv'")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood {self.likelihood!r} unknown; use 'gaussian' or 'bernoulli'")
        if len(self.window) not in (1, 2) or min(self.window) < 2:
            raise ValueError(f"window must be (h, w) or (w,) with sizes ≥ 2 pixels, got {self.window}")
        if self.dims == 1 and self.arch in ("rvae", "skip-rvae"):
            raise ValueError("1D data has no rotation: use arch 'shift-vae' or 'vae' for 1D windows")
        if self.encoder == "conv" and self.dims != 2:
            raise ValueError("the conv encoder needs 2D windows; use encoder 'mlp' for 1D data")
        if self.latent < 0 or (self.latent == 0 and self.arch == "vae"):
            raise ValueError(f"latent must be ≥ 1 content latents (≥ 0 for invariant models), got {self.latent}")
        if not self.decoder_widths or not self.encoder_widths or min(self.decoder_widths + self.encoder_widths) < 1:
            raise ValueError("encoder_widths and decoder_widths need at least one positive width")
        if not (self.rotation_prior > 0 and self.translation_prior > 0):
            raise ValueError("rotation_prior and translation_prior must be > 0")

    # ---- derived facts ----------------------------------------------------
    @property
    def dims(self) -> int:
        return len(self.window)

    @property
    def n_pixels(self) -> int:
        return math.prod(self.window)

    @property
    def has_angle(self) -> bool:
        return self.arch in ("rvae", "skip-rvae")

    @property
    def n_shift(self) -> int:
        return 0 if self.arch == "vae" else self.dims

    @property
    def n_structural(self) -> int:
        """Angle + shift latents, which come before the content latents."""
        return int(self.has_angle) + self.n_shift

    @property
    def spatial(self) -> bool:
        return self.arch != "vae"

    def structural_names(self) -> list[str]:
        names = ["angle"] if self.has_angle else []
        return names + ["dx", "dy"][: self.n_shift]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["window"] = list(self.window)
        d["encoder_widths"] = list(self.encoder_widths)
        d["decoder_widths"] = list(self.decoder_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"model config has unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**d)
