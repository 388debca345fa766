"""What a paper's reproduction found: checks ("paper says / we get"), figures, time; the report folder.

A :class:`Check` is one headline number of a paper, what we measured on the sample, and
whether it is within the stated tolerance (``ok``; ``None`` for a result that is shown but
has no tolerance). :func:`write_report` writes ``report.md`` (the table and the figures),
``table.csv`` and ``reproduce.json`` into the report folder.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: the file that marks a folder as a reproduction report (``--overwrite`` replaces it as a whole)
REPORT_MARKER = "reproduce.json"


@dataclass
class Check:
    """One headline result.

    quantity : what is compared, in the paper's words
    paper_says : the paper's result (text, with its number where it gives one)
    we_get : what the run measured (text)
    tolerance : the bound the measurement is held to (text)
    ok : within tolerance; ``None`` when the row is shown without a tolerance
    value : the measured number, when there is one
    """

    quantity: str
    paper_says: str
    we_get: str
    tolerance: str = ""
    ok: bool | None = None
    value: float | None = None

    def __post_init__(self):
        # numpy's False is not ``False``: a comparison's result must count as a failure
        if self.ok is not None:
            self.ok = bool(self.ok)
        if self.value is not None:
            self.value = float(self.value)


@dataclass
class PaperResult:
    """All a paper's checks, its figures (paths relative to the report folder) and how long it took."""

    paper: str
    title: str
    data: str = ""
    checks: list[Check] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]


def _mark(ok: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "shown"}[ok]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(results: list[PaperResult]) -> str:
    """The "paper says / we get" table of all papers, one row per check."""
    lines = ["| paper | quantity | paper says | we get | tolerance | within |", "|---|---|---|---|---|---|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.paper} | (run failed) | | {_cell(r.error)} | | **NO** |")
        for c in r.checks:
            lines.append(f"| {r.paper} | {_cell(c.quantity)} | {_cell(c.paper_says)} | {_cell(c.we_get)} | "
                         f"{_cell(c.tolerance)} | {_mark(c.ok)} |")
    return "\n".join(lines)


def report_markdown(results: list[PaperResult], header: str = "") -> str:
    out = ["# napari-rvae reproduce", ""]
    if header:
        out += [header, ""]
    out += ["| paper | title | data | time | result |", "|---|---|---|---|---|"]
    for r in results:
        verdict = "error" if r.error else ("all within tolerance" if r.ok else f"{len(r.failed)} out of tolerance")
        out.append(f"| {r.paper} | {_cell(r.title)} | {_cell(r.data)} | {r.seconds:.0f} s | {verdict} |")
    out += ["", "## Paper says / we get", "", markdown_table(results), ""]
    for r in results:
        out += [f"## {r.paper}: {r.title}", ""]
        if r.data:
            out += [f"Data: {r.data}. Time: {r.seconds:.0f} s.", ""]
        for note in r.notes:
            out += [f"- {note}"]
        if r.notes:
            out.append("")
        for path, caption in r.figures:
            out += [f"![{_cell(caption)}]({path})", "", f"*{_cell(caption)}*", ""]
    return "\n".join(out)


def write_report(folder: Path, results: list[PaperResult], header: str = "") -> None:
    """Write report.md, table.csv and reproduce.json into ``folder`` (a staging folder)."""
    from ..io.files import atomic_write_text, write_json

    folder = Path(folder)
    atomic_write_text(folder / "report.md", report_markdown(results, header))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["paper", "quantity", "paper_says", "we_get", "tolerance", "ok", "value"])
    for r in results:
        for c in r.checks:
            w.writerow([r.paper, c.quantity, c.paper_says, c.we_get, c.tolerance,
                        "" if c.ok is None else c.ok, "" if c.value is None else c.value])
    atomic_write_text(folder / "table.csv", buf.getvalue())
    write_json(folder / REPORT_MARKER, {"papers": [asdict(r) | {"ok": r.ok} for r in results],
                                        "ok": all(r.ok for r in results)})
