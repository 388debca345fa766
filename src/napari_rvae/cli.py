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
from .vae import commands as _vae  # torch is imported only when a VAE command runs


# --------------------------------------------------------------------- info
def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie", type=Path, help="a movie or image file in any readable format")


def _run_info(args: argparse.Namespace) -> int:
    from .io.movie import describe_file

    print(describe_file(args.movie))
    return 0


# ------------------------------------------------------------ registry / main
# (name, help, add-arguments function, run function)
COMMANDS = [
    ("info", "print shape, dtype, pixel size, frames and value range of a movie file", _add_info, _run_info),
    ("train", "train a VAE / rVAE / skip-rVAE / shift-VAE on windows or on a movie's sites", _vae.add_train, _vae.run_train),
    ("encode", "encode windows or a movie's sites with a trained model into a latents table", _vae.add_encode, _vae.run_encode),
    ("decode", "decode a latent grid (manifold) of a trained model into a PNG", _vae.add_decode, _vae.run_decode),
    ("bench", "benchmark training, quality and inference speed (optionally against AtomAI)", _vae.add_bench, _vae.run_bench),
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
