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


def read_movie_array(path: Path, channel: str | int | None = None) -> np.ndarray:
    """A movie file (any format ``io.movie`` reads; ``channel`` by name or index, default the
    first) as a ``(T, Y, X)`` float32 array."""
    from ..io.movie import select_movie

    return np.asarray(select_movie(path, channel).data, dtype=np.float32)


def window_images(movie: np.ndarray, sites, source: str, sites_path: Path | None = None,
                  map_path: Path | None = None) -> tuple[np.ndarray, str]:
    """The ``(T, Y, X)`` images windows are cut from and which they are (``"map"`` or ``"image"``).

    ``source``: ``"image"``; ``"map"`` (the atom probability: ``map_path``, else the
    ``SITES_map.npz`` that ``detect --save-map`` wrote beside the sites table, else
    computed now by the shipped atom finder); ``"auto"``: the map for atom sites when
    one was given or saved beside the sites, the image otherwise.
    """
    from ..pipeline import atom_probability

    if source not in ("auto", "map", "image"):
        raise ValueError(f"windows from: expected auto, map or image, got {source!r}")
    if map_path is None and sites_path is not None:
        beside = Path(sites_path).with_name(Path(sites_path).stem + "_map.npz")
        map_path = beside if beside.exists() else None
    atoms = sites is None or "kind" not in sites or bool((sites["kind"] == "atom").all())
    if source == "image" or (source == "auto" and (map_path is None or not atoms)):
        return movie, "image"
    if map_path is not None:
        from ..io.maps import read_atom_probability

        image = read_atom_probability(map_path)
        if image.shape != movie.shape:
            raise ValueError(f"{map_path}: map of shape {image.shape} does not match the movie {movie.shape}")
        return image, "map"
    from ..detect.find import atom_map

    print("windows from the atom probability map: running the shipped atom finder on the movie", flush=True)
    return atom_probability(atom_map(movie)), "map"


def default_window(sites) -> int:
    """Two atom spacings (the sites' median nearest-neighbour distance in their first frame), as
    :func:`napari_rvae.detect.lattice.scale_defaults` gives; one clear error for other sites."""
    from ..detect._checks import nearest_neighbour_distance
    from ..detect.lattice import scale_defaults

    atoms = sites[sites["kind"] == "atom"] if "kind" in sites else sites
    first = atoms[atoms["frame"] == atoms["frame"].min()] if len(atoms) else atoms
    spacing = nearest_neighbour_distance(first[["y", "x"]].to_numpy()) if len(first) >= 2 else float("nan")
    if not np.isfinite(spacing):
        raise ValueError("give the window size with --window (the sites are not atoms, or too few to measure "
                         "their spacing)")
    return int(scale_defaults(spacing)["window"])


def _load_windows_or_movie(path: Path, sites_path, window, options, bond_symmetry: int = 3, channel=None,
                           source: str = "auto", map_path: Path | None = None):
    """Return ``(windows, sites table or None, cut report or None, normalisation dict)``."""
    from ..io.sites import read_sites
    from ..patches import BOND_ANGLE, cut_windows, normalise, with_orientation

    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if sites_path is None:
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{path}: give an (N, w, w) .npy of windows, or a movie with --sites sites.csv")
        windows = np.load(path, allow_pickle=False).astype(np.float32)
        if windows.ndim not in (2, 3) or len(windows) == 0:
            raise ValueError(f"{path}: expected windows of shape (N, w, w) or (N, w), got {windows.shape}")
        if not np.isfinite(windows).all():
            raise ValueError(f"{path}: windows contain NaN or infinite values")
        windows, norm = normalise(windows, options.get("normalisation", "none"), options.get("lo"), options.get("hi"))
        return windows, None, None, norm
    movie = read_movie_array(path, channel)
    recipe = {"orientation": options.get("orientation"), "bond_symmetry": bond_symmetry}
    sites = with_orientation(read_sites(sites_path), recipe)
    if window is None:
        window = default_window(sites)
    images, used = window_images(movie, sites, source, sites_path, map_path)
    cut = cut_windows(images, sites, window, **options)
    if len(cut) == 0:
        raise ValueError(f"no windows could be cut: {cut.report.summary()}")
    cut.normalisation["source"] = used
    if options.get("orientation") == BOND_ANGLE:
        cut.normalisation["bond_symmetry"] = int(bond_symmetry)
    return cut.windows, sites, cut, cut.normalisation


