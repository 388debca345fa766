"""Shift-VAE β-schedule grid search ranked by latent-map smoothness (paper 004, Fig. 8).

For every pair (β_start, β_end) of the grid a shift-VAE is trained on random
windows of the image with the KL weight ramped linearly from β_start to
β_end (:class:`napari_rvae.vae.BetaSchedule`), starting from one shared
model whose decoder coordinate units were steepened at initialisation and
which had a shift warm-up (content latents disconnected, so the shift
latents learn the lattice phase first; the 2D recipe of :mod:`napari_rvae.vae.shiftvae`, which
``analyze --arch shift-vae`` uses too); its content latents are mapped
over the image (:func:`.smoothness.latent_maps`) and scored
(:func:`.smoothness.smoothness`, combined over latents with
:func:`.smoothness.combined_score`). The paper reports that large *initial*
β lets the shift "leak" into the content latents (periodic maps, low score)
while the final β matters little.

:class:`BetaSearch` is iterative and cancellable: :meth:`BetaSearch.run`
yields one result per grid point (the dock shows progress and the heat map
as it fills), :meth:`BetaSearch.request_stop` stops it before the next
epoch. The best model is kept (``best_model``) and, with ``out_dir``, saved
there (``best_model/``) via :func:`napari_rvae.vae.save_model`, with
``beta_search.json`` (every score).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .smoothness import combined_score, latent_maps, smoothness


def random_windows(image, window: int, n: int, seed: int = 0):
    """``n`` windows at random positions of one image, min–max normalised over the image.

    Returns :class:`napari_rvae.patches.Windows` (``normalisation`` holds ``lo, hi``).
    """
    from ..io.sites import make_sites
    from ..patches import cut_windows

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image: expected a 2D image, got shape {img.shape}")
    half = window // 2
    if img.shape[0] < window + 1 or img.shape[1] < window + 1:
        raise ValueError(f"window: {window} px does not fit in an image of {img.shape}")
    rng = np.random.default_rng(seed)
    y = rng.uniform(half, img.shape[0] - (window - half) - 0.5, int(n))
    x = rng.uniform(half, img.shape[1] - (window - half) - 0.5, int(n))
    finite = img[np.isfinite(img)]
    return cut_windows(img[None], make_sites(0, y, x, "grid"), window, normalisation="global",
                       lo=float(finite.min()), hi=float(finite.max()))


class BetaSearch:
    """Grid search over β-schedule start and end values.

    Parameters
    ----------
    image : (Y, X) array
        The image (e.g. the shift-lattice sample, frame 0).
    starts, ends : sequences of float
        β at the first and at the last ramp epoch (paper: 0.1 … 10 each).
    window : int
        Window width in pixels: a little more than one lattice period (16 px for
        the 12-px shift-lattice, measured; 24 px failed there with 20 + 20 epochs).
    n_windows : int
        Random training windows.
    epochs : int
        Training epochs per grid point; the ramp lasts ``ramp_epochs`` (default all).
    step : int
        Grid spacing (pixels) of the latent maps.
    latent : int
        Content latents (paper: 2).
    combine : {"max", "min"}
        How per-latent scores become one (see :func:`.smoothness.combined_score`).
    cutoff : float, optional
        Central-region radius in cycles per pixel (default ``1 / (2 · window)``).
    out_dir : path, optional
        Where the best model and ``beta_search.json`` are written.
    model_options, train_options : dict, optional
        Extra :class:`~napari_rvae.vae.VAEConfig` fields and
        :class:`~napari_rvae.vae.Trainer` arguments.
    seed : int
        Same seed for every grid point (the windows, the weights): only β differs.
    warmup_epochs : int
        Shift warm-up shared by every grid point (0 = off): the model is first
        trained with its content latents disconnected from the decoder, at
        constant β = ``warmup_beta``, so that the shift latents and the decoder
        learn the lattice and its phase before any content latent can; each
        grid point then continues from a copy of that model with its own β
        schedule over ``epochs``.
    warmup_beta : float
        β during the warm-up.
    attempts : int, optional
        Shared start models tried (seeds ``seed``, ``seed + 1``, …; default
        :data:`napari_rvae.vae.shiftvae.ATTEMPTS`): when no schedule of the grid gives smooth
        latent maps (best score below :data:`~napari_rvae.vae.shiftvae.GOOD_SMOOTHNESS`), the
        start model itself failed (its warm-up did not give the shift latents the lattice
        phase, and every schedule inherits that), so the grid runs again from a start model of
        the next seed; the grid with the best score is kept (``attempt_scores`` lists each).
        ``analyze --arch shift-vae`` rejects a non-smooth model the same way.
    decoder_slope : float
        Initial steepness (1/pixel) of the decoder's first-layer coordinate
        units: their weights and biases are scaled at initialisation to
        ``decoder_slope · (window − 1)/2`` times the default, so that the
        coordinate decoder can draw atoms a few pixels wide from the start
        (0 = the default initialisation, whose slopes are ≈ 0.5 per half
        window: the decoder then sits for many epochs at the mean window).
    """

    def __init__(self, image, starts=(0.1, 1.0, 10.0), ends=(0.1, 1.0, 10.0), *, window: int = 16,
                 n_windows: int = 3000, epochs: int = 20, ramp_epochs: int | None = None, step: int = 2,
                 latent: int = 2, combine: str = "max", cutoff: float | None = None,
                 out_dir: str | os.PathLike | None = None, model_options: dict | None = None,
                 train_options: dict | None = None, seed: int = 0, warmup_epochs: int = 20,
                 warmup_beta: float = 1.0, decoder_slope: float = 0.8, attempts: int | None = None):
        self.image = np.asarray(image, dtype=np.float32)
        if self.image.ndim == 3 and self.image.shape[0] == 1:
            self.image = self.image[0]
        if self.image.ndim != 2:
            raise ValueError(f"image: expected one 2D image, got shape {np.shape(image)}")
        self.starts = np.asarray(starts, dtype=np.float64).ravel()
        self.ends = np.asarray(ends, dtype=np.float64).ravel()
        if not len(self.starts) or not len(self.ends) or min(self.starts.min(), self.ends.min()) < 0:
            raise ValueError("starts, ends: give at least one β ≥ 0 each")
        if int(epochs) < 1 or int(n_windows) < 10 or int(latent) < 1:
            raise ValueError("epochs ≥ 1, n_windows ≥ 10 and latent ≥ 1 needed")
        if combine not in ("max", "min"):
            raise ValueError(f"combine: expected 'max' or 'min', got {combine!r}")
        if int(warmup_epochs) < 0 or not warmup_beta >= 0 or not decoder_slope >= 0:
            raise ValueError("warmup_epochs ≥ 0, warmup_beta ≥ 0 and decoder_slope ≥ 0 (1/pixel) needed")
        self.warmup_epochs, self.warmup_beta = int(warmup_epochs), float(warmup_beta)
        self.decoder_slope = float(decoder_slope)
        from ..vae.shiftvae import ATTEMPTS, GOOD_SMOOTHNESS

        self.attempts = ATTEMPTS if attempts is None else max(1, int(attempts))
        self.good = GOOD_SMOOTHNESS
        self.attempt_scores: list[float] = []  # the best score of each shared start model tried
        self.window, self.n_windows, self.epochs = int(window), int(n_windows), int(epochs)
        self.ramp_epochs = int(ramp_epochs or epochs)
        self.step, self.latent, self.combine, self.seed = int(step), int(latent), combine, int(seed)
        self.cutoff = cutoff if cutoff is not None else 1.0 / (2.0 * self.window)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.model_options = dict(model_options or {})
        self.train_options = dict(train_options or {})
        self.scores = np.full((len(self.starts), len(self.ends)), np.nan)
        self.latent_scores = np.full((len(self.starts), len(self.ends), self.latent), np.nan)
        self.maps: dict[tuple[int, int], dict] = {}
        self.best_model = None
        self.best: dict | None = None
        self._trainer = None
        self._stop = False
        self.status = "idle"

    # ------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop before the next epoch (the current grid point is abandoned)."""
        self._stop = True
        if self._trainer is not None:
            self._trainer.state.request_stop()

    def table(self) -> pd.DataFrame:
        """One row per grid point: ``beta_start, beta_end, score, score_z0 …``."""
        rows = []
        for i, bs in enumerate(self.starts):
            for j, be in enumerate(self.ends):
                row = {"beta_start": bs, "beta_end": be, "score": self.scores[i, j]}
                row.update({f"score_z{k}": self.latent_scores[i, j, k] for k in range(self.latent)})
                rows.append(row)
        return pd.DataFrame(rows)

    def ranking(self) -> pd.DataFrame:
        """The scored grid points, best first (highest smoothness score): :meth:`table`'s columns
        with ``rank`` (1 = best) in front; unscored points (diverged, not run) are left out."""
        table = self.table()
        table = table[np.isfinite(table["score"])].sort_values("score", ascending=False, kind="stable")
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return table.reset_index(drop=True)

    def _train_options(self) -> dict:
        train = {"lr": 3e-3, "batch_size": 32, "seed": self.seed}
        train.update(self.train_options)
        return train

    def _base_model(self, windows, seed: int):
        """The initial model shared by every grid point: built from ``seed``, decoder
        coordinate units steepened, shift warm-up done (``None`` if stopped); the 2D
        shift-VAE recipe of :mod:`napari_rvae.vae.shiftvae`."""
        from ..vae import BetaSchedule, Trainer, build_model
        from ..vae.shiftvae import content_disconnected, shift_vae_config, steepen_decoder

        cfg = shift_vae_config(self.window, self.latent, **self.model_options,
                               beta=BetaSchedule(kind="constant", start=self.warmup_beta, end=self.warmup_beta))
        model = build_model(cfg, seed=seed)
        steepen_decoder(model, self.decoder_slope)
        model.history = []
        if not self.warmup_epochs:
            return model
        with content_disconnected(model):
            self._trainer = Trainer(model, windows.windows, **self._train_options())
            try:
                for _ in self._trainer.run(self.warmup_epochs):
                    if self._stop:
                        break
                stopped = self._stop or self._trainer.state.status == "stopped"
                model.history = [dict(h, phase="warmup") for h in self._trainer.state.history]
            finally:
                self._trainer = None
        return None if stopped else model

    def _train_one(self, windows, beta_start, beta_end, base):
        import copy

        from ..vae import BetaSchedule, Trainer

        model = copy.deepcopy(base)
        model.config.beta = BetaSchedule(kind="linear", start=float(beta_start), end=float(beta_end),
                                         epochs=self.ramp_epochs)
        self._trainer = Trainer(model, windows.windows, **self._train_options())
        for _ in self._trainer.run(self.epochs):
            if self._stop:
                break
        model.normalisation = windows.normalisation
        model.history = list(base.history) + list(self._trainer.state.history)
        stopped = self._stop or self._trainer.state.status == "stopped"
        self._trainer = None
        return model, stopped

    def run(self) -> Iterator[dict]:
        """Train and score every grid point, yielding after each.

        Each yielded dict: ``i, j, beta_start, beta_end, score, latent_scores``
        (per latent), ``maps`` (name → (ny, nx)), ``done``, ``total``,
        ``best`` (the best point so far) and ``attempt`` (the shared start model, 0 first).
        """
        self._stop = False
        self.status = "running"
        windows = random_windows(self.image, self.window, self.n_windows, self.seed)
        kept = None
        for attempt in range(self.attempts):
            if attempt:  # no schedule gave smooth maps: the shared start model failed; try another
                kept = _better(kept, self._grid_state())
                self.scores[:], self.latent_scores[:] = np.nan, np.nan
                self.maps, self.best, self.best_model = {}, None, None
            finished = yield from self._run_grid(windows, attempt)
            if not finished:
                self.status = "stopped"
                return
            best = self.best["score"] if self.best else float("nan")
            self.attempt_scores.append(float(best))
            if best >= self.good:
                break
        if kept is not None:  # an earlier attempt's grid scored best: it is the result
            current = self._grid_state()
            if _better(kept, current) is kept:
                self._set_grid_state(kept)
        self._write_record()
        self.status = "finished"

    def _grid_state(self) -> dict:
        return {"scores": self.scores.copy(), "latent_scores": self.latent_scores.copy(), "maps": dict(self.maps),
                "best": self.best, "best_model": self.best_model}

    def _set_grid_state(self, state: dict) -> None:
        """Make an earlier attempt's grid the result (its best model saved again: later attempts wrote theirs)."""
        self.scores, self.latent_scores, self.maps = state["scores"], state["latent_scores"], state["maps"]
        self.best, self.best_model = state["best"], state["best_model"]
        if self.best_model is not None and self.out_dir is not None:
            from ..vae import save_model

            save_model(self.best_model, self.out_dir / "best_model",
                       training={"beta_search": {k: self.best[k] for k in ("beta_start", "beta_end", "score")}})

    def _run_grid(self, windows, attempt: int):
        """One pass over the grid from one shared start model (seed ``seed + attempt``); returns False
        when stopped."""
        from ..vae.trainer import TrainingDiverged

        total = self.scores.size
        base = None
        done = int(np.isfinite(self.scores).sum())
        for i, bs in enumerate(self.starts):
            for j, be in enumerate(self.ends):
                if np.isfinite(self.scores[i, j]):
                    continue  # already scored (a continued search)
                if base is None:
                    base = self._base_model(windows, self.seed + attempt)
                    if base is None:
                        return False
                try:
                    model, stopped = self._train_one(windows, bs, be, base)
                except TrainingDiverged as err:  # this β schedule is not usable: no score, go on with the grid
                    self._trainer = None
                    done += 1
                    yield {"i": i, "j": j, "beta_start": float(bs), "beta_end": float(be), "score": float("nan"),
                           "latent_scores": [], "maps": {}, "done": done, "total": total, "attempt": attempt,
                           "best": dict(self.best or {}), "diverged": " ".join(str(err).split())}
                    continue
                if stopped:
                    return False
                maps, _, _ = latent_maps(model, self.image, step=self.step)
                per = [smoothness(m, step=self.step, cutoff=self.cutoff) for m in maps.values()]
                score = combined_score(per, self.combine)
                self.latent_scores[i, j, : len(per)] = per
                self.scores[i, j] = score
                self.maps[(i, j)] = maps
                if np.isfinite(score) and (self.best is None or score > self.best["score"]):
                    self.best = {"beta_start": float(bs), "beta_end": float(be), "score": score, "i": i, "j": j,
                                 "attempt": attempt}
                    self.best_model = model
                    if self.out_dir is not None:
                        from ..vae import save_model

                        save_model(model, self.out_dir / "best_model",
                                   training={"beta_search": {"beta_start": float(bs), "beta_end": float(be),
                                                             "score": score}})
                done += 1
                self._write_record()
                yield {"i": i, "j": j, "beta_start": float(bs), "beta_end": float(be), "score": score,
                       "latent_scores": per, "maps": maps, "done": done, "total": total, "attempt": attempt,
                       "best": dict(self.best or {})}
        return True

    def fit(self) -> "BetaSearch":
        """Run the whole grid; returns ``self``."""
        for _ in self.run():
            pass
        return self

    def _write_record(self) -> None:
        if self.out_dir is None:
            return
        from ..io.files import write_json

        record = {"starts": self.starts.tolist(), "ends": self.ends.tolist(), "window": self.window,
                  "n_windows": self.n_windows, "epochs": self.epochs, "ramp_epochs": self.ramp_epochs,
                  "step": self.step, "latent": self.latent, "combine": self.combine, "cutoff": self.cutoff,
                  "seed": self.seed, "scores": [[None if not np.isfinite(v) else float(v) for v in row]
                                                for row in self.scores],
                  "latent_scores": np.where(np.isfinite(self.latent_scores), self.latent_scores, -1).tolist(),
                  "best": self.best, "attempt_scores": list(self.attempt_scores)}
        write_json(self.out_dir / "beta_search.json", record)


def _better(a: dict | None, b: dict) -> dict:
    """Of two grids (``BetaSearch._grid_state``), the one with the higher best score."""
    if a is None:
        return b
    score = lambda state: state["best"]["score"] if state["best"] else float("-inf")  # noqa: E731
    return b if score(b) > score(a) else a
