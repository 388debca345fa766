"""The matrix of bad command lines: refused outputs, inputs over outputs, meaningless
parameters, diverging training, unusable displays — each run as a user would, in a fresh process.

    PYTHONPATH=src python scripts/cli_matrix.py --out /tmp/cli-matrix

For every case it records the exit status, whether stderr is one line (no traceback), the
peak memory of the process, and whether any protected file (the inputs, a trained model)
changed. A case passes when it ends as expected (``ok``: status 0; ``refused``: status 1 or 2
with one line) and nothing protected changed. Exit status 1 when any case fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FAST = ["--threads", "1", "--encoder-widths", "32", "--decoder-widths", "16,16"]


def _digest(path: Path) -> str:
    if path.is_dir():
        return ";".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "-"


def setup(w: Path) -> None:
    w.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "napari_rvae.cli"]
    subprocess.run(cli + ["sample", "graphene-movie", "-o", str(w / "g.npz"), "--frames", "2", "--size", "128"],
                   check=True, env=env, capture_output=True)
    with np.load(w / "g.npz") as sample:
        np.save(w / "movie.npy", sample["data"].astype(np.float32))
    np.save(w / "w.npy", rng.uniform(0, 1, (300, 12, 12)).astype(np.float32))
    (w / "empty.npy").write_bytes(b"")
    (w / "notes").mkdir(exist_ok=True)
    (w / "notes" / "keep.txt").write_text("not ours")
    subprocess.run(cli + ["detect", str(w / "movie.npy"), "-o", str(w / "sites.csv")], check=True, env=env,
                   capture_output=True)
    subprocess.run(cli + ["train", str(w / "w.npy"), "-o", str(w / "M"), "--epochs", "2", *FAST], check=True, env=env,
                   capture_output=True)


def cases(w: Path) -> list[tuple[str, list[str], str, dict]]:
    """(name, argv, expected ok|refused, environment changes)."""
    m, mv, ws, s = str(w / "M"), str(w / "movie.npy"), str(w / "w.npy"), str(w / "sites.csv")
    none: dict = {}
    return [
        ("detect over its input", ["detect", mv, "-o", mv], "refused", none),
        ("detect -o x.npy", ["detect", mv, "-o", str(w / "x.npy")], "refused", none),
        ("detect -o into a model", ["detect", mv, "-o", f"{m}/sites.csv"], "refused", none),
        ("detect -o /proc/p", ["detect", mv, "-o", "/proc/p/s.csv"], "refused", none),
        ("detect -o a folder", ["detect", mv, "-o", str(w / "notes")], "refused", none),
        ("detect --sigma 1e6", ["detect", mv, "-o", str(w / "d.csv"), "--sigma", "1e6"], "refused", none),
        ("detect --sigma nan", ["detect", mv, "-o", str(w / "d.csv"), "--sigma", "nan"], "refused", none),
        ("detect --min-distance 1e5", ["detect", mv, "-o", str(w / "d.csv"), "--min-distance", "100000"], "refused", none),
        ("detect --rescale 1e4", ["detect", mv, "-o", str(w / "d.csv"), "--rescale", "1e4"], "refused", none),
        ("detect --edge-margin -1", ["detect", mv, "-o", str(w / "d.csv"), "--edge-margin", "-1"], "refused", none),
        ("detect --bond-length 0 --rings", ["detect", mv, "-o", str(w / "d.csv"), "--rings", "--bond-length", "0"],
         "refused", none),
        ("detect ok", ["detect", mv, "-o", str(w / "d.csv")], "ok", none),
        ("train over a model", ["train", ws, "-o", m, "--epochs", "1", *FAST], "refused", none),
        ("train --epochs 0", ["train", ws, "-o", str(w / "T0"), "--epochs", "0"], "refused", none),
        ("train empty .npy", ["train", str(w / "empty.npy"), "-o", str(w / "T1")], "refused", none),
        ("train --beta nan", ["train", ws, "-o", str(w / "T2"), "--beta", "nan"], "refused", none),
        ("train --lr 0", ["train", ws, "-o", str(w / "T2"), "--lr", "0"], "refused", none),
        ("train --lr -1", ["train", ws, "-o", str(w / "T2"), "--lr", "-1"], "refused", none),
        ("train --noise-sigma inf", ["train", ws, "-o", str(w / "T2"), "--noise-sigma", "inf"], "refused", none),
        ("train --test-fraction 1", ["train", ws, "-o", str(w / "T2"), "--test-fraction", "1"], "refused", none),
        ("train --batch 0", ["train", ws, "-o", str(w / "T2"), "--batch", "0"], "refused", none),
        ("train huge widths", ["train", ws, "-o", str(w / "T2"), "--decoder-widths", "100000,100000"], "refused", none),
        ("train --window 100000", ["train", mv, "--sites", s, "-o", str(w / "T2"), "--window", "100000"], "refused", none),
        ("train --lr 1e9 (diverges)", ["train", ws, "-o", str(w / "T3"), "--epochs", "3", "--lr", "1e9", *FAST],
         "refused", none),
        ("train --resume --lr 1e9 (diverges)", ["train", ws, "-o", m, "--epochs", "2", "--resume", "--lr", "1e9"],
         "refused", none),
        ("train --resume --arch vae", ["train", ws, "-o", m, "--resume", "--arch", "vae"], "refused", none),
        ("train --resume --latent 5", ["train", ws, "-o", m, "--resume", "--latent", "5"], "refused", none),
        ("train --resume missing", ["train", ws, "-o", str(w / "nothing"), "--resume"], "refused", none),
        ("train into a folder of other files", ["train", ws, "-o", str(w / "notes"), "--overwrite"], "refused", none),
        ("train -o /proc/p", ["train", ws, "-o", "/proc/p"], "refused", none),
        ("encode empty .npy", ["encode", m, str(w / "empty.npy"), "-o", str(w / "l.csv")], "refused", none),
        ("encode over its sites", ["encode", m, mv, "--sites", s, "-o", s], "refused", none),
        ("encode -o lat.npy", ["encode", m, ws, "-o", str(w / "l.npy")], "refused", none),
        ("encode ok", ["encode", m, ws, "-o", str(w / "l.csv")], "ok", none),
        ("decode over the weights", ["decode", m, "-o", f"{m}/model.safetensors"], "refused", none),
        ("decode into the model", ["decode", m, "-o", f"{m}/m.png"], "refused", none),
        ("decode --grid 2000", ["decode", m, "-o", str(w / "m.png"), "--grid", "2000"], "refused", none),
        ("decode --grid 0", ["decode", m, "-o", str(w / "m.png"), "--grid", "0"], "refused", none),
        ("decode --span nan", ["decode", m, "-o", str(w / "m.png"), "--span", "nan"], "refused", none),
        ("decode ok", ["decode", m, "-o", str(w / "m.png"), "--grid", "5"], "ok", none),
        ("chemistry-map --grid 1e5", ["chemistry-map", m, "-o", str(w / "c.png"), "--grid", "100000"], "refused", none),
        ("sample -o s.npy", ["sample", "ferroic", "-o", str(w / "s.npy")], "refused", none),
        ("sample --size 1e6", ["sample", "ferroic", "-o", str(w / "s.npz"), "--size", "1000000"], "refused", none),
        ("sample over its own input?", ["sample", "graphene-movie", "-o", str(w / "g.npz"), "--frames", "1",
                                         "--size", "64"], "ok", none),
        ("analyze -o /proc/p", ["analyze", mv, "-o", "/proc/p", "--epochs", "1"], "refused", none),
        ("analyze -o a file", ["analyze", mv, "-o", s], "refused", none),
        ("analyze -o its own folder", ["analyze", mv, "-o", str(w)], "refused", none),
        ("analyze --window 1e5", ["analyze", mv, "-o", str(w / "P"), "--window", "100000"], "refused", none),
        ("analyze --clusters 0", ["analyze", mv, "-o", str(w / "P"), "--clusters", "0"], "refused", none),
        ("analyze ok", ["analyze", mv, "-o", str(w / "P"), "--epochs", "1", "--window", "12"], "ok", none),
        ("analyze over a project", ["analyze", mv, "-o", str(w / "P"), "--epochs", "1", "--window", "12"], "refused",
         none),
        ("analyze over a project --overwrite", ["analyze", mv, "-o", str(w / "P"), "--epochs", "1", "--window", "12",
                                                "--overwrite"], "ok", none),
        ("info on a truncated file", ["info", str(w / "cut.npy")], "refused", none),
        ("bench -o x.csv", ["bench", "-o", str(w / "b.csv")], "refused", none),
        ("demo --no-run, unusable display", ["demo", "--no-run"], "refused", {"DISPLAY": ":987"}),
        ("demo --no-run, no display", ["demo", "--no-run"], "refused", {"DISPLAY": None}),
        ("demo, unusable display -> headless", ["demo", "--epochs", "1", "-o", str(w / "D")], "ok", {"DISPLAY": ":987"}),
    ]


def run(out: Path) -> list[dict]:
    setup(out)
    (out / "cut.npy").write_bytes((out / "movie.npy").read_bytes()[:500])
    protected = [out / n for n in ("movie.npy", "w.npy", "sites.csv", "g.npz", "M", "notes")]
    rows = []
    for name, argv, expected, env_change in cases(out):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for key, value in env_change.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        before = {p: _digest(p) for p in protected}
        start = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        done = subprocess.run([sys.executable, "-m", "napari_rvae.cli", *argv], capture_output=True, text=True,
                              env=env, timeout=900)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        changed = [p.name for p in protected if _digest(p) != before[p]
                   and not (name.startswith("sample over") and p.name == "g.npz")]
        err = done.stderr.strip()
        one_line = "Traceback" not in err and len([line for line in err.splitlines() if line.strip()]) <= 1
        if expected == "ok":
            passed = done.returncode == 0 and not changed
        else:
            passed = done.returncode in (1, 2) and one_line and bool(err) and not changed
        rows.append({"case": name, "expected": expected, "status": done.returncode, "one_line": one_line,
                     "changed": changed, "seconds": round(seconds, 1),
                     "peak_mb_max_so_far": round(max(usage, peak) / 1024), "passed": passed,
                     "message": err.splitlines()[-1][:220] if err else ""})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="scratch folder")
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    rows = run(args.out)
    for r in rows:
        mark = "pass" if r["passed"] else "FAIL"
        print(f"{mark} {r['case']:40s} exit {r['status']:3d} {r['seconds']:6.1f} s  {r['message'][:150]}")
    failed = [r for r in rows if not r["passed"]]
    print(f"{len(rows) - len(failed)}/{len(rows)} cases as expected")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
