"""The VAE subcommands of ``napari-rvae``: ``train``, ``encode``, ``decode``, ``bench``.

Each is an ``add_*(parser)`` / ``run_*(args)`` pair listed in ``cli.COMMANDS``.
torch is imported only when a command runs, so ``napari-rvae --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def _widths(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return values


def _radii(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a radius or two comma-separated radii, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected radii of at least 1 pixel, got {text!r}")
    return values


def read_movie_array(path: Path) -> np.ndarray:
    """A movie file (any format ``io.movie`` reads, first channel) as a ``(T, Y, X)`` float32 array."""
    from ..io.movie import read_movie

    return np.asarray(read_movie(path)[0].data, dtype=np.float32)


def load_windows_npy(path: Path) -> np.ndarray:
    """An ``(N, w, w)`` (or ``(N, w)``) ``.npy`` of windows as float32; one-line errors for an
    empty, truncated, pickled or hostile file."""
    from ..io.limits import check_npy

    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); give an (N, w, w) .npy of windows")
    check_npy(path)
    try:
        windows = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a plain numeric .npy array ({' '.join(str(err).split())[:200]})") from None
    if windows.dtype.kind not in "uif":
        raise ValueError(f"{path}: windows must be numbers, got dtype {windows.dtype}")
    windows = windows.astype(np.float32, copy=False)
    if windows.ndim not in (2, 3) or len(windows) == 0 or windows.size == 0:
        raise ValueError(f"{path}: expected windows of shape (N, w, w) or (N, w), got {windows.shape}")
    if not np.isfinite(windows).all():
        raise ValueError(f"{path}: windows contain NaN or infinite values")
    return windows


def _load_windows_or_movie(path: Path, sites_path, window, options, bond_symmetry: int = 3):
    """Return ``(windows, sites table or None, cut report or None, normalisation dict)``."""
    from ..io.sites import read_sites
    from ..patches import BOND_ANGLE, cut_windows, normalise, with_orientation

    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if sites_path is None:
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{path}: give an (N, w, w) .npy of windows, or a movie with --sites sites.csv")
        windows = load_windows_npy(path)
        windows, norm = normalise(windows, options.get("normalisation", "none"), options.get("lo"), options.get("hi"))
        return windows, None, None, norm
    if window is None:
        raise ValueError("--window is needed to cut windows from a movie")
    movie = read_movie_array(path)
    recipe = {"orientation": options.get("orientation"), "bond_symmetry": bond_symmetry}
    sites = with_orientation(read_sites(sites_path), recipe)
    cut = cut_windows(movie, sites, window, **options)
    if len(cut) == 0:
        raise ValueError(f"no windows could be cut: {cut.report.summary()}")
    if options.get("orientation") == BOND_ANGLE:
        cut.normalisation["bond_symmetry"] = int(bond_symmetry)
    return cut.windows, sites, cut, cut.normalisation


# --------------------------------------------------------------------- train
#: defaults of the options that define a model; left unset on the command line so that
#: ``--resume`` can tell a flag the user gave (refused when it differs) from a default
ARCH_DEFAULTS = {"arch": "rvae", "latent": 2, "window": None, "encoder": "mlp", "encoder_widths": (128, 128),
                 "decoder_widths": (128, 128, 128), "likelihood": "gaussian", "noise_sigma": 0.1,
                 "angle_encoding": "circular", "no_translation": False, "rotation_prior": 0.1,
                 "translation_prior": 0.1, "beta": 1.0, "beta_end": None, "beta_schedule": "constant",
                 "beta_epochs": 10, "capacity": 0.0}
RECIPE_DEFAULTS = {"normalisation": "global", "centring": "pixel", "orientation": None, "mask": None,
                   "bond_symmetry": 3, "round_columns": False}
TRAINING_DEFAULTS = {"lr": 1e-3, "batch": 100, "seed": 0, "test_fraction": 0.15, "pixel_fraction": 1.0}


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="an (N, w, w) .npy of windows, or a movie (with --sites)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="model folder to write (model.safetensors + model.json + training.safetensors); an existing "
                        "model is refused unless --resume (continue it) or --overwrite (replace it)")
    p.add_argument("--sites", type=Path, help="sites table (CSV) whose windows are cut from the movie")
    p.add_argument("--arch", choices=["vae", "rvae", "skip-rvae", "shift-vae"], help="model (default rvae)")
    p.add_argument("--latent", type=int, help="content latents (default 2)")
    p.add_argument("--window", type=int, help="window width in pixels (with a movie)")
    p.add_argument("--classes", type=int, nargs="+", help="only sites of these classes")
    p.add_argument("--per-frame", type=int, help="random subset of at most this many sites per frame")
    p.add_argument("--normalisation", choices=["none", "global", "window"], help="window scaling (default global)")
    p.add_argument("--centring", choices=["pixel", "subpixel"],
                   help="pixel (default): cut around the rounded site (papers' rule); subpixel: resample so the site "
                        "is the window's exact centre (use for physical rotation angles)")
    p.add_argument("--orientation", metavar="COLUMN",
                   help="turn each window by the angle (radians) in this sites-table column, so sites of "
                        "different lattice orientations look alike; 'bond_angle' is computed from the atom "
                        "graph when the table lacks it (see --bond-symmetry)")
    p.add_argument("--mask", type=_radii, metavar="R[,R2]",
                   help="circular mask: keep the window within R px of its centre, taper to 0 at R2 px "
                        "(default: the half width); kept with the model and repeated by encode")
    p.add_argument("--bond-symmetry", type=int,
                   help="order of the bond star for --orientation bond_angle (default 3 graphene, 4 square, 6 hexagonal)")
    p.add_argument("--round-columns", action="store_true", default=None,
                   help="make elliptical columns (probe astigmatism) round before cutting: measure them on the "
                        "movie, blur along their short axis; kept with the model and repeated by encode")
    p.add_argument("--epochs", type=int, default=20, help="epochs to train (default 20; with --resume: more epochs)")
    p.add_argument("--batch", type=int, help="windows per step (default 100)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3; --resume keeps the stored one)")
    p.add_argument("--encoder", choices=["mlp", "conv"], help="encoder (default mlp)")
    p.add_argument("--encoder-widths", type=_widths, help="e.g. 128,128 (default)")
    p.add_argument("--decoder-widths", type=_widths, help="e.g. 128,128,128 (default)")
    p.add_argument("--likelihood", choices=["gaussian", "bernoulli"], help="default gaussian")
    p.add_argument("--noise-sigma", type=float,
                   help="σ of the Gaussian likelihood in intensity units (default 0.1 for windows in [0, 1]; "
                        "1 = unit variance)")
    p.add_argument("--angle-encoding", choices=["circular", "linear"],
                   help="angle mean as atan2 of two encoder outputs (circular, default) or one output (linear)")
    p.add_argument("--no-translation", action="store_true", default=None,
                   help="spatial models without the dx, dy latents (rotation-only rVAE)")
    p.add_argument("--rotation-prior", type=float, help="σ of the angle prior, radians (default 0.1)")
    p.add_argument("--translation-prior", type=float, help="shift scale, half-window units (default 0.1)")
    p.add_argument("--beta", type=float, help="KL weight (start of the schedule; default 1)")
    p.add_argument("--beta-end", type=float, help="KL weight at the end of a linear/cyclical schedule")
    p.add_argument("--beta-schedule", choices=["constant", "linear", "cyclical"], help="default constant")
    p.add_argument("--beta-epochs", type=int, help="epochs of one ramp (default 10)")
    p.add_argument("--capacity", type=float, help="final KL capacity (nats) for capacity annealing (default 0 = off)")
    p.add_argument("--test-fraction", type=float, help="share of windows held out for the test loss (default 0.15)")
    p.add_argument("--pixel-fraction", type=float,
                   help="evaluate the decoder at this random share of pixels per step (faster; default 1 = all)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--resume", action="store_true",
                   help="continue training the model in -o (its architecture, window recipe and optimizer state); "
                        "architecture options that differ from the model are refused")


def _given(args: argparse.Namespace, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def check_train_options(args: argparse.Namespace) -> None:
    """Refuse meaningless hyper-parameters before anything is read or trained."""
    from ..io.limits import bounded

    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs} (nothing would be trained or saved)")
    for name, low in (("batch", 1), ("latent", 0), ("beta_epochs", 1), ("threads", 1), ("per_frame", 1),
                      ("window", 4), ("bond_symmetry", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    from .config import MAX_LATENT, MAX_WINDOW

    for name, high in (("window", MAX_WINDOW), ("latent", MAX_LATENT), ("bond_symmetry", 12)):
        value = getattr(args, name, None)
        if value is not None and value > high:
            raise ValueError(f"--{name.replace('_', '-')} must be at most {high}, got {value}")
    positive = {"lr": 1e30, "noise_sigma": 1e6, "rotation_prior": 100.0, "translation_prior": 100.0}
    for name, high in positive.items():
        if getattr(args, name, None) is not None:
            bounded(getattr(args, name), f"--{name.replace('_', '-')}", 0.0, high, low_open=True)
    for name in ("beta", "beta_end", "capacity"):
        if getattr(args, name, None) is not None:
            bounded(getattr(args, name), f"--{name.replace('_', '-')}", 0.0, 1e6)
    if args.test_fraction is not None:
        bounded(args.test_fraction, "--test-fraction", 0.0, 0.95)
    if args.pixel_fraction is not None:
        bounded(args.pixel_fraction, "--pixel-fraction", 0.0, 1.0, low_open=True)


def _resume_conflicts(args: argparse.Namespace, model) -> list[str]:
    """Flags given on the command line that differ from the model being resumed."""
    from ..patches import recipe_options

    cfg = model.config
    stored = {"arch": cfg.arch, "latent": cfg.latent, "window": cfg.window[-1], "encoder": cfg.encoder,
              "encoder_widths": tuple(cfg.encoder_widths), "decoder_widths": tuple(cfg.decoder_widths),
              "likelihood": cfg.likelihood, "noise_sigma": cfg.noise_sigma, "angle_encoding": cfg.angle_encoding,
              "no_translation": not cfg.translation, "rotation_prior": cfg.rotation_prior,
              "translation_prior": cfg.translation_prior, "beta": cfg.beta.start, "beta_end": cfg.beta.end,
              "beta_schedule": cfg.beta.kind, "beta_epochs": cfg.beta.epochs, "capacity": cfg.beta.capacity_end}
    recipe = recipe_options(model.normalisation)
    norm = model.normalisation or {}
    stored.update(normalisation=recipe["normalisation"], centring=recipe["centring"],
                  orientation=recipe.get("orientation"), mask=tuple(recipe["mask"]) if "mask" in recipe else None,
                  round_columns=bool(recipe.get("round_columns")), bond_symmetry=int(norm.get("bond_symmetry", 3)))
    conflicts = []
    for name, value in _given(args, list(ARCH_DEFAULTS) + list(RECIPE_DEFAULTS)).items():
        have = stored[name]
        same = (tuple(value) == tuple(have)) if isinstance(value, (tuple, list)) and have is not None else value == have
        if name == "round_columns":
            same = bool(value) == bool(have) or (bool(value) and isinstance(have, dict))
        if not same:
            shown = ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else value
            had = ",".join(str(v) for v in have) if isinstance(have, (tuple, list)) else have
            conflicts.append(f"--{name.replace('_', '-')} {shown} (the model has {had})")
    return conflicts


def run_train(args: argparse.Namespace) -> int:
    from .config import BetaSchedule, VAEConfig
    from ..patches import recipe_options
    from .files import load_checkpoint, load_model, save_model, train_state
    from .models import build_model
    from .trainer import Trainer, TrainingDiverged

    check_train_options(args)
    given = _given(args, list(ARCH_DEFAULTS) + list(RECIPE_DEFAULTS) + list(TRAINING_DEFAULTS))
    model = state = checkpoint = None
    stored_training: dict = {}
    if args.resume:
        model = load_model(args.output)
        conflicts = _resume_conflicts(args, model)
        if conflicts:
            raise ValueError(f"--resume continues {args.output} as it was built; {'; '.join(conflicts)}: drop these "
                             "options, or train a new model into another folder")
        state = train_state(model)
        checkpoint = load_checkpoint(args.output, model)
        stored_training = dict(getattr(model, "training_settings", {}) or {})
        options = recipe_options(model.normalisation)
        symmetry = int((model.normalisation or {}).get("bond_symmetry", 3))
    else:
        recipe = {**RECIPE_DEFAULTS, **{k: v for k, v in given.items() if k in RECIPE_DEFAULTS}}
        options = {"normalisation": recipe["normalisation"], "centring": recipe["centring"],
                   "round_columns": bool(recipe["round_columns"])}
        if recipe["round_columns"] and args.sites is None:
            raise ValueError("--round-columns works on a movie: give the movie with --sites (not a windows .npy)")
        for name in ("mask", "orientation"):
            if recipe[name] is not None:
                if args.sites is None:
                    raise ValueError(f"--{name} needs a movie with --sites (windows given as .npy are already cut)")
                options[name] = recipe[name]
        symmetry = recipe["bond_symmetry"]
    train = {k: given.get(k, stored_training.get(k, v)) for k, v in TRAINING_DEFAULTS.items()}
    if args.sites is not None:
        options.update(classes=args.classes, per_frame=args.per_frame, seed=train["seed"])
    window = args.window or (model.config.window[0] if model is not None else None)
    windows, _, cut, norm = _load_windows_or_movie(args.input, args.sites, window, options, symmetry)
    if cut is not None:
        print(f"windows: {cut.report.summary()}")
    if model is None:
        a = {**ARCH_DEFAULTS, **{k: v for k, v in given.items() if k in ARCH_DEFAULTS}}
        beta = BetaSchedule(kind=a["beta_schedule"], start=a["beta"], end=a["beta"] if a["beta_end"] is None else a["beta_end"],
                            epochs=a["beta_epochs"], capacity_end=a["capacity"], capacity_epochs=a["beta_epochs"])
        config = VAEConfig(arch=a["arch"], window=windows.shape[1:], latent=a["latent"], encoder=a["encoder"],
                           encoder_widths=a["encoder_widths"], decoder_widths=a["decoder_widths"],
                           likelihood=a["likelihood"], rotation_prior=a["rotation_prior"],
                           translation_prior=a["translation_prior"], noise_sigma=a["noise_sigma"],
                           angle_encoding=a["angle_encoding"], translation=not a["no_translation"], beta=beta)
        model = build_model(config, seed=train["seed"])
    elif tuple(windows.shape[1:]) != tuple(model.config.window):
        raise ValueError(f"--resume: the model takes windows of {model.config.window} px, the input gives "
                         f"{windows.shape[1:]}")
    model.normalisation = norm
    trainer = Trainer(model, windows, test_fraction=train["test_fraction"], batch_size=train["batch"], lr=train["lr"],
                      seed=train["seed"], device=args.device, threads=args.threads,
                      pixel_fraction=train["pixel_fraction"], state=state, checkpoint=checkpoint)
    settings = {**train, "input": str(args.input), "windows": int(len(windows))}
    resumed = ""
    if args.resume:
        resumed = (f"resuming at epoch {state.epoch}" + (" with its optimizer state" if checkpoint else
                   " (no optimizer state stored with this model: Adam starts afresh)") + "; ")
    print(f"{resumed}training {model.config.arch} on {len(windows)} windows of {windows.shape[1:]} px "
          f"({len(trainer.train_index)} train / {len(trainer.test_index)} test), device {trainer.device}")
    saved = state.epoch if state is not None else None
    try:
        for stats in trainer.run(args.epochs):
            _save_epoch(model, args.output, trainer, settings, saved)
            saved = stats["epoch"]
            print(f"epoch {stats['epoch']:4d}  train {stats['train_loss']:.4f} (rec {stats['train_recon']:.4f}, "
                  f"KL {stats['train_kl']:.4f})  test {stats['test_loss']:.4f}  β {stats['beta']:.3g}  "
                  f"{stats['samples_per_s']:.0f} windows/s", flush=True)
    except TrainingDiverged as err:
        where = (f"the model of epoch {saved} is in {args.output}" if saved else
                 f"nothing was saved to {args.output}")
        raise TrainingDiverged(f"{err}; {where}", err.epoch) from None
    except KeyboardInterrupt:
        if saved:
            print(f"interrupted; the model of epoch {saved} is in {args.output}", file=sys.stderr)
        raise
    print(f"model saved to {args.output}")
    return 0


def _save_epoch(model, folder: Path, trainer, settings: dict, saved_epoch) -> None:
    """Save after an epoch; on a full disk keep this epoch's model in a rescue folder and say
    which epoch the output folder still holds."""
    from ..io.outputs import OutputError, write_or_rescue
    from .files import save_model

    try:
        write_or_rescue(lambda target: save_model(model, target, history=trainer.state.history, training=settings,
                                                  trainer=trainer), folder, f"the model of epoch {trainer.state.epoch}")
    except OutputError as err:
        held = f"; {folder} still holds epoch {saved_epoch}" if saved_epoch else ""
        raise OutputError(f"{err}{held}") from None


# -------------------------------------------------------------------- encode
def add_encode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("input", type=Path, help="windows .npy, or a movie (with --sites)")
    p.add_argument("-o", "--output", type=Path, required=True, help="latents table (CSV)")
    p.add_argument("--sites", type=Path, help="sites table: cut windows there with the model's window size")


def run_encode(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io.outputs import write_or_rescue
    from ..io.sites import read_sites, write_sites
    from ..patches import recipe_options
    from .files import load_model
    from .latents import encode, encode_sites

    model = load_model(args.model)
    norm = model.normalisation
    if args.sites is not None:
        if not args.input.exists():
            raise ValueError(f"{args.input}: file not found")
        table, report = encode_sites(model, read_movie_array(args.input), read_sites(args.sites))
        print(f"windows: {report.summary()}")
    else:
        windows, _, _, _ = _load_windows_or_movie(args.input, None, None, recipe_options(norm))
        table = pd.concat([pd.DataFrame({"window": np.arange(len(windows))}), encode(model, windows)], axis=1)
    latents = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    if len(table) and latents and table[latents].isna().all().all():
        raise ValueError(f"{args.model}: the model gave no finite latents for any window; nothing was written")
    write_or_rescue(lambda target: write_sites(table, target), args.output, "the latents table")
    print(f"{len(table)} rows with latents written to {args.output}")
    return 0


# -------------------------------------------------------------------- decode
#: decode --grid: at most this many windows per side, and mosaics at most this many pixels per side
MAX_GRID = 200
MAX_MOSAIC = 8192


def add_decode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("--grid", type=int, default=10, help="D: a D×D grid over two content latents (default 10, at most 200)")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG (or .npy for the raw mosaic)")
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="the two content latents to span")
    p.add_argument("--span", type=float, default=3.0, help="linear grid over [−span, span]")
    p.add_argument("--icdf", action="store_true", help="Normal-icdf grid (quantiles 0.05…0.95) instead")
    p.add_argument("--angle", type=float, default=0.0, help="radians")
    p.add_argument("--dx", type=float, default=0.0, help="pixels")
    p.add_argument("--dy", type=float, default=0.0, help="pixels")


def run_decode(args: argparse.Namespace) -> int:
    from ..io.files import atomic_write
    from ..io.limits import bounded
    from ..io.outputs import write_or_rescue
    from .files import load_model
    from .latents import manifold

    bounded(args.grid, "--grid", 1, MAX_GRID, why="the number of decoded windows per side")
    for name in ("span", "angle", "dx", "dy"):
        bounded(getattr(args, name), f"--{name}", -1e6, 1e6)
    model = load_model(args.model)
    h, w = model.config.window if model.config.dims == 2 else (1, model.config.window[0])
    if args.grid * max(h, w) > MAX_MOSAIC:
        raise ValueError(f"--grid {args.grid}: a {args.grid * h}×{args.grid * w} px mosaic of {h}×{w} px windows is too "
                         f"large; use at most {MAX_MOSAIC // max(h, w)}")
    if min(args.dims) < 0 or max(args.dims) >= max(model.config.latent, 1):
        raise ValueError(f"--dims: the model has {model.config.latent} content latents")
    _, mosaic, _ = manifold(model, d=args.grid, dims=tuple(args.dims), kind="icdf" if args.icdf else "linear",
                            span=args.span, angle=args.angle, dx=args.dx, dy=args.dy)
    if args.output.suffix.lower() == ".npy":
        write_or_rescue(lambda target: atomic_write(target, lambda p: np.save(p, mosaic)), args.output, "the mosaic")
    else:
        from PIL import Image

        lo, hi = float(mosaic.min()), float(mosaic.max())
        image = ((mosaic - lo) / (hi - lo if hi > lo else 1.0) * 255).round().astype(np.uint8)
        write_or_rescue(lambda target: atomic_write(target, lambda p: Image.fromarray(image).save(p, format="PNG")),
                        args.output, "the mosaic")
    print(f"{args.grid}×{args.grid} manifold ({mosaic.shape[0]}×{mosaic.shape[1]} px) written to {args.output}")
    return 0


# --------------------------------------------------------------------- bench
def add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="results JSON")
    p.add_argument("--n", type=int, default=20000, help="windows of the reference data")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the quality runs")
    p.add_argument("--threads", type=int, help="torch threads (default all cores); AtomAI gets the same")
    p.add_argument("--atomai-python", help="Python of a venv with AtomAI 0.8.1: time its rVAE side by side")
    p.add_argument("--atomai-scripts", default=os.environ.get("NAPARI_RVAE_ATOMAI_SCRIPTS"),
                   help="folder holding atomai_baseline.py and synth.py (the reference benchmark)")
    p.add_argument("--atomai-n", type=int, default=2000, help="windows per AtomAI timing run")
    p.add_argument("--repeats", type=int, default=2, help="alternating timing rounds")
    p.add_argument("--ideas", action="store_true", help="also time each speed idea separately")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of every stage on tiny settings (600 windows, 1 epoch, 1 round); "
                        "the numbers mean nothing")
    p.add_argument("--quality-runs", default="atomai_settings,shipped_defaults,shipped_defaults_pixel_fraction_0.25",
                   help="comma-separated quality runs (atomai_settings: lr 1e-4 for --epochs; the others stop "
                        "once AtomAI's 3-epoch quality is reached)")


def bench_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`napari_rvae.vae.bench.run_bench` from the ``bench`` options."""
    if args.atomai_python and not args.atomai_scripts:
        raise ValueError("--atomai-python needs --atomai-scripts (the folder with atomai_baseline.py and synth.py)")
    if args.quick:
        args.n, args.epochs, args.atomai_n, args.repeats = 600, 1, 300, 1
    return dict(n=args.n, epochs=args.epochs, threads=args.threads, atomai_python=args.atomai_python,
                atomai_script_dir=args.atomai_scripts, atomai_n=args.atomai_n, repeats=args.repeats, ideas=args.ideas,
                quality_runs=tuple(r for r in args.quality_runs.split(",") if r))
