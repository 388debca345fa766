"""The ``napari-rvae`` command line (DESIGN §4).

Each subcommand is a pair of functions, ``_add_NAME(parser)`` declaring its
options and ``_run_NAME(args)`` doing the work through the core; it is listed
once in ``COMMANDS`` with what it writes (an :class:`~napari_rvae.io.outputs.Output`),
which is checked before the command does any work. Errors print one clear line
on stderr: ``ValueError`` (bad input, a refused output, a diverged training) exits
with status 2, ``OSError`` (a full disk, a lost permission) and ``MemoryError`` with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .io.outputs import Output, add_overwrite_option, check_output, describe_os_error, write_or_rescue
from .vae import commands as _vae  # torch is imported only when a VAE command runs
from .vae import train_command as _train  # likewise
from .analysis import commands as _analysis2  # likewise
from . import project_commands as _project  # analyze and demo
from .project_commands import usable_display  # noqa: F401  (part of the command line's API)


# --------------------------------------------------------------------- info
def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie", type=Path, help="a movie or image file in any readable format")


def _run_info(args: argparse.Namespace) -> int:
    from .io.movie import describe_file

    print(describe_file(args.movie))
    return 0


# ------------------------------------------------------------------- sample
def _add_sample(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="sample name (see --list)")
    p.add_argument("-o", "--output", type=Path, help="output .npz file (data, scale, units, ground truth)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--frames", type=int, help="number of frames (movies)")
    p.add_argument("--size", type=int, help="image size in pixels (square)")
    p.add_argument(
        "--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
        help="any other generator parameter, VALUE as JSON (e.g. --set dose=20 --set grain=false)",
    )
    p.add_argument("--list", action="store_true", help="list the samples and their parameters, then exit")


def _run_sample(args: argparse.Namespace) -> int:
    import json
    import time

    from .synth import DESCRIPTIONS, SAMPLES, make_sample, sample_parameters, save_sample

    if args.list:
        for name in SAMPLES:
            defaults = ", ".join(f"{k}={v!r}" for k, v in sample_parameters(name).items())
            print(f"{name:15s} {DESCRIPTIONS[name]}\n{'':15s} parameters: {defaults}")
        return 0
    if not args.name:
        raise ValueError("give a sample NAME (or --list to see them)")
    if args.output is None:
        raise ValueError("give an output file with -o FILE.npz")
    params = {}
    if args.frames is not None:
        params["frames"] = args.frames
    if args.size is not None:
        params["size"] = args.size
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    if args.name in SAMPLES:
        allowed = sample_parameters(args.name)
        for flag in ("frames", "size"):
            if flag in params and flag not in allowed:
                raise ValueError(f"sample {args.name!r} has no --{flag}; its parameters: {', '.join(allowed)}")
    _check_sample_size(params)
    start = time.perf_counter()
    sample = make_sample(args.name, seed=args.seed, **params)
    seconds = time.perf_counter() - start
    path = write_or_rescue(lambda target: save_sample(sample, target), args.output, "the sample")
    print(f"{args.name}: data {tuple(sample['data'].shape)} + {len(sample) - 1} arrays -> {path} ({seconds:.1f} s)")
    return 0


def _check_sample_size(params: dict) -> None:
    """Frames and size that fit in memory (a generator holds several arrays of the movie's size)."""
    from .io.limits import available_memory, bounded, human_bytes

    for name, high in (("size", 4096), ("frames", 10000)):
        if name in params:
            bounded(params[name], f"--{name}", 1, high)
    need = 8 * 4 * int(params.get("frames", 1)) * int(params.get("size", 256)) ** 2
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(f"--frames {params.get('frames', 1)} --size {params.get('size', 256)}: the sample needs about "
                         f"{human_bytes(need)} of memory, {human_bytes(free)} is available; make it smaller")


# ------------------------------------------------------------------- detect
def _add_detect(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie", type=Path, help="a movie or image file in any readable format")
    p.add_argument("-o", "--output", type=Path, required=True, help="sites table to write (.csv or .parquet)")
    p.add_argument("--channel", type=int, default=0, help="which channel of a multi-channel file (default 0)")
    p.add_argument(
        "--method",
        choices=("model", "peaks", "threshold"),
        default=None,
        help="atoms from the segmenter (model), peak finding (peaks) or threshold + components (threshold); "
        "default: model when --model is given, else peaks",
    )
    p.add_argument("--model", default=None, help="segmenter for --method model: 'default' (shipped) or a model folder")
    p.add_argument("--rescale", type=float, default=1.0,
                   help="segmenter input rescale for --method model, e.g. 12/spacing for very different atom spacings")
    p.add_argument("--precision", choices=("float32", "int8"), default="float32",
                   help="segmenter arithmetic: int8 is about 2x faster per frame, calibrated on this movie "
                        "(falls back to float32 with a warning if the model cannot be quantised)")
    p.add_argument("--threshold", type=float, default=None, help="probability threshold (maps) or relative peak height")
    p.add_argument("--sigma", type=float, default=1.0, help="smoothing before peak finding, pixels (default 1)")
    p.add_argument("--min-distance", type=int, default=None, help="minimum atom separation for peaks, pixels")
    p.add_argument("--edge-margin", type=float, default=2.0, help="drop sites closer to the border, pixels (default 2)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True, help="sub-pixel Gaussian fit")
    p.add_argument("--classify", choices=("auto", "intensity", "channel", "none"), default="auto")
    p.add_argument("--walls", action="store_true", help="PFM phase movie: domain-wall pixels instead of atoms")
    p.add_argument("--wall-threshold", default="otsu", help="phase level between domains (number or 'otsu')")
    p.add_argument("--wall-channel", type=int, default=None,
                   help="with --walls --model PATH: the segmenter's wall channel instead of the PFM phase")
    p.add_argument("--n-walls", type=int, default=None, help="keep at most N wall sites per frame")
    p.add_argument("--wall-spacing", type=float, default=0.0, help="minimum spacing of wall sites, pixels")
    p.add_argument("--tip-sigma", type=float, default=1.0,
                   help="tip blur σ in pixels for the domain-map fit that recovers small blurred domains "
                        "(default 1; 0 = threshold only)")
    p.add_argument("--wall-method", choices=["boundary", "canny"], default="boundary",
                   help="walls as the domain map's exact boundary (default) or Canny edges of it")
    p.add_argument("--rings", action="store_true", help="add ring counts n5..n8 and ring-centre (hollow) sites")
    p.add_argument("--bond-length", type=float, default=None, help="bond length for --rings, pixels (default: data)")
    p.add_argument("--tracks", action="store_true", help="link atoms across frames into track_id")
    p.add_argument("--track-class", type=int, nargs="*", default=[1], help="classes to track (default 1 = bright/Si)")
    p.add_argument("--r-max", type=float, default=None, help="largest step between frames, pixels (default 1.5 bonds)")
    p.add_argument("--max-gap", type=int, default=1, help="frames a track may skip (default 1)")
    p.add_argument("--min-length", type=int, default=3, help="shortest track kept, frames (default 3)")


def _run_detect(args: argparse.Namespace) -> int:
    import numpy as np

    from .detect import detect_atoms, find_rings, find_walls, link_tracks
    from .detect._checks import nearest_neighbour_distance
    from .detect.rings import with_hollows
    from .io.movie import read_movie
    from .io.sites import write_sites

    movies = read_movie(args.movie)
    if not 0 <= args.channel < len(movies):
        raise ValueError(f"--channel {args.channel}: {args.movie.name} has {len(movies)} channel(s)")
    data = np.asarray(movies[args.channel].data, dtype=np.float32)
    _check_detect_options(args, data.shape)
    if args.walls and args.wall_channel is not None:
        from .detect import model_probabilities, wall_sites, walls_from_probabilities

        probabilities = model_probabilities(data, args.model or "default", rescale=args.rescale,
                                            precision=args.precision)
        mask = walls_from_probabilities(probabilities, args.wall_channel, threshold=args.threshold or 0.5)
        sites = wall_sites(mask, n_per_frame=args.n_walls, min_spacing=args.wall_spacing, edge_margin=args.edge_margin)
    elif args.walls:
        level = args.wall_threshold
        threshold = level if level == "otsu" else _number(level, "--wall-threshold")
        sites = find_walls(data, threshold=threshold, n_per_frame=args.n_walls, min_spacing=args.wall_spacing,
                           edge_margin=args.edge_margin, tip_sigma=args.tip_sigma if args.tip_sigma > 0 else None,
                           method=args.wall_method)
    else:
        method = args.method or ("model" if args.model else "peaks")
        sites = detect_atoms(
            data,
            method=method,
            model=args.model or "default",
            threshold=args.threshold,
            sigma=args.sigma,
            min_distance=args.min_distance,
            edge_margin=args.edge_margin,
            refine=args.refine,
            classify=args.classify,
            rescale=args.rescale,
            precision=args.precision,
        )
        if len(sites) and args.tracks:
            first = sites[sites["frame"] == sites["frame"].iloc[0]]
            r_max = args.r_max or 1.5 * nearest_neighbour_distance(first[["y", "x"]].to_numpy())
            sites = link_tracks(sites, r_max=float(r_max), classes=args.track_class or None,
                                max_gap=args.max_gap, min_length=args.min_length)
        if len(sites) and args.rings:
            sites, hollows = find_rings(sites, bond_length=args.bond_length)
            sites = with_hollows(sites, hollows)
    write_or_rescue(lambda target: write_sites(sites, target), args.output, "the sites table")
    kinds = ", ".join(f"{n} {k}" for k, n in sites["kind"].value_counts().items()) if len(sites) else "no sites"
    print(f"{kinds} in {data.shape[0] if data.ndim == 3 else 1} frame(s) -> {args.output}")
    return 0


def _check_detect_options(args: argparse.Namespace, shape) -> None:
    """Lengths in pixels within the frame, smoothing that leaves atoms, finite thresholds: a σ of 10⁶
    would build a kernel of millions of pixels and run for hours."""
    from .io.limits import bounded

    side = float(max(shape[-2:]))
    bounded(args.sigma, "--sigma", 0, min(50.0, side), unit="pixels", why="wider smoothing blurs every atom away")
    bounded(args.tip_sigma, "--tip-sigma", 0, min(50.0, side), unit="pixels")
    bounded(args.edge_margin, "--edge-margin", 0, side / 2, unit="pixels", why="half the frame")
    bounded(args.wall_spacing, "--wall-spacing", 0, side, unit="pixels")
    bounded(args.rescale, "--rescale", 0, 8, low_open=True)
    if args.min_distance is not None:
        bounded(args.min_distance, "--min-distance", 1, min(128.0, side), unit="pixels",
                why="atoms further apart than that need --rescale instead")
    for name in ("threshold", "bond_length", "r_max"):
        value = getattr(args, name)
        if value is not None:
            if name == "threshold":
                bounded(value, "--threshold", -1e30, 1e30)
            else:
                bounded(value, f"--{name.replace('_', '-')}", 0, side, unit="pixels", low_open=True)
    for name, low in (("n_walls", 1), ("max_gap", 0), ("min_length", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option}: expected a number or 'otsu', got {text!r}") from None
# ---------------------------------------------------------- train-segmenter
def _add_train_segmenter(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, help="frames: .npy or .tif, (Y, X) or (T, Y, X)")
    p.add_argument("labels", type=Path, help="painted labels, same shape: 0 unlabelled, 1 background, 2… classes")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to write (saved after every epoch)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--classes", type=int, default=None, help="number of label values incl. background (default: max label)")
    p.add_argument("--crop", type=int, default=64, help="training crop side in pixels (multiple of 2**depth)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=32, help="optimisation steps per epoch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--filters", type=int, default=8, help="filters of the first level (new models)")
    p.add_argument("--depth", type=int, default=3, help="down-samplings (new models)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fine-tune", type=str, default=None, metavar="MODEL",
                   help="start from this model folder ('default' = the shipped atom model)")


def _run_train_segmenter(args: argparse.Namespace) -> int:
    from .segment.cli_support import train_segmenter_command

    return train_segmenter_command(args)


# -------------------------------------------------------------------- bench
def _add_bench(p: argparse.ArgumentParser) -> None:
    from .bench import SECTIONS

    _vae.add_bench(p)
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated parts to run (default all: {', '.join(SECTIONS)}); "
                        "the options above apply to 'vae'")


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import run

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    results = run(args.output, sections, vae_options=_vae.bench_options(args), log=lambda s: print(s, flush=True))
    failed = [name for name, part in results["sections"].items() if not part.get("ok")]
    print(f"results written to {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


# ------------------------------------------------------------ registry / main
TABLE = (".csv", ".parquet", ".pq")
# (name, help, add-arguments function, run function, what it writes)
COMMANDS = [
    ("info", "print shape, dtype, pixel size, frames and value range of a movie file", _add_info, _run_info, None),
    ("sample", "write a synthetic movie with its ground truth to .npz (--list shows the samples)", _add_sample, _run_sample,
     Output("file", (".npz",))),
    ("detect", "find atoms or domain walls; refine, classify, rings, tracks -> sites table", _add_detect, _run_detect,
     Output("file", TABLE, inputs=("movie", "model"))),
    ("train-segmenter", "train or fine-tune a U-Net segmenter from painted labels", _add_train_segmenter,
     _run_train_segmenter, Output("folder", holds="model", inputs=("image", "labels", "fine_tune"))),
    ("train", "train a VAE / rVAE / skip-rVAE / shift-VAE on windows or on a movie's sites", _train.add_train, _train.run_train,
     Output("folder", holds="model", inputs=("input", "sites"), resume="resume")),
    ("encode", "encode windows or a movie's sites with a trained model into a latents table", _vae.add_encode,
     _vae.run_encode, Output("file", TABLE, inputs=("model", "input", "sites"))),
    ("decode", "decode a latent grid (manifold) of a trained model into a PNG", _vae.add_decode, _vae.run_decode,
     Output("file", (".png", ".npy"), inputs=("model",))),
    ("bench", "benchmark every stage: rVAE training, quality and latency vs AtomAI, U-Net inference, refinement, GUI", _add_bench,
     _run_bench, Output("file", (".json",))),
    ("chemistry-map", "ring chemistry (n5..n8 at the centre atom) of a model's decoded latent plane -> .npz/.png",
     _analysis2.add_chemistry_map, _analysis2.run_chemistry_map, Output("file", (".npz", ".png"), inputs=("model",))),
    ("beta-search", "shift-VAE beta-schedule grid search ranked by latent-map FFT smoothness -> folder",
     _analysis2.add_beta_search, _analysis2.run_beta_search, Output("folder", holds="results", inputs=("image",))),
    ("analyze", "the whole pipeline headless: sites -> windows -> rVAE -> latents -> clusters, dynamics; a project folder",
     _project.add_analyze, _project.run_analyze, Output("folder", holds="project", inputs=("movie", "sites", "bias"))),
    ("demo", "napari with the graphene sample, the docks and a Run pipeline button; headless without a display",
     _project.add_demo, _project.run_demo, Output("folder", holds="project", option="out")),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-rvae",
        description="Invariant VAEs for STEM / PFM movies: segment, detect, train, explore, quantify.",
    )
    parser.add_argument("--version", action="version", version=f"napari-rvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add, run, output in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        if output is not None:
            add_overwrite_option(p)
        p.set_defaults(_run=run, _output=output)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 1
    try:
        if args._output is not None:
            check_output(args, args._output)  # before any work: a bad -o costs nothing
        return int(args._run(args) or 0)
    except ValueError as err:
        print(f"napari-rvae {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"napari-rvae {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    except MemoryError as err:
        print(f"napari-rvae {args.command}: error: out of memory ({' '.join(str(err).split()) or 'no detail'}); "
              "use a smaller input or fewer frames", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"napari-rvae {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
