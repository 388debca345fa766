"""``napari-rvae bench``: the project's benchmark, one JSON for every stage.

Sections (``--sections``, default all):

* ``vae`` — rVAE training throughput and quality vs AtomAI (side by side when
  ``--atomai-python`` is given), encode / decode / manifold latency
  (:func:`napari_rvae.vae.bench.run_bench`).
* ``segment`` — U-Net inference on 512² frames, ours vs the reference
  implementation of the same network (:mod:`napari_rvae.segment.benchmark`).
* ``refine`` — batched sub-pixel Gaussian refinement vs per-atom ``curve_fit``
  (:mod:`napari_rvae.detect.benchmark`).
* ``gui`` — click-to-decoded-window latency, explorer pan/zoom, lasso and hover at
  200 000 points (:mod:`napari_rvae.widgets.benchmark`), and the event loop's gaps
  (10 ms timer) while detection, training, segmentation and analysis run in the
  docks (``stall``, :mod:`napari_rvae.widgets.benchmark_stall`); needs a display or
  Xvfb (started as needed), run in subprocesses so the core never imports Qt.

Every section records the machine load when it ran; a section that fails is
reported as an error in the JSON and the others still run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

SECTIONS = ("vae", "segment", "refine", "gui")


def _load() -> list:
    return [round(v, 2) for v in os.getloadavg()]


def _run_vae(options: dict, log: Callable) -> dict:
    from .vae.bench import run_bench

    return run_bench(None, log=log, **options)


def _run_segment(options: dict, log: Callable) -> dict:
    from .segment.benchmark import bench_unet_inference, bench_vs_atomai

    if options.get("atomai_python"):  # AtomAI's own Segmentor.predict, alternating with ours
        return bench_vs_atomai(options["atomai_python"], threads=options.get("threads") or os.cpu_count() or 2)
    return bench_unet_inference(threads=options.get("threads"))


def _run_refine(options: dict, log: Callable) -> dict:
    from .detect.benchmark import refinement_benchmark

    return refinement_benchmark()


def _run_gui(options: dict, log: Callable) -> dict:
    code = (
        "import json, sys\n"
        "from napari_rvae.widgets.benchmark import gui_benchmarks, stall_benchmarks\n"
        "result = gui_benchmarks()\n"
        "result['stall'] = stall_benchmarks()\n"
        "json.dump(result, sys.stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3000)
    if done.returncode != 0:
        raise RuntimeError(f"GUI benchmark failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


RUNNERS = {"vae": _run_vae, "segment": _run_segment, "refine": _run_refine, "gui": _run_gui}


def run(out: str | os.PathLike | None, sections=SECTIONS, vae_options: dict | None = None,
        log: Callable = print) -> dict:
    """Run the chosen sections; write the results JSON atomically to ``out`` when given."""
    from . import __version__
    from .io.files import write_json

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
