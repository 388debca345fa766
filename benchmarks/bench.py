"""``napari-rvae bench``: the project's benchmark, one JSON for every stage.

Sections (``--sections``, default all):

* ``vae`` — rVAE training throughput and quality vs AtomAI (side by side when
  ``--atomai-python`` is given), encode / decode / manifold latency
  (:func:`benchmarks.vae.bench.run_bench`).
* ``segment`` — U-Net inference on 512² frames, ours vs the reference
  implementation of the same network (:mod:`benchmarks.segment`).
* ``refine`` — batched sub-pixel Gaussian refinement vs per-atom ``curve_fit``
  (:mod:`benchmarks.refine`).
* ``gui`` — click-to-decoded-window latency, explorer pan/zoom and lasso at
  200 000 points (:mod:`benchmarks.gui`), and the event loop's gaps (10 ms timer) while
  detection, training, segmentation and analysis run in the docks (``stall``,
  :mod:`benchmarks.stall`); needs a display or Xvfb, run in subprocesses so the core never
  imports Qt.
* ``gpu`` — rVAE training samples/s, encode / decode and U-Net inference on CUDA, with the
  device's name (:mod:`benchmarks.gpu`); recorded as skipped where CUDA is not available.

Every section records the machine load when it ran; a section that fails is
reported as an error in the JSON and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from benchmarks import subprocess_env

SECTIONS = ("vae", "segment", "refine", "gui", "gpu")


def _load() -> list:
    return [round(v, 2) for v in os.getloadavg()]


def _run_vae(options: dict, log: Callable) -> dict:
    from benchmarks.vae.bench import run_bench

    return run_bench(None, log=log, **options)


def _run_segment(options: dict, log: Callable) -> dict:
    from benchmarks.segment import bench_unet_inference, bench_vs_atomai

    if options.get("atomai_python"):  # AtomAI's own Segmentor.predict, alternating with ours
        return bench_vs_atomai(options["atomai_python"], threads=options.get("threads") or os.cpu_count() or 2)
    return bench_unet_inference(threads=options.get("threads"))


def _run_refine(options: dict, log: Callable) -> dict:
    from benchmarks.refine import refinement_benchmark

    return refinement_benchmark()


def _run_gui(options: dict, log: Callable) -> dict:
    code = (
        "import json, sys\n"
        "from benchmarks.gui import gui_benchmarks, stall_benchmarks\n"
        "result = gui_benchmarks()\n"
        "result['stall'] = stall_benchmarks()\n"
        "json.dump(result, sys.stdout)\n"
    )
    command = [sys.executable, "-c", code]
    if not os.environ.get("DISPLAY"):
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"] + command
    done = subprocess.run(command, capture_output=True, text=True, timeout=3000, env=subprocess_env())
    if done.returncode != 0:
        raise RuntimeError(f"GUI benchmark failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_gpu(options: dict, log: Callable) -> dict:
    from benchmarks.gpu import gpu_benchmark

    return gpu_benchmark(n=options.get("n", 20000), log=log)


RUNNERS = {"vae": _run_vae, "segment": _run_segment, "refine": _run_refine, "gui": _run_gui, "gpu": _run_gpu}


def run(out: str | os.PathLike | None, sections=SECTIONS, vae_options: dict | None = None,
        log: Callable = print) -> dict:
    """Run the chosen sections; write the results JSON atomically to ``out`` when given."""
    from napari_rvae import __version__
    from napari_rvae.io.files import write_json

    unknown = [s for s in sections if s not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown benchmark section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    results: dict = {
        "napari_rvae": __version__,
        "env": {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
                "load_at_start": _load()},
        "sections": {},
    }
    for name in sections:
        log(f"== {name} (load {_load()})")
        start = time.perf_counter()
        try:
            section = RUNNERS[name](dict(vae_options or {}), log)
            section = {"ok": True, **section}
        except Exception as err:  # a failing section must not lose the others
            section = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            log(f"   {name} failed: {section['error']}")
        section["wall_s"] = round(time.perf_counter() - start, 2)
        section["load_at_end"] = _load()
        results["sections"][name] = section
        if out is not None:
            write_json(out, results)
    return results


# ------------------------------------------------------------- command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``napari-rvae bench`` options."""
    p.add_argument("-o", "--output", type=Path, required=True, help="results JSON")
    p.add_argument("--n", type=int, default=20000, help="windows of the reference data")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the quality runs")
    p.add_argument("--threads", type=int, help="torch threads (default all cores); AtomAI gets the same")
    p.add_argument("--atomai-python", help="Python of a venv with AtomAI 0.8.1: time its rVAE side by side")
    p.add_argument("--atomai-scripts", default=os.environ.get("NAPARI_RVAE_ATOMAI_SCRIPTS"),
                   help="folder holding atomai_baseline.py and synth.py (the reference benchmark)")
    p.add_argument("--atomai-n", type=int, default=2000, help="windows per AtomAI timing run")
    p.add_argument("--repeats", type=int, default=2, help="alternating timing rounds")
    p.add_argument("--ideas", action="store_true", help="also time each speed idea separately")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of every stage on tiny settings (600 windows, 1 epoch, 1 round); "
                        "the numbers mean nothing")
    p.add_argument("--quality-runs", default="atomai_settings,shipped_defaults,shipped_defaults_pixel_fraction_0.25",
                   help="comma-separated quality runs (atomai_settings: lr 1e-4 for --epochs; the others stop "
                        "once AtomAI's 3-epoch quality is reached)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated parts to run (default all: {', '.join(SECTIONS)}); "
                        "the options above apply to 'vae'")


def vae_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`benchmarks.vae.bench.run_bench` from the ``bench`` options."""
    if args.atomai_python and not args.atomai_scripts:
        raise ValueError("--atomai-python needs --atomai-scripts (the folder with atomai_baseline.py and synth.py)")
    if args.quick:
        args.n, args.epochs, args.atomai_n, args.repeats = 600, 1, 300, 1
    return dict(n=args.n, epochs=args.epochs, threads=args.threads, atomai_python=args.atomai_python,
                atomai_script_dir=args.atomai_scripts, atomai_n=args.atomai_n, repeats=args.repeats, ideas=args.ideas,
                quality_runs=tuple(r for r in args.quality_runs.split(",") if r))


def main(args: argparse.Namespace) -> int:
    """Run ``napari-rvae bench`` with parsed options; 1 when a section failed."""
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    results = run(args.output, sections, vae_options=vae_options(args), log=lambda s: print(s, flush=True))
    failed = [name for name, part in results["sections"].items() if not part.get("ok")]
    print(f"results written to {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
