"""The whole pipeline in one reproducible run: detect → windows → (r)VAE → latents → analysis.

Used by the demo (in napari and headless) and usable from a notebook::

    from napari_rvae.pipeline import PipelineSettings, run_pipeline, write_outputs
    result = run_pipeline(movie, PipelineSettings(epochs=20))
    write_outputs(result, "out/")

:func:`iter_pipeline` is the same run as a generator (one item per stage and
per training epoch) so a GUI can run it in a background worker and show
progress; ``state.request_stop()`` on the yielded trainer state stops
training early (the model so far is still used).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd


WINDOW_SOURCES = ("auto", "map", "image")


#: shift-VAE on grid sites: at least this many training windows at random positions
SHIFT_TRAIN_WINDOWS = 4000


@dataclass
class PipelineSettings:
    """Every choice of a run (stored in ``run.json``). Pixels and radians throughout."""

    detect_method: str = "auto"  # detect.detect_atoms method: auto | model | peaks | threshold
    threshold: float | None = None
    refine: bool = True
    spacing: float | None = None  # nearest-neighbour atom spacing (None: estimated from the movie)
    window: int | None = None  # window size (pixels); None: two spacings (detect.lattice.scale_defaults)
    windows_from: str = "auto"  # auto | map | image: atom sites' windows from the atom probability map
    classes: int | None = None  # train on one class only (None = all)
    per_frame: int | None = None  # random sites per frame for training (None = all)
    normalisation: str = "global"
    arch: str = "rvae"
    latent: int = 2
    epochs: int = 30
    batch: int | None = None  # None: the architecture's default (vae.defaults.training_defaults)
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    pixel_fraction: float | None = None  # < 1: each step decodes a random subset of pixels (unbiased, faster)
    threads: int | None = None  # CPU threads for torch (default: all cores, or all but one beside a GUI)
    leave_core_for_gui: bool = False
    # at least this many optimiser steps: more epochs where the windows are few (0: exactly ``epochs``;
    # not for the shift-VAE, whose recipe fixes its epochs); see vae.defaults.epochs_for
    min_steps: int = 0
    # shift-VAE only: epochs of shift warm-up before ``epochs`` (None: vae.shiftvae.WARMUP_EPOCHS)
    warmup_epochs: int | None = None

    def __post_init__(self):
        from .vae.defaults import training_defaults

        for name, value in training_defaults(self.arch).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.warmup_epochs is None:
            self.warmup_epochs = 20 if self.arch == "shift-vae" else 0  # vae.shiftvae.WARMUP_EPOCHS (no torch import)
        if self.warmup_epochs < 0 or (self.warmup_epochs and self.arch != "shift-vae"):
            raise ValueError(f"warmup_epochs: a number ≥ 0 of shift warm-up epochs, for arch shift-vae only; "
                             f"got {self.warmup_epochs} with arch {self.arch}")
        if self.window is not None and self.window < 4:
            raise ValueError(f"window must be at least 4 pixels, got {self.window}")
        if self.windows_from not in WINDOW_SOURCES:
            raise ValueError(f"windows_from: expected one of {', '.join(WINDOW_SOURCES)}, got {self.windows_from!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.min_steps < 0:
            raise ValueError(f"min_steps must be ≥ 0, got {self.min_steps}")


@dataclass
class PipelineResult:
    """What a run produced: the sites table with latents, the model and how long each stage took."""

    sites: pd.DataFrame
    model: object
    settings: PipelineSettings
    window_report: str = ""
    history: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    lattice: dict | None = None  # the lattice detection used (detect.lattice.Lattice.to_dict())
    probability: np.ndarray | None = None  # the atom probability (T, Y, X) the windows were cut from
    check: object | None = None  # analysis.collapse.LatentCheck: are the latents informative?


def _check_movie(movie) -> np.ndarray:
    from .detect._checks import as_movie

    movie = as_movie(movie).astype(np.float32, copy=False)
    if min(movie.shape[1:]) < 8:
        raise ValueError(f"movie: frames of shape {movie.shape[1:]} are too small; they need at least 8 × 8 pixels")
    from .io.validate import check_finite

    check_finite(movie, "movie")  # block by block: no movie-sized mask
    return movie


def iter_pipeline(movie, settings: PipelineSettings | None = None, sites: pd.DataFrame | None = None) -> Iterator[tuple]:
    """Run the pipeline step by step.

    Parameters
    ----------
    movie : array (T, Y, X) or (Y, X)
        Raw frames (bright atoms).
    settings : PipelineSettings, optional
    sites : DataFrame, optional
        Skip detection and use these sites (``frame, y, x`` in pixels).

    Yields
    ------
    ("stage", name, message) at the start / end of each stage, ("trainer", trainer)
    once the model is built, and ("epoch", stats) per training epoch.

    Returns
    -------
    PipelineResult (as the generator's return value; :func:`run_pipeline` collects it)
    """
    from .detect import detect_atoms
    from .detect.find import AUTO_METHOD, atom_map, movie_lattice
    from .detect.lattice import as_detected, scale_defaults
    from .patches import cut_windows, random_sites_like
    from .vae import VAEConfig, build_model, encode_sites

    settings = settings or PipelineSettings()
    movie = _check_movie(movie)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    lattice, maps = None, None
    atom_sites = sites is None or "kind" not in sites or bool((sites["kind"] == "atom").all())
    wants_map = settings.windows_from == "map" or (settings.windows_from == "auto" and atom_sites)
    shift_2d = settings.arch == "shift-vae"  # windows are always 2D here
    if (atom_sites and (sites is None or settings.window is None or wants_map)) or (shift_2d and settings.window is None):
        yield ("stage", "lattice", "estimating the atom spacing")
        lattice = movie_lattice(movie, spacing=settings.spacing)
        yield ("stage", "lattice", lattice.summary())
    if sites is None:
        uses_model = (AUTO_METHOD if settings.detect_method == "auto" else settings.detect_method) == "model"
        yield ("stage", "detect", f"finding atoms in {movie.shape[0]} frame(s)")
        if (uses_model or wants_map) and (lattice.found or lattice.candidate):
            maps = atom_map(movie, lattice=lattice)
        sites = detect_atoms(movie, method=settings.detect_method, threshold=settings.threshold,
                             refine=settings.refine, lattice=lattice, probabilities=maps if uses_model else None)
        timings["detect_s"] = time.perf_counter() - start
        lattice = as_detected(sites, lattice)  # e.g. a honeycomb the autocorrelation saw as hexagonal
        yield ("stage", "detect", f"{len(sites)} sites" + "".join(f"; {f}" for f in
                                                               sites.attrs.get("detection", {}).get("findings", [])))
    if len(sites) == 0:
        raise ValueError("no sites were found; lower the detection threshold or check the movie")
    window = settings.window
    if window is None and shift_2d and lattice is not None and lattice.found:
        # a little more than one lattice period: two atom spacings, rounded down to even (16 px for the
        # shift-lattice's 8.5 px, where 18 and 24 px leaked the lattice phase into the content latents)
        window = int(np.clip(2 * np.floor(lattice.spacing), 12, 64))
    if window is None:
        # two atom spacings for atoms (five for a skip-rVAE: the chemistry map's windows, paper 000);
        # 24 px (paper 002's middle size) for walls and grids
        key = "chemistry_window" if settings.arch == "skip-rvae" else "window"
        window = scale_defaults(lattice.spacing)[key] if lattice is not None and lattice.found else 24
    source, images = "image", movie
    if wants_map and atom_sites:
        if maps is None:
            maps = atom_map(movie, lattice=lattice)
        source, images = "map", atom_probability(maps)

    t0 = time.perf_counter()
    train_sites = sites
    if shift_2d and "kind" in sites and bool((sites["kind"] == "grid").all()):
        # the shift-VAE learns from windows at random positions (every lattice phase), encodes the grid
        train_sites = random_sites_like(sites, max(len(sites), SHIFT_TRAIN_WINDOWS), seed=settings.seed)
    cut = cut_windows(images, train_sites, window, classes=settings.classes, per_frame=settings.per_frame,
                      seed=settings.seed, normalisation=settings.normalisation)
    cut.normalisation["source"] = source
    timings["windows_s"] = time.perf_counter() - t0
    yield ("stage", "windows", f"{cut.report.summary()} ({window} px, from the "
                               f"{'atom probability map' if source == 'map' else 'image'})")
    if len(cut) < 2:
        raise ValueError(f"only {len(cut)} window(s) could be cut ({cut.report.summary()}); use a smaller window")

    t0 = time.perf_counter()
    train_options = dict(batch_size=settings.batch, lr=settings.lr, seed=settings.seed, device=settings.device,
                         threads=settings.threads, pixel_fraction=settings.pixel_fraction,
                         leave_core_for_gui=settings.leave_core_for_gui)
    if shift_2d:  # paper 004's recipe: translation prior 1, steep coordinate units, shift warm-up, small β first
        from .vae.shiftvae import shift_vae_attempts, shift_vae_config, steepen_decoder

        config = shift_vae_config(window, settings.latent, settings.epochs)

        def build(attempt):
            candidate = build_model(config, seed=settings.seed + attempt)
            steepen_decoder(candidate)
            candidate.normalisation = cut.normalisation
            return candidate

        score = None
        if train_sites is not sites:  # grid sites: a run whose latent maps are not smooth is rejected
            def score(candidate):
                return grid_smoothness(candidate, images, sites)
        model = None
        steps = shift_vae_attempts(build, cut.windows, settings.epochs, score=score,
                                   warmup_epochs=settings.warmup_epochs, **train_options)
    else:
        from .vae.defaults import epochs_for, model_defaults

        if settings.min_steps:  # few windows (one real image): more epochs, so the model gets enough steps
            settings = replace(settings, epochs=epochs_for(len(cut), settings.batch, settings.epochs,
                                                                       settings.min_steps))
        config = VAEConfig(arch=settings.arch, window=(window, window), latent=settings.latent,
                           **model_defaults(settings.arch, cut.windows, cut.normalisation))
        model = build_model(config, seed=settings.seed)
        model.normalisation = cut.normalisation
        steps = _plain_epochs(model, cut.windows, settings.epochs, train_options)
    yield ("plan", {"epochs": settings.epochs, "warmup_epochs": settings.warmup_epochs})
    yield ("stage", "train", f"{config.arch}, {len(cut)} windows of {window} px, {settings.epochs} epochs"
                             + (f" after {settings.warmup_epochs} shift warm-up epochs" if settings.warmup_epochs else ""))
    trainer = None
    try:
        while True:
            try:
                item = next(steps)
            except StopIteration as finished:
                model = finished.value if shift_2d else model
                break
            if item[0] == "trainer":
                trainer = item[1]
            if item[0] == "attempt":
                yield ("stage", "train", f"model {item[1] + 1}: latent-map smoothness {item[2]:.3f}")
            else:
                yield item
    except ValueError as err:  # TrainingDiverged: the model is back at its last finite epoch
        err.sites = sites  # what was computed, for the caller to keep (with its history)
        err.model = model if model is not None else trainer.model
        raise
    timings["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    table, report = encode_sites(model, images, sites)
    timings["encode_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    yield ("stage", "encode", report.summary())
    from .analysis.collapse import check_after_training

    check = check_after_training(model, cut.windows)
    yield ("stage", "check", check.line())
    record = sites.attrs.get("detection", {}).get("lattice") or (lattice.to_dict() if lattice is not None else None)
    return PipelineResult(sites=table, model=model, settings=settings, window_report=cut.report.summary(),
                          history=list(model.history), timings=timings, lattice=record,
                          probability=images if source == "map" else None, check=check)



def grid_smoothness(model, images, sites: pd.DataFrame) -> float:
    """FFT smoothness (:func:`~napari_rvae.analysis.smoothness.smoothness`, the greater over the
    content latents) of a model's latent maps on grid sites, first frame."""
    from .analysis.smoothness import combined_score, smoothness
    from .vae import encode_sites

    first = sites[sites["frame"] == sites["frame"].min()]
    ys, xs = np.unique(first["y"]), np.unique(first["x"])
    if len(ys) < 4 or len(xs) < 4 or len(first) != len(ys) * len(xs):
        return float("nan")
    step = float(min(np.diff(ys).min(), np.diff(xs).min()))
    table, _ = encode_sites(model, images, first.sort_values(["y", "x"]))
    return combined_score(smoothness(table[f"z{k}"].to_numpy().reshape(len(ys), len(xs)), step=step,
                                     window=model.config.window[0]) for k in range(model.config.latent))


def _plain_epochs(model, windows, epochs: int, train_options: dict):
    """Train ``model`` with one :class:`~napari_rvae.vae.Trainer`: yields ``("trainer", t)``, then
    ``("epoch", stats)`` per epoch; sets ``model.history``."""
    from .vae import Trainer

    trainer = Trainer(model, windows, **train_options)
    yield ("trainer", trainer)
    try:
        for stats in trainer.run(epochs):
            yield ("epoch", stats)
    finally:
        model.history = list(trainer.state.history)


def atom_probability(maps: np.ndarray) -> np.ndarray:
    """The atom probability ``(T, Y, X)`` (1 − background) of segmenter maps ``(T, C, Y, X)``: what
    the papers cut atom windows from."""
    return (1.0 - np.asarray(maps)[:, 0]).astype(np.float32)


def run_pipeline(movie, settings: PipelineSettings | None = None, sites: pd.DataFrame | None = None,
                 log=None) -> PipelineResult:
    """Run :func:`iter_pipeline` to the end; ``log`` (e.g. ``print``) receives one line per stage."""
    steps = iter_pipeline(movie, settings, sites)
    while True:
        try:
            item = next(steps)
        except StopIteration as done:
            return done.value
        if log is not None and item[0] == "stage":
            log(f"{item[1]}: {item[2]}")


#: ``napari-rvae demo``'s training: 12 epochs (≈ 530 steps on the sample's 1 393 windows) already separate
#: the sublattices; the analyze default (at least 1 200 steps, for a single real image) would more than
#: double the demo's wait
DEMO_EPOCHS = 12


def demo_settings(**overrides) -> PipelineSettings:
    """Settings of ``napari-rvae demo``: the graphene sample, rVAE with windows of two atom spacings
    (24 px on the sample, as paper 001) cut from the atom probability map,
    a short training with a quarter of the pixels per step so the whole run stays under a minute.

    Each window is scaled to [0, 1] on its own and Adam runs at 3e-3 with batches of 32: on the
    graphene sample this separates the two sublattices by angle (≈ 61° apart, 98 % of carbon
    sites on the right side after 12 epochs), whereas one global scaling with lr 1e-3 and batches
    of 100 collapses every latent to a constant in as many epochs.

    With ``arch="shift-vae"`` the windows are scaled once for the whole movie (an order parameter
    changes the windows' contrast or positions; per-window scaling would hide contrast changes), and
    the pipeline uses the 2D shift-VAE recipe (:mod:`napari_rvae.vae.shiftvae`): 20 shift warm-up
    epochs before ``epochs``; on grid sites it trains on windows at random positions and encodes the grid.
    """
    from .vae.defaults import MIN_STEPS

    # at least 12 epochs and MIN_STEPS optimiser steps (a single image has too few windows for 12 epochs
    # to be enough), unless the epochs are given
    values = dict(window=None, arch="rvae", latent=2, epochs=12, batch=32, lr=3e-3, pixel_fraction=0.25,
                  normalisation="window", seed=0, min_steps=0 if "epochs" in overrides else MIN_STEPS)
    if overrides.get("arch") == "shift-vae":
        # the order parameter of a lattice is a change of contrast or position between windows:
        # one scaling for the whole movie keeps it (per-window scaling would remove contrast changes);
        # every pixel in each step and 20 epochs after the warm-up (vae.shiftvae; measured in docs/analysis-2.md)
        values.update(normalisation="global", pixel_fraction=1.0, epochs=20, min_steps=0)
    if overrides.get("arch") == "skip-rvae":
        # wide chemistry-map windows: many small steps on a tenth of the pixels (vae.defaults.TRAINING)
        from .vae.defaults import training_defaults

        fit = training_defaults("skip-rvae")
        values.update(batch=fit["batch"], lr=fit["lr"], pixel_fraction=fit["pixel_fraction"], epochs=20)
    values.update(overrides)
    return PipelineSettings(**values)


def write_outputs(
    result: PipelineResult,
    folder: str | os.PathLike,
    *,
    movie=None,
    movie_path: str | os.PathLike | None = None,
    bias: np.ndarray | None = None,
    n_clusters: int = 5,
    extra: dict | None = None,
) -> dict:
    """Write the run as a project folder that reopens in napari.

    ``sites.csv`` (latents and the ``cluster`` column), ``model/``,
    ``figures/*.png`` (the latent analysis), ``results.npz`` (densities, NMF
    loadings, cluster fractions …), ``run.json`` and ``project.json`` (the
    index; open it, or the folder, in napari). ``movie_path`` is referenced,
    not copied. ``bias`` (one value per frame) adds the loadings-vs-bias loops.

    The folder is replaced as a whole: everything is written beside it and swapped in at
    the end, so a re-run leaves no figure of the previous run behind and a crash or a full
    disk leaves the previous project or the new one (:mod:`napari_rvae.io.folders`).

    Returns a dict name → path of what was written.
    """
    from .io.folders import replaced_folder

    final = Path(folder)
    with replaced_folder(final, markers=("project.json",)) as stage:
        written = _write_project(result, stage, final, movie=movie, movie_path=movie_path, bias=bias,
                                 n_clusters=n_clusters, extra=extra)
    moved = {}
    for name, path in written.items():
        try:
            moved[name] = final / Path(path).relative_to(stage)
        except ValueError:
            moved[name] = Path(path)
    return moved


def _write_project(result: PipelineResult, folder: Path, final: Path, *, movie, movie_path, bias, n_clusters,
                   extra) -> dict:
    from .analysis import analyse_latents, wrap_angle
    from .analysis.project import write_project_files
    from .analysis.plots import plot_image, plot_scatter
    from .detect.lattice import Lattice
    from .vae import manifold, save_model

    figures = folder / "figures"
    written = {"model": Path(save_model(result.model, folder / "model"))}
    sites = result.sites.copy()
    encoded = sites.dropna(subset=[c for c in ("z0",) if c in sites])
    if bias is not None:  # one value per movie frame → the frames that have encoded sites, in order
        bias = np.asarray(bias, dtype=np.float64)[np.unique(encoded["frame"].to_numpy()).astype(int)]
    # graphene's sites have 3-fold neighbourhoods: orientations 120° apart are the same
    lattice = Lattice.from_dict(result.lattice)
    symmetry = lattice.site_symmetry if lattice is not None and set(encoded.get("kind", ["atom"])) <= {"atom"} else 1
    analysis = analyse_latents(encoded, figures, seed=result.settings.seed, bias=bias, n_clusters=n_clusters,
                               angle_symmetry=symmetry, check=result.check)
    if "cluster" in analysis.sites:
        sites["cluster"] = -1
        sites.loc[analysis.sites.index, "cluster"] = analysis.sites["cluster"].to_numpy()
    written.update({f"figure_{k}": Path(v) for k, v in (analysis.figures or {}).items()})
    has_angle = "angle" in encoded
    # an n-fold motif's angle means something modulo 360°/n: coloured so (graphene: the sublattice checkerboard)
    colour = wrap_angle(symmetry * encoded["angle"]) if has_angle else encoded["frame"]
    cmap = "cyclic" if has_angle else "viridis"
    what = "angle" if has_angle else "frame"
    shown = f"angle modulo {360 // symmetry}°" if has_angle and symmetry > 1 else what
    first = (encoded["frame"] == encoded["frame"].min()).to_numpy() if len(encoded) else np.zeros(0, bool)
    draw = analysis._step  # a figure that cannot be drawn is listed in the report; the others are written
    if first.any():
        made = draw("figure sites", lambda: plot_scatter(
            figures / f"sites_by_{what}_first_frame.png", encoded["x"][first], encoded["y"][first],
            np.asarray(colour)[first], cmap=cmap, point=3, invert_y=True,
            title=f"first frame: sites coloured by {shown}", xlabel="x (px)", ylabel="y (px)"))
        if made is not None:
            written["figure_sites"] = made
    if {"z0", "z1"} <= set(encoded.columns):
        made = draw("figure latent plane", lambda: plot_scatter(
            figures / f"latent_plane_by_{what}.png", encoded["z0"], encoded["z1"], colour, cmap=cmap,
            title=f"latent plane coloured by {shown}", xlabel="z0", ylabel="z1"))
        if made is not None:
            written["figure_latent_plane"] = made
        made = draw("figure manifold", lambda: plot_image(
            figures / "manifold.png", manifold(result.model, d=10)[1], cmap="gray",
            title="decoded latent manifold (z0 →, z1 ↑)"))
        if made is not None:
            written["figure_manifold"] = made
    record = {"settings": asdict(result.settings), "lattice": result.lattice, "timings_s": result.timings,
              "window_report": result.window_report,
              "n_sites": int(len(sites)), "n_encoded": int(len(encoded)),
              "analysis": analysis.summary(),
              "final_losses": result.history[-1] if result.history else None, **(extra or {})}
    movie_info = None
    if movie is not None:
        movie_info = {"shape": [int(s) for s in np.shape(movie)]}
    write_project_files(
        folder, final=final, sites=sites, movie_path=movie_path, movie_info=movie_info, results=analysis.arrays(),
        models={"model": folder / "model"},
        figures={Path(p).stem: p for k, p in written.items() if k.startswith("figure_")},
        record=json.loads(json.dumps(record, default=str)),
    )
    written.update({"sites": folder / "sites.csv", "run": folder / "run.json", "project": folder / "project.json"})
    if (folder / "results.npz").is_file():  # absent when no analysis produced numbers (uninformative latents)
        written["results"] = folder / "results.npz"
    return written
