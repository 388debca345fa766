"""Is a trained model informative? The one check of latent collapse, run after every training.

A VAE can "learn nothing": every window is encoded at the prior's mean, the decoder draws
the mean window, and clusters, angle peaks or NMF populations found in such latents are
noise. The check looks at three things:

- **spread vs the prior**: the standard deviation, over the windows, of each latent's
  encoder mean. Content latents have an N(0, 1) prior: a latent whose means spread less than
  0.1 (a variance of 0.01, the usual "active unit" cut) carries nothing. The angle is
  circular: a circular spread under 0.1 rad means rotation was not learned (or the windows
  do not rotate). Shifts are in pixels: under 0.25 px they explain nothing.
- **KL per latent** (nats per window): ≈ 0 for a latent the posterior never leaves the prior on.
- **reconstruction vs the mean window**: the share of the windows' variance around their
  mean window that the model's reconstructions explain (``1 − MSE(model) / MSE(mean window)``).
  Under 0.05 the model is no better than drawing the mean window.

:func:`check_latent_table` works from an encoded sites table alone (spreads only; used by the
Analysis dock and :func:`~napari_rvae.analysis.report.analyse_latents` when no model is at
hand); :func:`check_model` adds the KL and the reconstruction (torch, imported when called).
Their :class:`LatentCheck` travels with the run: its warnings are printed by the CLI, stored in
``run.json`` / ``model.json`` and shown in the docks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

CONTENT_SPREAD = 0.1  # std of a content latent's encoder means (prior σ = 1)
ANGLE_SPREAD = 0.1  # radians, circular std of the encoded angles
SHIFT_SPREAD = 0.25  # pixels
MIN_GAIN = 0.05  # share of the variance around the mean window the reconstructions explain
CHECK_WINDOWS = 2000  # windows used by check_model (a fixed random subset of larger sets)



def fixes(model=None) -> str:
    """What to try, most likely first, leaving out what ``model`` already does (its windows' source
    and normalisation are recorded in ``model.normalisation``)."""
    norm = (getattr(model, "normalisation", None) or {}) if model is not None else {}
    steps = []
    if norm.get("source") != "map":
        steps.append("for atom sites, cut the windows from the segmentation (atom probability) map "
                     "(--windows-from map)")
    if norm.get("mode") != "window":
        steps.append("scale each window on its own (train --normalisation window)")
    cfg = getattr(model, "config", None)
    if cfg is None or cfg.likelihood == "gaussian":
        now = f"now {cfg.noise_sigma:g}; " if cfg is not None else ""
        steps.append(f"lower the likelihood's σ towards the windows' noise ({now}train --noise-sigma)")
    steps.append("train more epochs (--epochs)")
    return "; ".join(steps)


@dataclass
class LatentCheck:
    """The verdict on one model's latents (JSON-ready through :meth:`to_dict`).

    Attributes
    ----------
    n_windows : int
        Windows (or sites) the check looked at.
    spread : dict
        Latent name → spread (content: std in prior units; angle: circular std, rad; dx/dy: std, px).
    kl : dict
        Latent name → mean KL (nats per window); empty without a model.
    gain : float or None
        ``1 − MSE(reconstruction) / MSE(mean window)``; ``None`` without a model.
    collapsed : list of str
        Latents that carry no information.
    informative : bool
        False when the reconstructions are no better than the mean window or every latent collapsed.
    warnings : list of str
        What is wrong, its likely cause and the fix, one sentence each.
    notes : list of str
        What is collapsed without being a fault (a spare content latent the data does not need).
    """

    n_windows: int
    spread: dict = field(default_factory=dict)
    kl: dict = field(default_factory=dict)
    gain: float | None = None
    collapsed: list = field(default_factory=list)
    informative: bool = True
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # facts that are no fault (e.g. a spare content latent unused)

    @property
    def angle_collapsed(self) -> bool:
        return "angle" in self.collapsed

    def usable(self, columns) -> list[str]:
        """The ``columns`` that carry information (all of them when the check cannot tell)."""
        return [c for c in columns if c not in self.collapsed]

    def line(self) -> str:
        """One line for a terminal or a dock's status."""
        if self.warnings:
            return "warning: " + self.warnings[0]
        gain = "" if self.gain is None else f"; reconstructions explain {self.gain:.0%} of the variance beyond the mean window"
        notes = "".join(f"; {n}" for n in self.notes)
        return f"latents informative (spread {', '.join(f'{k} {v:.2g}' for k, v in self.spread.items())}{gain}){notes}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["spread"] = {k: round(float(v), 6) for k, v in self.spread.items()}
        out["kl"] = {k: round(float(v), 6) for k, v in self.kl.items()}
        out["gain"] = None if self.gain is None else round(float(self.gain), 4)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "LatentCheck":
        return cls(**{k: d[k] for k in ("n_windows", "spread", "kl", "gain", "collapsed", "informative", "warnings",
                                                           "notes")
                      if k in d})


