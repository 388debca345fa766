"""Opening, checking and converting a movie bigger than memory: peak resident memory and throughput.

``python -m benchmarks.lazy_movies --frames 1000 --size 1024 --folder /big/disk`` writes a
``(frames, size, size)`` float32 ``.npy`` movie (4 GB at the defaults) frame by frame, then runs
each step in a fresh process and reports its peak resident memory (``VmHWM``) and time:

* ``check npy`` — ``read_movie`` (lazy above 1 GiB) and ``value_summary`` over every frame
  (NaN / ±inf counts, value range, constant frames), block by block;
* ``write zarr`` — ``zarr_store.write_movie`` of that lazy movie to OME-Zarr, block by block;
* ``check zarr`` — the same check on the OME-Zarr store;
* ``eager check npy`` (with ``--eager``) — the same check with the lazy threshold raised, i.e.
  the whole movie in memory, for comparison (needs the memory).

The movie has a known truth: frame ``t`` holds ``t + noise`` in ``[t, t + 1)``, and one NaN in
the middle frame, so the summary must report ``low ≥ 0``, ``high < frames`` and ``nan == 1``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, sys, time
from napari_rvae.io.movie import read_movie
from napari_rvae.io.validate import value_summary
step, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
(movie,) = read_movie(path)
result = {"lazy": movie.lazy}
if step == "write":
    from napari_rvae.io.zarr_store import write_movie
    write_movie(out, movie)
else:
    s = value_summary(movie.data)
    result.update(low=s.low, high=s.high, nan=s.nan, unusable=len(s.unusable))
result["seconds"] = round(time.perf_counter() - start, 2)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
result["peak_rss_mb"] = round(hwm / 1024, 1)
print(json.dumps(result))
"""


def make_movie(path: Path, frames: int, size: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    movie = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(frames, size, size))
    for t in range(frames):
        movie[t] = t + rng.random((size, size), dtype=np.float32) * 0.999
    movie[frames // 2, 0, 0] = np.nan
    movie.flush()
    del movie
    return path


def _child(step: str, path: Path, out: Path, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, step, str(path), str(out)], capture_output=True, text=True,
                          env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return json.loads(lines[-1])


def run(frames: int, size: int, folder: Path, eager: bool = False) -> dict:
    import os

    folder.mkdir(parents=True, exist_ok=True)
    movie = make_movie(folder / "movie.npy", frames, size)
    gb = movie.stat().st_size / 1e9
    env = dict(os.environ)
    results = {"frames": frames, "size": size, "movie_gb": round(gb, 2)}
    steps = [("check npy", "check", movie), ("write zarr", "write", movie), ("check zarr", "check", folder / "movie.zarr")]
    for label, step, path in steps:
        results[label] = _child(step, path, folder / "movie.zarr", env)
        if "seconds" in results[label]:
            results[label]["gb_per_s"] = round(gb / max(results[label]["seconds"], 1e-9), 2)
    if eager:
        results["eager check npy"] = _child("check", movie, folder / "movie.zarr", {**env, "NAPARI_RVAE_LAZY_BYTES": str(1 << 50)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--folder", type=Path, required=True, help="where the movie and its zarr copy are written")
    parser.add_argument("--eager", action="store_true", help="also check the movie read whole into memory")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.frames, args.size, args.folder, args.eager), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
