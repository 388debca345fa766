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


# ------------------------------------------------------------ registry / main
# (name, help, add-arguments function, run function)
COMMANDS = [
    ("info", "print shape, dtype, pixel size, frames and value range of a movie file", _add_info, _run_info),
    ("train-segmenter", "train or fine-tune a U-Net segmenter from painted labels", _add_train_segmenter,
     _run_train_segmenter),
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