def circular_spread(angle) -> float:
    """Circular standard deviation (radians) of angles: 0 when all agree, ≈ 1.81 when uniform."""
    a = np.asarray(angle, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not len(a):
        return 0.0
    resultant = float(np.abs(np.exp(1j * a).mean()))
    return float(np.sqrt(-2.0 * np.log(min(1.0, max(resultant, 1e-300)))))


def latent_spreads(table: pd.DataFrame) -> dict[str, float]:
    """Spread of every latent column of an encoded table (see the module's units)."""
    from ..io.sites import latent_columns

    out = {}
    for name in latent_columns(table):
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if name == "angle":
            out[name] = circular_spread(values)
        else:
            out[name] = float(np.std(values)) if len(values) > 1 else 0.0
    return out


def _is_collapsed(name: str, spread: float) -> bool:
    if name == "angle":
        return spread < ANGLE_SPREAD
    if name in ("dx", "dy"):
        return spread < SHIFT_SPREAD
    return spread < CONTENT_SPREAD


def _verdict(n: int, spread: dict, kl: dict | None = None, gain: float | None = None, model=None) -> LatentCheck:
    collapsed = [k for k, v in spread.items() if _is_collapsed(k, v)]
    content = [k for k in spread if k not in ("angle", "dx", "dy")]
    carrying = [k for k in spread if k not in collapsed]
    no_gain = gain is not None and gain < MIN_GAIN
    informative = bool(carrying) and not no_gain
    warnings = []
    if not informative:
        why = []
        if no_gain:
            share = f"{gain:.0%}" if gain > 0 else "none"
            why.append(f"its reconstructions are no better than the mean window (they explain {share} of the "
                       "windows' variance beyond it)")
        if not carrying:
            biggest = max(spread.values(), default=0.0)
            why.append(f"every latent collapsed (largest spread {biggest:.2g})")
        warnings.append(f"the model learned nothing: {' and '.join(why)}; clusters, angle peaks and NMF of these "
                        f"latents would be noise and are not reported. Likely cause: windows that differ mostly "
                        f"by noise or smooth background. Fix: {fixes(model)}.")
    else:
        if "angle" in collapsed and any(c not in collapsed for c in content + ["dx", "dy"] if c in spread):
            warnings.append(f"the angle collapsed (spread {spread['angle']:.2g} rad): rotation was not learned, "
                            f"or the windows do not rotate; angle peaks are not findings. Fix: {fixes(model)}.")
        elif "angle" in collapsed:
            warnings.append(f"the angle collapsed (spread {spread['angle']:.2g} rad): rotation was not learned, "
                            "or the windows do not rotate; angle peaks are not findings.")
    notes = []
    dead = [c for c in content if c in collapsed]
    if informative and dead:
        notes.append(f"{', '.join(dead)} collapsed and {'are' if len(dead) > 1 else 'is'} left out of the clusters"
                     + (": the windows differ only by rotation and shift, as far as the model can tell"
                        if len(dead) == len(content) else ""))
    return LatentCheck(n_windows=int(n), spread=spread, kl=dict(kl or {}), gain=gain, collapsed=collapsed,
                       informative=informative, warnings=warnings, notes=notes)


def check_latent_table(table: pd.DataFrame) -> LatentCheck:
    """Check an encoded sites table (latent columns ``angle``, ``dx``, ``dy``, ``z0`` …) from
    the spread of its latents alone."""
    from ..io.sites import latent_columns

    if not latent_columns(table):
        raise ValueError("sites: no latent columns (angle, z0 …) to check; encode the sites with a model first")
    return _verdict(len(table), latent_spreads(table))


def check_model(model, windows, *, max_windows: int = CHECK_WINDOWS, seed: int = 0) -> LatentCheck:
    """Check a trained model on (a random subset of ``max_windows`` of) its training windows.

    Parameters
    ----------
    model : InvariantVAE
    windows : (N, w, w) or (N, w)
        Normalised like the training windows.

    Returns
    -------
    LatentCheck with spreads, KL per latent and the reconstruction gain over the mean window.
    """
    from ..patches import windows_as_array
    from ..vae.latents import encode, kl_per_latent, reconstruct

    cfg = model.config
    x = windows_as_array(windows, cfg.window[-1])
    if len(x) > max_windows:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_windows, replace=False))]
    table = encode(model, x, batch_size=len(x))
    names = cfg.structural_names() + [f"z{i}" for i in range(cfg.latent)]
    spread = latent_spreads(table[names])
    kl = kl_per_latent(model, x, structural=True)
    recon = reconstruct(model, x, batch_size=256) if not cfg.n_classes else None
    gain = None
    if recon is not None:
        baseline = float(np.mean((x - x.mean(axis=0)) ** 2))
        error = float(np.mean((x - recon) ** 2))
        gain = 1.0 - error / baseline if baseline > 1e-12 * float(np.mean(x**2)) else 0.0  # all windows alike: 0
    return _verdict(len(x), spread, dict(zip(names, (float(v) for v in kl))), gain, model)


def check_after_training(model, windows) -> LatentCheck:
    """:func:`check_model` as every trainer calls it (CLI, pipeline, docks): never an error, since
    what was trained must still be saved; a check that cannot run says why in its warnings (and
    counts as informative, so the analysis still runs)."""
    try:
        return check_model(model, windows)
    except (ValueError, RuntimeError, ArithmeticError) as err:
        return LatentCheck(n_windows=len(windows), warnings=[f"the latent check could not run ({err})"])
