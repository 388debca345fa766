"""Paper 003 (placeholder until its experiment is written)."""

from __future__ import annotations

from .report import PaperResult

TITLE = "paper 003"
DATA = ""


def run(folder, *, seed: int = 0, log=print) -> PaperResult:
    raise NotImplementedError("not written yet")
