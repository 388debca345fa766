"""``napari-rvae reproduce [PAPER ...|all] -o FOLDER``: the papers' headline results, a report folder.

Exit status 0 when every result is within its tolerance, 1 when one is not (or a paper's
run failed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_reproduce(p: argparse.ArgumentParser) -> None:
    from . import PAPERS

    p.add_argument("papers", nargs="*", default=["all"], metavar="PAPER",
                   help=f"paper ids ({', '.join(PAPERS)}) or all (default: all); docs/reproduce.md names them")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="report folder: report.md (table and figures), table.csv, reproduce.json, one subfolder per paper")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples and the training (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: all cores); the papers' run times are stated for 2 cores")


def run_reproduce(args: argparse.Namespace) -> int:
    from ..io.folders import replaced_folder
    from . import REPORT_MARKER, paper_ids, reproduce

    papers = paper_ids(args.papers)  # a bad paper name costs nothing
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads {args.threads}: give 1 or more")
        import torch

        torch.set_num_threads(args.threads)
    with replaced_folder(args.output, markers=(REPORT_MARKER,)) as stage:
        results = reproduce(papers, stage, seed=args.seed, log=lambda m: print(m, flush=True))
    failed = [r for r in results if not r.ok]
    print(f"report: {os.fspath(args.output / 'report.md')}")
    for r in results:
        for c in r.failed:
            print(f"out of tolerance: {r.paper} {c.quantity}: paper {c.paper_says}; we get {c.we_get} ({c.tolerance})")
        if r.error:
            print(f"failed: {r.paper}: {r.error}")
    return 1 if failed else 0
