"""``napari-rvae train``: train a VAE / rVAE / skip-rVAE / shift-VAE, or continue one (``--resume``).

Meaningless hyper-parameters are refused before anything is read; ``--resume`` takes the
model's architecture, window recipe, training settings and optimizer state and refuses options
that would change the model; the model is saved after every epoch, and a diverging run stops
with the last good epoch's model kept (:class:`~napari_rvae.vae.trainer.TrainingDiverged`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .commands import _add_window_source, _load_windows_or_movie, _radii, _widths
from .defaults import MIN_STEPS

#: defaults of the options that define a model; left unset on the command line so that
#: ``--resume`` can tell a flag the user gave (refused when it differs) from a default
ARCH_DEFAULTS = {"arch": "rvae", "latent": 2, "window": None, "encoder": "mlp", "encoder_widths": (128, 128),
                 "decoder_widths": (128, 128, 128), "likelihood": "gaussian", "noise_sigma": 0.1,
                 "angle_encoding": "equivariant", "no_translation": False, "rotation_prior": 0.1,
                 "translation_prior": 0.1, "beta": 1.0, "beta_end": None, "beta_schedule": "constant",
                 "beta_epochs": 10, "capacity": 0.0}
RECIPE_DEFAULTS = {"normalisation": "global", "centring": "pixel", "orientation": None, "mask": None,
                   "bond_symmetry": 3, "round_columns": False}
#: epochs of a default run (more where the windows are few: vae.defaults.epochs_for)
TRAIN_EPOCHS = 20
TRAINING_DEFAULTS = {"lr": 1e-3, "batch": 100, "seed": 0, "test_fraction": 0.15, "pixel_fraction": 1.0}


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="an (N, w, w) .npy of windows, or a movie (with --sites)")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX",
                   help="channel of a multi-channel movie, by name (e.g. Phase) or index (default the first)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="model folder to write (model.safetensors + model.json + training.safetensors); an existing "
                        "model is refused unless --resume (continue it) or --overwrite (replace it)")
    p.add_argument("--sites", type=Path, help="sites table (CSV) whose windows are cut from the movie")
    _add_window_source(p)
    p.add_argument("--arch", choices=["vae", "rvae", "skip-rvae", "shift-vae"], help="model (default rvae)")
    p.add_argument("--latent", type=int, help="content latents (default 2)")
    p.add_argument("--window", type=int,
                   help="window width in pixels (with a movie; default two atom spacings, from the sites)")
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
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs to train (default {TRAIN_EPOCHS}, more where the windows are few: at least "
                        f"{MIN_STEPS} optimiser steps; with --resume: more epochs)")
    p.add_argument("--batch", type=int, help="windows per step (default 100; 16 for a skip-rvae)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3, 3e-3 for a skip-rvae; --resume keeps the stored one)")
    p.add_argument("--encoder", choices=["mlp", "conv"], help="encoder (default mlp)")
    p.add_argument("--encoder-widths", type=_widths, help="e.g. 128,128 (default)")
    p.add_argument("--decoder-widths", type=_widths, help="e.g. 128,128,128 (default)")
    p.add_argument("--likelihood", choices=["gaussian", "bernoulli"], help="default gaussian")
    p.add_argument("--noise-sigma", type=float,
                   help="σ of the Gaussian likelihood in intensity units (default 0.1 for windows in [0, 1]; "
                        "1 = unit variance)")
    p.add_argument("--angle-encoding", choices=["equivariant", "circular", "linear"],
                   help="equivariant (default): the angle is read from circular harmonics of the window, so it "
                        "turns with the window, and the other latents from the window turned back; circular: "
                        "atan2 of two encoder outputs; linear: one output")
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
                   help="evaluate the decoder at this random share of pixels per step (faster; default 1 = all, "
                        "0.1 for a skip-rvae)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores; with --distributed 1 per process)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--resume", action="store_true",
                   help="continue training the model in -o (its architecture, window recipe and optimizer state); "
                        "architecture options that differ from the model are refused")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training in every process started by torchrun (gloo on CPU, NCCL on GPUs): "
                        "`torchrun --nproc-per-node N -m napari_rvae.cli train ... --distributed`; --batch stays the "
                        "global batch (batch/N per process), rank 0 writes the model")


def _given(args: argparse.Namespace, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def check_train_options(args: argparse.Namespace) -> None:
    """Refuse meaningless hyper-parameters before anything is read or trained."""
    from ..io.limits import bounded

    if args.epochs is not None and args.epochs < 1:
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

    check_train_options(args)
    run = None
    if getattr(args, "distributed", False):
        from .distributed import start

        run = start(args.device)
    finished = False
    try:
        code = _train(args, run)
        finished = True
        return code
    finally:
        if run is not None:
            from .distributed import stop

            stop(finished)


def _train(args: argparse.Namespace, run) -> int:
    from .config import BetaSchedule, VAEConfig
    from ..patches import recipe_options
    from .files import load_checkpoint, load_model, train_state
    from .models import build_model
    from .trainer import Trainer, TrainingDiverged

    main = run is None or run.is_main
    say = print if main else (lambda *a, **k: None)
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
    from .defaults import training_defaults

    arch_training = {} if args.resume else training_defaults(args.arch or ARCH_DEFAULTS["arch"])
    train = {k: given.get(k, stored_training.get(k, arch_training.get(k, v))) for k, v in TRAINING_DEFAULTS.items()}
    if args.sites is not None:
        options.update(classes=args.classes, per_frame=args.per_frame, seed=train["seed"])
    window = args.window or (model.config.window[0] if model is not None else None)
    source = (model.normalisation or {}).get("source", "image") if model is not None else args.windows_from
    windows, _, cut, norm = _load_windows_or_movie(args.input, args.sites, window, options, symmetry,
                                                    channel=args.channel, source=source, map_path=args.map,
                                                    arch=model.config.arch if model is not None else args.arch)
    if cut is not None:
        say(f"windows: {cut.report.summary()} (from the "
              f"{'atom probability map' if norm.get('source') == 'map' else 'image'})")
    if model is None:
        from .defaults import model_defaults

        derived = model_defaults(args.arch or ARCH_DEFAULTS["arch"], windows, norm)
        a = {**ARCH_DEFAULTS, **{k: v for k, v in derived.items() if k in ARCH_DEFAULTS},
             **{k: v for k, v in given.items() if k in ARCH_DEFAULTS}}
        beta = BetaSchedule(kind=a["beta_schedule"], start=a["beta"], end=a["beta"] if a["beta_end"] is None else a["beta_end"],
                            epochs=a["beta_epochs"], capacity_end=a["capacity"], capacity_epochs=a["beta_epochs"])
        config = VAEConfig(arch=a["arch"], window=windows.shape[1:], latent=a["latent"], encoder=a["encoder"],
                           encoder_widths=a["encoder_widths"], decoder_widths=a["decoder_widths"],
                           likelihood=a["likelihood"], rotation_prior=a["rotation_prior"],
                           translation_prior=a["translation_prior"], noise_sigma=a["noise_sigma"],
                           angle_encoding=a["angle_encoding"], translation=not a["no_translation"], beta=beta,
                           **{k: v for k, v in derived.items() if k not in ARCH_DEFAULTS})
        model = build_model(config, seed=train["seed"])
    elif tuple(windows.shape[1:]) != tuple(model.config.window):
        raise ValueError(f"--resume: the model takes windows of {model.config.window} px, the input gives "
                         f"{windows.shape[1:]}")
    model.normalisation = norm
    if args.epochs is None:  # few windows (one image): more epochs, so the model gets enough optimiser steps
        from .defaults import epochs_for

        args.epochs = epochs_for(round(len(windows) * (1 - train["test_fraction"])), train["batch"], TRAIN_EPOCHS)
        say(f"epochs: {args.epochs} (at least {TRAIN_EPOCHS}, and at least {MIN_STEPS} optimiser steps of "
            f"{train['batch']} windows)")
    device, threads = args.device, args.threads
    if run is not None:
        from .distributed import fingerprint

        device, threads = str(run.device), args.threads or 1
        if run.device.type == "cpu":  # this process's share of the cores, for the whole command
            import torch

            torch.set_num_threads(threads)
        run.agree({"windows": fingerprint(windows), "model": model.config.to_dict(), "training": train,
                   "epochs": args.epochs, "resume_epoch": state.epoch if state is not None else 0,
                   "optimizer_state": checkpoint is not None, "device": run.device.type, "threads": threads})
    trainer = Trainer(model, windows, test_fraction=train["test_fraction"], batch_size=train["batch"], lr=train["lr"],
                      seed=train["seed"], device=device, threads=threads,
                      pixel_fraction=train["pixel_fraction"], state=state, checkpoint=checkpoint, distributed=run)
    settings = {**train, "input": str(args.input), "windows": int(len(windows))}
    if run is not None:
        settings["distributed"] = {"world_size": run.world_size, "backend": run.backend,
                                   "rank_batch": run.rank_batch(train["batch"]), "threads_per_rank": threads}
    resumed = ""
    if args.resume:
        resumed = (f"resuming at epoch {state.epoch}" + (" with its optimizer state" if checkpoint else
                   " (no optimizer state stored with this model: Adam starts afresh)") + "; ")
    ranks = "" if run is None else (f" × {run.world_size} processes ({run.backend}, {run.rank_batch(train['batch'])} "
                                    "windows per process and step)")
    say(f"{resumed}training {model.config.arch} on {len(windows)} windows of {windows.shape[1:]} px "
        f"({len(trainer.train_index)} train / {len(trainer.test_index)} test), device {trainer.device}{ranks}")
    save = (lambda: _save_epoch(model, args.output, trainer, settings, saved)) if run is None else (
        lambda: run.on_main(lambda: _save_epoch(model, args.output, trainer, settings, saved)))
    saved = state.epoch if state is not None else None
    try:
        for stats in trainer.run(args.epochs):
            save()
            saved = stats["epoch"]
            say(f"epoch {stats['epoch']:4d}  train {stats['train_loss']:.4f} (rec {stats['train_recon']:.4f}, "
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
    if run is not None:  # synchronous training leaves every rank with the same weights: make sure
        import numpy as np

        from .distributed import fingerprint

        run.agree({"weights after training": fingerprint(
            np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()]))},
                  advice="the processes trained apart, which is a bug of napari-rvae: please report it")
    from ..analysis.collapse import check_after_training

    if main:  # the latent check runs once, on rank 0, and is saved with the final model
        check = check_after_training(model, windows)
        settings["latent_check"] = check.to_dict()  # kept in model.json beside the training settings
    save()
    if main:
        print(check.line())
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
