"""The ``napari-rvae`` command line (DESIGN §4).

Each subcommand is a pair of functions, ``_add_NAME(parser)`` declaring its
options and ``_run_NAME(args)`` doing the work through the core; it is listed
once in ``COMMANDS``. Errors (``ValueError`` from validation) print one clear
line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


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
    start = time.perf_counter()
    sample = make_sample(args.name, seed=args.seed, **params)
    seconds = time.perf_counter() - start
    path = save_sample(sample, args.output)
    print(f"{args.name}: data {tuple(sample['data'].shape)} + {len(sample) - 1} arrays -> {path} ({seconds:.1f} s)")
    return 0


# ------------------------------------------------------------ registry / main
# (name, help, add-arguments function, run function)
COMMANDS = [
    ("info", "print shape, dtype, pixel size, frames and value range of a movie file", _add_info, _run_info),
    ("sample", "write a synthetic movie with its ground truth to .npz (--list shows the samples)", _add_sample, _run_sample),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-rvae",
        description="Invariant VAEs for STEM / PFM movies: segment, detect, train, explore, quantify.",
    )
    parser.add_argument("--version", action="version", version=f"napari-rvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except ValueError as err:
        print(f"napari-rvae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-rvae {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
