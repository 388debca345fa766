"""``napari-rvae reproduce``: each paper's headline experiment, end to end, on the samples.

Each paper has a module (``p000`` … ``p004``) with ``TITLE``, ``DATA`` and
``run(folder, *, seed, log) -> PaperResult``: it writes its figures into ``folder`` (the
paper's subfolder of the report) and returns its checks. :func:`reproduce` runs the
papers asked for, times each, and writes the report (:mod:`.report`).
"""

from __future__ import annotations

import importlib
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable

from .report import REPORT_MARKER, Check, PaperResult, write_report

#: paper id -> module; the ids are the seed texts' numbers (docs/reproduce.md names the papers)
PAPERS = {"000": "p000", "001": "p001", "002": "p002", "003": "p003", "004": "p004"}

__all__ = ["PAPERS", "REPORT_MARKER", "Check", "PaperResult", "paper_ids", "reproduce"]


def paper_ids(names: Iterable[str]) -> list[str]:
    """``["all"]`` or paper ids (``3``, ``003``, ``p003``) -> sorted unique ids; ValueError for others."""
    ids: list[str] = []
    for name in names:
        text = str(name).strip().lower().lstrip("p")
        if text == "all":
            ids.extend(PAPERS)
            continue
        if text.isdigit() and f"{int(text):03d}" in PAPERS:
            ids.append(f"{int(text):03d}")
            continue
        raise ValueError(f"unknown paper {name!r}: choose from {', '.join(PAPERS)} or all")
    return sorted(set(ids)) or list(PAPERS)


def _module(paper: str):
    return importlib.import_module(f"{__name__}.{PAPERS[paper]}")


def reproduce(papers: Iterable[str], folder: str | Path, *, seed: int = 0,
              log: Callable[[str], None] = print) -> list[PaperResult]:
    """Run each paper into ``folder/<id>/`` (``folder`` must exist, e.g. a staging folder); write the report.

    A paper whose run raises is reported as an error (with the reason) and the others still run.
    """
    folder = Path(folder)
    results: list[PaperResult] = []
    for paper in paper_ids(papers):
        mod = _module(paper)
        sub = folder / paper
        sub.mkdir(parents=True, exist_ok=True)
        log(f"[{paper}] {mod.TITLE}")
        t0 = time.perf_counter()
        try:
            result = mod.run(sub, seed=seed, log=lambda m, p=paper: log(f"[{p}] {m}"))
        except Exception as err:  # one paper failing must not lose the others' results
            result = PaperResult(paper, mod.TITLE, getattr(mod, "DATA", ""),
                                 error=f"{type(err).__name__}: {' '.join(str(err).split())}")
            (sub / "error.txt").write_text(traceback.format_exc())
        result.seconds = time.perf_counter() - t0
        result.figures = [(f"{paper}/{p}" if not p.startswith(f"{paper}/") else p, c) for p, c in result.figures]
        results.append(result)
        state = "error" if result.error else ("ok" if result.ok else f"{len(result.failed)} out of tolerance")
        log(f"[{paper}] {state} ({result.seconds:.0f} s)")
    write_report(folder, results, header=f"Seed {seed}.")
    return results
