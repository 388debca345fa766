"""Regenerate docs/cli.md from the command line's own help: python docs/scripts/make_cli_doc.py"""

from pathlib import Path

from napari_rvae.cli import COMMANDS, build_parser

parser = build_parser()
sub = next(a for a in parser._actions if a.dest == "command")
parts = [
    "# Command line\n",
    "`napari-rvae COMMAND --help` prints the same. Errors print one clear line on stderr and exit with status 2 "
    "(bad input, option or output; a training that diverged) or 1 (a full disk, a lost permission, out of memory). "
    "Every output is checked before the command starts; an input, an existing model or an existing project is "
    "never written over without `--overwrite` (or `--resume` for `train`): see [reliability.md](reliability.md).\n",
    "```\n" + parser.format_help() + "```\n",
]
for name, help_text, *_ in COMMANDS:
    parts.append(f"## `napari-rvae {name}`\n\n{help_text}.\n\n```\n{sub.choices[name].format_help()}```\n")
Path(__file__).resolve().parents[1].joinpath("cli.md").write_text("\n".join(parts), encoding="utf-8")