# --------------------------------------------------------------------- train
def _add_window_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--windows-from", choices=("auto", "map", "image"), default="auto",
                   help="cut windows from the atom probability map (as the papers do for atoms) or the image; "
                        "default: the map when one is given (--map) or saved beside the sites (detect --save-map)")
    p.add_argument("--map", type=Path, default=None, metavar="MAP",
                   help="atom probability map (SITES_map.npz from detect --save-map)")


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="an (N, w, w) .npy of windows, or a movie (with --sites)")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX",
                   help="channel of a multi-channel movie, by name (e.g. Phase) or index (default the first)")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to write (model.safetensors + model.json)")
    p.add_argument("--sites", type=Path, help="sites table (CSV) whose windows are cut from the movie")
    _add_window_source(p)
    p.add_argument("--arch", default="rvae", choices=["vae", "rvae", "skip-rvae", "shift-vae"])
    p.add_argument("--latent", type=int, default=2, help="content latents (default 2)")
    p.add_argument("--window", type=int,
                   help="window width in pixels (with a movie; default two atom spacings, from the sites)")
    p.add_argument("--classes", type=int, nargs="+", help="only sites of these classes")
    p.add_argument("--per-frame", type=int, help="random subset of at most this many sites per frame")
    p.add_argument("--normalisation", default="global", choices=["none", "global", "window"])
    p.add_argument("--centring", default="pixel", choices=["pixel", "subpixel"],
                   help="pixel: cut around the rounded site (papers' rule); subpixel: resample so the site is "
                        "the window's exact centre (use for physical rotation angles)")
    p.add_argument("--orientation", metavar="COLUMN",
                   help="turn each window by the angle (radians) in this sites-table column, so sites of "
                        "different lattice orientations look alike; 'bond_angle' is computed from the atom "
                        "graph when the table lacks it (see --bond-symmetry)")
    p.add_argument("--mask", type=_radii, metavar="R[,R2]",
                   help="circular mask: keep the window within R px of its centre, taper to 0 at R2 px "
                        "(default: the half width); kept with the model and repeated by encode")
    p.add_argument("--bond-symmetry", type=int, default=3,
                   help="order of the bond star for --orientation bond_angle (3 graphene, 4 square, 6 hexagonal)")
    p.add_argument("--round-columns", action="store_true",
                   help="make elliptical columns (probe astigmatism) round before cutting: measure them on the "
                        "movie, blur along their short axis; kept with the model and repeated by encode")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--encoder", default="mlp", choices=["mlp", "conv"])
    p.add_argument("--encoder-widths", type=_widths, default=(128, 128), help="e.g. 128,128")
    p.add_argument("--decoder-widths", type=_widths, default=(128, 128, 128), help="e.g. 128,128,128")
    p.add_argument("--likelihood", default="gaussian", choices=["gaussian", "bernoulli"])
    p.add_argument("--noise-sigma", type=float, default=0.1,
                   help="σ of the Gaussian likelihood in intensity units (default 0.1 for windows in [0, 1]; "
                        "1 = unit variance)")
    p.add_argument("--angle-encoding", default="circular", choices=["circular", "linear"],
                   help="angle mean as atan2 of two encoder outputs (circular, default) or one output (linear)")
    p.add_argument("--no-translation", action="store_true",
                   help="spatial models without the dx, dy latents (rotation-only rVAE)")
    p.add_argument("--rotation-prior", type=float, default=0.1, help="σ of the angle prior, radians")
    p.add_argument("--translation-prior", type=float, default=0.1, help="shift scale, half-window units")
    p.add_argument("--beta", type=float, default=1.0, help="KL weight (start of the schedule)")
    p.add_argument("--beta-end", type=float, help="KL weight at the end of a linear/cyclical schedule")
    p.add_argument("--beta-schedule", default="constant", choices=["constant", "linear", "cyclical"])
    p.add_argument("--beta-epochs", type=int, default=10, help="epochs of one ramp")
    p.add_argument("--capacity", type=float, default=0.0, help="final KL capacity (nats) for capacity annealing")
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--pixel-fraction", type=float, default=1.0,
                   help="evaluate the decoder at this random share of pixels per step (faster; 1 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--resume", action="store_true", help="continue training the model in -o")


