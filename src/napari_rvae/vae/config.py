"""Plain configuration of a model and its KL-weight schedule; both round-trip to JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

ARCHS = ("vae", "rvae", "skip-rvae", "shift-vae")
#: size bounds of a model: a hostile model.json or a slip of the keyboard must not allocate gigabytes
MAX_WINDOW = 512
MAX_LATENT = 64
MAX_CLASSES = 1000
MAX_LAYERS = 16
MAX_WIDTH = 8192
MAX_PARAMETERS = 50_000_000
ENCODERS = ("mlp", "conv")
ANGLE_ENCODINGS = ("equivariant", "circular", "linear")
LIKELIHOODS = ("gaussian", "bernoulli")
#: the MLP encoder's input is scaled down for windows of more pixels than this (``encoder_input_scale``)
ENCODER_REFERENCE_PIXELS = 48 * 48
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
        values = (self.start, self.end, self.capacity_start, self.capacity_end)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"beta schedule: β and the capacity must be finite numbers ≥ 0, got {values}")

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
    ``noise_sigma`` is the σ of the Gaussian likelihood (decoder noise, in the
    windows' intensity units): the reconstruction term is
    ``½·Σ (x − x̂)² / noise_sigma²``. The default 0.1 suits windows normalised
    to [0, 1]; 1.0 is the unit-variance likelihood (AtomAI's), which on such
    windows is so weak against the KL term that the content latents collapse.
    ``translation=False`` drops the shift latents of the spatial models (a
    rotation-only rVAE: windows centred on the sites they describe, where
    a shift could explain what should be a rotation, e.g. a displaced atom).
    ``angle_encoding``: ``"equivariant"`` (default) — the angle is read from
    circular harmonics of the window about its brightness centre
    (:mod:`.harmonics`), so it turns with the window by construction, plus a
    correction the encoder reads from the window turned back by it; shifts
    and content latents are read from that turned-back window too, so they
    do not see the rotation. ``"circular"`` — the encoder gives the angle's
    mean as ``atan2`` of two outputs (on the circle, but free to settle on
    one angle for every window while the content latents take up the
    rotation); ``"linear"`` — one output, a line (models saved before these
    options existed).
    ``grid_scale`` multiplies the spatial decoder's coordinates (and its first
    layer's bias): 1 for windows about one feature wide; a skip-rVAE on
    windows several lattice periods wide takes it from the lattice spacing
    (:mod:`.defaults`). ``angle_symmetry`` ``n``: the equivariant angle head
    reads harmonics of orders ``n, 2n``, for content with an ``n``-fold axis
    (3 on graphene atoms); the angle is then defined modulo ``2π/n``.
    ``encoder_input_scale``: the MLP encoder reads its windows multiplied by this factor (its first
    layer's weights start divided by it, so the start is the same function): with Adam every weight
    moves by about the learning rate per step, so a first layer reading many pixels moves its units
    by about ``lr × pixels`` and drives them into saturation, where they no longer tell windows apart.
    ``None`` (default): ``min(1, ENCODER_REFERENCE_PIXELS / pixels)``: windows up to 48 × 48 pixels
    (the sizes the defaults were validated on) are read as they are, larger ones with the steps of a
    48 × 48 window; model.json files from before this option load with 1.
    ``standardise_latents``: at the end of training, change the content latents' units so the
    training windows are encoded with the prior's mean and variance (an exact reparametrisation,
    :mod:`.standardise`), so maps over ``±3`` cover where the windows are encoded (the skip-rVAE's
    default, for the chemistry map).
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
    noise_sigma: float = 0.1
    translation: bool = True
    angle_encoding: str = "equivariant"
    grid_scale: float = 1.0
    angle_symmetry: int = 1
    standardise_latents: bool = False
    encoder_input_scale: float | None = None
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
        if self.arch == "shift-vae" and not self.translation:
            raise ValueError("a shift-VAE without translation has no latents to learn a shift; use translation=True")
        if self.angle_encoding not in ANGLE_ENCODINGS:
            raise ValueError(f"angle_encoding {self.angle_encoding!r} unknown; use 'equivariant', 'circular' or 'linear'")
        if not (isinstance(self.grid_scale, (int, float)) and math.isfinite(self.grid_scale)
                and 0.1 <= self.grid_scale <= 100):
            raise ValueError(f"grid_scale must be a number between 0.1 and 100, got {self.grid_scale}")
        self.grid_scale = float(self.grid_scale)
        if not (isinstance(self.angle_symmetry, int) and 1 <= self.angle_symmetry <= 12):
            raise ValueError(f"angle_symmetry must be a whole number from 1 to 12, got {self.angle_symmetry}")
        if self.encoder_input_scale is None:
            self.encoder_input_scale = min(1.0, ENCODER_REFERENCE_PIXELS / self.n_pixels) \
                if self.encoder == "mlp" else 1.0
        if not (isinstance(self.encoder_input_scale, (int, float)) and 1e-4 <= self.encoder_input_scale <= 1.0):
            raise ValueError(f"encoder_input_scale must be a number between 1e-4 and 1, got {self.encoder_input_scale}")
        self.encoder_input_scale = float(self.encoder_input_scale)
        if not (self.noise_sigma > 0 and math.isfinite(self.noise_sigma)):
            raise ValueError(f"noise_sigma must be a finite number > 0 (intensity units), got {self.noise_sigma}")
        if not all(v > 0 and math.isfinite(v) for v in (self.rotation_prior, self.translation_prior)):
            raise ValueError("rotation_prior and translation_prior must be finite numbers > 0")
        self._check_size()

    def _check_size(self) -> None:
        """Bounds that keep a model (from the command line or a hostile model.json) trainable in memory."""
        if max(self.window) > MAX_WINDOW:
            raise ValueError(f"window {self.window}: at most {MAX_WINDOW} pixels per side")
        if self.latent > MAX_LATENT:
            raise ValueError(f"latent {self.latent}: at most {MAX_LATENT} content latents")
        if not 0 <= self.n_classes <= MAX_CLASSES:
            raise ValueError(f"n_classes {self.n_classes}: must be between 0 and {MAX_CLASSES}")
        widths = self.encoder_widths + self.decoder_widths
        if len(self.encoder_widths) > MAX_LAYERS or len(self.decoder_widths) > MAX_LAYERS or max(widths) > MAX_WIDTH:
            raise ValueError(f"encoder_widths {list(self.encoder_widths)}, decoder_widths {list(self.decoder_widths)}: "
                             f"at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units")
        n = self.n_parameters
        if n > MAX_PARAMETERS:
            raise ValueError(f"this architecture has about {n / 1e6:.0f} M parameters; napari-rvae builds models of "
                             f"at most {MAX_PARAMETERS / 1e6:.0f} M (smaller widths or windows)")

    @property
    def n_parameters(self) -> int:
        """Weights of the model this configuration builds (approximate: biases left out)."""
        outputs = 2 * (self.latent + self.n_structural + (1 if self.angle_encoding == "circular" and self.has_angle else 0))
        head = 0
        if self.angle_encoding == "equivariant" and self.has_angle:
            rings = int(min(self.window) / 4)  # harmonics.RING_STEP = 2 px, up to the half window
            head = 2 * (rings + 3 * rings**2)
        if self.encoder == "conv":
            channels = (1,) + self.encoder_widths
            encoder = sum(9 * a * b for a, b in zip(channels, channels[1:])) + channels[-1] * self.n_pixels * outputs
        else:
            sizes = (self.n_pixels,) + self.encoder_widths + (outputs,)
            encoder = sum(a * b for a, b in zip(sizes, sizes[1:]))
        inputs = self.latent + self.n_classes + (self.dims if self.spatial else 0)
        out = 1 if self.spatial else self.n_pixels
        sizes = (inputs,) + self.decoder_widths + (out,)
        return head + encoder + sum(a * b for a, b in zip(sizes, sizes[1:]))

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
        return 0 if self.arch == "vae" or not self.translation else self.dims

    @property
    def n_structural(self) -> int:
        """Angle + shift latents, which come before the content latents."""
        return int(self.has_angle) + self.n_shift

    @property
    def recon_weight(self) -> float:
        """Factor on ``½·Σ (x − x̂)²``: ``1 / noise_sigma²`` (Gaussian), 1 (Bernoulli)."""
        return 1.0 / self.noise_sigma**2 if self.likelihood == "gaussian" else 1.0

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
        d = dict(d)
        # models saved before these options existed: unit-variance likelihood, linear angle
        d.setdefault("noise_sigma", 1.0)
        d.setdefault("angle_encoding", "linear")
        d.setdefault("grid_scale", 1.0)
        d.setdefault("angle_symmetry", 1)
        d.setdefault("encoder_input_scale", 1.0)
        return cls(**d)
