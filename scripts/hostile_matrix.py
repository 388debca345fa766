"""The matrix of hostile files: every readable format, truncated, flipped and with inflated sizes.

    PYTHONPATH=src python scripts/hostile_matrix.py --per-format 60 --out /tmp/hostile

Writes one small valid file per format (``tests/_hostile.py``; real instrument files from
``../shared/real`` too when present), makes ``--per-format`` mutations of each, adds the
hand-made files that declare gigabytes (``inflated:…``, each must be refused), reads every
one in a child process whose address space is capped at 500 MB above its start
(``tests/_memcap.py``), and prints per format how many were read (ok), refused with one
line (clean), refused badly (dirty: another exception or a multi-line message), ran out of
the cap (memory) or took longer than the alarm (slow), with the largest peak RSS added by
one file. Exit status 1 when any file is dirty, memory or slow.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import _hostile  # noqa: E402


def run(per_format: int, out: Path, cap_mb: float = 500, seconds: int = 20, seed: int = 0) -> dict:
    valid = _hostile.valid_files(out / "valid")
    cases: dict[str, list[Path]] = {}
    for name, path in valid.items():
        content = path.read_bytes()
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        cases[name] = [path]
        for i, (kind, data) in enumerate(_hostile.mutations(content, seed + zlib.crc32(name.encode()), per_format)):
            label = "".join(c if c.isalnum() else "-" for c in kind)
            target = folder / f"m{i:04d}-{label}{path.suffix}"
            target.write_bytes(data)
            cases[name].append(target)
    for name, path in _hostile.inflated_files(out / "inflated").items():
        cases[f"inflated:{name}"] = [path]
    env_path = str(HERE.parent / "src")
    rows = []
    for name, paths in cases.items():
        done: set[str] = set()
        todo = [str(p) for p in paths]
        while todo:  # a crashed child (segfault in a C library) is itself an outcome; go on after it
            proc = subprocess.run([sys.executable, str(HERE.parent / "tests" / "_memcap.py"), str(cap_mb), str(seconds),
                                   *todo], capture_output=True, text=True, env={**_env(), "PYTHONPATH": env_path})
            for line in proc.stdout.splitlines():
                row = json.loads(line)
                row["format"] = name
                rows.append(row)
                done.add(row["file"])
            todo = [p for p in todo if p not in done]
            if todo:
                rows.append({"format": name, "file": todo[0], "outcome": "crash", "peak_mb": float("nan"),
                             "message": f"child exited {proc.returncode}: {proc.stderr.strip()[-200:]}"})
                done.add(todo[0])
                todo = todo[1:]
    return {"rows": rows}


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}


def summarise(rows: list[dict]) -> str:
    table = collections.defaultdict(collections.Counter)
    peak: dict[str, float] = collections.defaultdict(float)
    for row in rows:
        table[row["format"]][row["outcome"]] += 1
        if row.get("peak_mb") == row.get("peak_mb"):
            peak[row["format"]] = max(peak[row["format"]], row["peak_mb"])
    kinds = ("ok", "clean", "dirty", "memory", "slow", "crash")
    lines = [f"{'format':34s} " + " ".join(f"{k:>6s}" for k in kinds) + "  peak MB"]
    for fmt, counts in table.items():
        lines.append(f"{fmt:34s} " + " ".join(f"{counts[k]:6d}" for k in kinds) + f"  {peak[fmt]:7.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-format", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the generated files")
    parser.add_argument("--cap-mb", type=float, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    result = run(args.per_format, args.out, args.cap_mb, args.seconds)
    print(summarise(result["rows"]))
    bad = [r for r in result["rows"] if r["outcome"] in ("dirty", "memory", "slow", "crash")
           or (r["format"].startswith("inflated:") and r["outcome"] != "clean")]
    for row in bad[:40]:
        print(f"  {row['outcome']:6s} {row['format']:10s} {Path(row['file']).name}: {row['message'][:160]}")
    if args.json:
        args.json.write_text(json.dumps(result["rows"], indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