def run_train(args: argparse.Namespace) -> int:
    from .config import BetaSchedule, VAEConfig
    from ..patches import recipe_options
    from .files import load_model, save_model, train_state
    from .models import build_model
    from .trainer import Trainer

    options = {"normalisation": args.normalisation, "centring": args.centring, "round_columns": args.round_columns}
    if args.round_columns and args.sites is None:
        raise ValueError("--round-columns works on a movie: give the movie with --sites (not a windows .npy)")
    if args.mask is not None:
        if args.sites is None:
            raise ValueError("--mask needs a movie with --sites (windows given as .npy are already cut)")
        options["mask"] = args.mask
    if args.orientation:
        if args.sites is None:
            raise ValueError("--orientation needs a movie with --sites (windows given as .npy are already cut)")
        options["orientation"] = args.orientation
    symmetry = args.bond_symmetry
    model = state = None
    if args.resume:
        model = load_model(args.output)
        state = train_state(model)
        options = recipe_options(model.normalisation)
        symmetry = int((model.normalisation or {}).get("bond_symmetry", symmetry))
    if args.sites is not None:
        options.update(classes=args.classes, per_frame=args.per_frame, seed=args.seed)
    window = args.window or (model.config.window[0] if model is not None else None)
    source = (model.normalisation or {}).get("source", "image") if model is not None else args.windows_from
    windows, _, cut, norm = _load_windows_or_movie(args.input, args.sites, window, options, symmetry,
                                                    channel=args.channel, source=source, map_path=args.map)
    if cut is not None:
        print(f"windows: {cut.report.summary()} (from the "
              f"{'atom probability map' if norm.get('source') == 'map' else 'image'})")
    if model is None:
        beta = BetaSchedule(kind=args.beta_schedule, start=args.beta,
                            end=args.beta if args.beta_end is None else args.beta_end, epochs=args.beta_epochs,
                            capacity_end=args.capacity, capacity_epochs=args.beta_epochs)
        config = VAEConfig(arch=args.arch, window=windows.shape[1:], latent=args.latent, encoder=args.encoder,
                           encoder_widths=args.encoder_widths, decoder_widths=args.decoder_widths,
                           likelihood=args.likelihood, rotation_prior=args.rotation_prior,
                           translation_prior=args.translation_prior, noise_sigma=args.noise_sigma,
                           angle_encoding=args.angle_encoding, translation=not args.no_translation, beta=beta)
        model = build_model(config, seed=args.seed)
    model.normalisation = norm
    trainer = Trainer(model, windows, test_fraction=args.test_fraction, batch_size=args.batch, lr=args.lr,
                      seed=args.seed, device=args.device, threads=args.threads, pixel_fraction=args.pixel_fraction,
                      state=state)
    settings = {"lr": args.lr, "batch": args.batch, "seed": args.seed, "test_fraction": args.test_fraction,
                "pixel_fraction": args.pixel_fraction, "input": str(args.input), "windows": int(len(windows))}
    print(f"training {model.config.arch} on {len(windows)} windows of {windows.shape[1:]} px "
          f"({len(trainer.train_index)} train / {len(trainer.test_index)} test), device {trainer.device}")
    for stats in trainer.run(args.epochs):
        save_model(model, args.output, history=trainer.state.history, training=settings)  # autosave every epoch
        print(f"epoch {stats['epoch']:4d}  train {stats['train_loss']:.4f} (rec {stats['train_recon']:.4f}, "
              f"KL {stats['train_kl']:.4f})  test {stats['test_loss']:.4f}  β {stats['beta']:.3g}  "
              f"{stats['samples_per_s']:.0f} windows/s", flush=True)
    print(f"model saved to {args.output}")
    return 0


# -------------------------------------------------------------------- encode
def add_encode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("input", type=Path, help="windows .npy, or a movie (with --sites)")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX",
                   help="channel of a multi-channel movie, by name (e.g. Phase) or index (default the first)")
    p.add_argument("-o", "--output", type=Path, required=True, help="latents table (CSV)")
    p.add_argument("--sites", type=Path, help="sites table: cut windows there with the model's window size")
    p.add_argument("--map", type=Path, default=None, metavar="MAP",
                   help="atom probability map for a model trained on map windows (default: SITES_map.npz beside "
                        "the sites, else the shipped atom finder is run)")


def run_encode(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..io.sites import read_sites, write_sites
    from ..patches import recipe_options
    from .files import load_model
    from .latents import encode, encode_sites

    model = load_model(args.model)
    norm = model.normalisation
    if args.sites is not None:
        if not args.input.exists():
            raise ValueError(f"{args.input}: file not found")
        sites = read_sites(args.sites)
        images, _ = window_images(read_movie_array(args.input, args.channel), sites,
                                  (norm or {}).get("source", "image"), args.sites, args.map)
        table, report = encode_sites(model, images, sites)
        print(f"windows: {report.summary()}")
    else:
        windows, _, _, _ = _load_windows_or_movie(args.input, None, None, recipe_options(norm))
        table = pd.concat([pd.DataFrame({"window": np.arange(len(windows))}), encode(model, windows)], axis=1)
    write_sites(table, args.output)
    print(f"{len(table)} rows with latents written to {args.output}")
    return 0


# -------------------------------------------------------------------- decode
def add_decode(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model folder")
    p.add_argument("--grid", type=int, default=10, help="D: a D×D grid over two content latents")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG (or .npy for the raw mosaic)")
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="the two content latents to span")
    p.add_argument("--span", type=float, default=3.0, help="linear grid over [−span, span]")
    p.add_argument("--icdf", action="store_true", help="Normal-icdf grid (quantiles 0.05…0.95) instead")
    p.add_argument("--angle", type=float, default=0.0, help="radians")
    p.add_argument("--dx", type=float, default=0.0, help="pixels")
    p.add_argument("--dy", type=float, default=0.0, help="pixels")


def run_decode(args: argparse.Namespace) -> int:
    from ..io.files import atomic_write
    from .files import load_model
    from .latents import manifold

    model = load_model(args.model)
    if args.grid < 1:
        raise ValueError("--grid must be ≥ 1")
    if max(args.dims) >= max(model.config.latent, 1):
        raise ValueError(f"--dims: the model has {model.config.latent} content latents")
    _, mosaic, _ = manifold(model, d=args.grid, dims=tuple(args.dims), kind="icdf" if args.icdf else "linear",
                            span=args.span, angle=args.angle, dx=args.dx, dy=args.dy)
    if args.output.suffix.lower() == ".npy":
        atomic_write(args.output, lambda p: np.save(p, mosaic))
    else:
        from PIL import Image

        lo, hi = float(mosaic.min()), float(mosaic.max())
        image = ((mosaic - lo) / (hi - lo if hi > lo else 1.0) * 255).round().astype(np.uint8)
        atomic_write(args.output, lambda p: Image.fromarray(image).save(p, format="PNG"))
    print(f"{args.grid}×{args.grid} manifold ({mosaic.shape[0]}×{mosaic.shape[1]} px) written to {args.output}")
    return 0

