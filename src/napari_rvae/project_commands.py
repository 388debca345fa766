"""The ``analyze`` and ``demo`` subcommands: the whole pipeline into a project folder.

``analyze`` runs a movie through detection, windows, training, encoding and the latent
analysis; ``demo`` does the same on the shipped graphene sample, in napari when a display
works (tested in a child process first) and headless otherwise. What a failed run computed
(sites, the model of the last good epoch) is kept beside the output and the message says where.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .io.outputs import describe_os_error, write_or_rescue

# --------------------------------------------------------------------- demo
def add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true",
                   help="run the pipeline without a window and write figures and tables (automatic when there is no "
                        "usable display)")
    p.add_argument("--no-run", action="store_true", help="open napari with the sample and the docks but do not start the pipeline")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="headless: project folder for sites.csv, model/, figures/, run.json (default: a new temporary folder)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 12)")


#: a child process that opens Qt and an OpenGL context: a display that fails here would abort napari
_DISPLAY_PROBE = """
import sys
from qtpy.QtGui import QOpenGLContext
from qtpy.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
sys.exit(0 if QOpenGLContext().create() else 3)
"""


def usable_display(timeout: float = 30.0) -> tuple[bool, str]:
    """Whether napari can open a window here, tested in a child process (a broken display makes Qt
    abort the whole process, so the demo must not find out in its own). Returns ``(ok, why not)``."""
    import os
    import subprocess

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "$DISPLAY is unset"
    try:
        done = subprocess.run([sys.executable, "-c", _DISPLAY_PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"opening a window did not answer within {timeout:.0f} s"
    except OSError as err:
        return False, describe_os_error(err)
    if done.returncode == 0:
        return True, ""
    lines = [line.strip() for line in (done.stderr or "").splitlines() if line.strip()]
    telling = [line for line in lines if "display" in line.lower() or "connect" in line.lower()]
    why = (telling or lines or ["no OpenGL context" if done.returncode == 3 else f"exit status {done.returncode}"])[0]
    return False, f"{os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY') or 'the display'} is set but "\
                  f"unusable ({why[:160]})"


def run_demo(args: argparse.Namespace) -> int:
    import os

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be ≥ 1, got {args.epochs}")
    if not args.headless:
        ok, why = usable_display()
        if ok:
            from .widgets.demo import run_demo_gui

            return run_demo_gui(run=not args.no_run)
        if args.no_run:
            raise ValueError(f"--no-run opens napari without running the pipeline, but there is no usable display ({why});"
                             " drop --no-run to run the demo headless")
        print(f"no usable display ({why}): running the demo pipeline headless", flush=True)
    elif args.no_run:
        raise ValueError("--headless with --no-run would do nothing; drop one of them")
    import tempfile

    from ._samples import _load
    from .pipeline import demo_settings, run_pipeline, write_outputs

    out = args.out or Path(tempfile.mkdtemp(prefix="napari-rvae-demo-"))
    # two OpenMP threads collapse when another process is busy on a core: then train on one
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= 1.0
    settings = demo_settings(leave_core_for_gui=busy, **({"epochs": args.epochs} if args.epochs else {}))
    movie = _load("graphene-movie")["data"]
    print(f"graphene-movie sample: {movie.shape[0]} frames of {movie.shape[1]}×{movie.shape[2]} px")
    result = run_pipeline(movie, settings, log=lambda line: print("  " + line))
    written = write_or_rescue(lambda target: write_outputs(result, target, extra={"sample": "graphene-movie (shipped, seed 0)"}),
                              out, "the demo project")
    figures = sorted({p.name for k, p in written.items() if k.startswith("figure_")})
    print(f"done in {result.timings.get('total_s', float('nan')):.0f} s; wrote to {out}:")
    print(f"  sites.csv ({len(result.sites)} sites with angle, dx, dy, z0, z1, cluster), model/, results.npz, run.json")
    print(f"  project.json: reopen everything in napari with  napari {Path(out) / 'project.json'}")
    print(f"  figures/: {', '.join(figures)}")
    return 0


# ------------------------------------------------------------------ analyze
def add_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie", type=Path, help="a movie or image file in any readable format")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="project folder to write (sites.csv, model/, figures/, results.npz, run.json, project.json)")
    p.add_argument("--channel", type=int, default=0, help="which channel of a multi-channel file (default 0)")
    p.add_argument("--sites", type=Path, help="use this sites table (CSV/Parquet) instead of detecting sites")
    p.add_argument("--walls", action="store_true",
                   help="PFM phase movie: windows centred on domain-wall pixels (boundaries of the fitted domain map)")
    p.add_argument("--walls-per-frame", type=int, default=400, help="wall sites kept per frame with --walls (default 400)")
    p.add_argument("--grid", type=int, metavar="STEP",
                   help="windows on a regular grid with this step (pixels) in every frame, as paper 002 does for "
                        "segmented domain movies, instead of detecting atoms")
    p.add_argument("--detect-method", choices=("peaks", "threshold", "model"), default="peaks",
                   help="atom finding: peak finding (default), threshold, or the shipped U-Net (model)")
    p.add_argument("--window", type=int, default=24, help="window size in pixels (default 24)")
    p.add_argument("--arch", choices=("rvae", "skip-rvae", "shift-vae", "vae"), default="rvae", help="model (default rvae)")
    p.add_argument("--latent", type=int, default=2, help="content latents (default 2)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    p.add_argument("--per-frame", type=int, help="random sites per frame used for training (default all)")
    p.add_argument("--clusters", type=int, default=5, help="GMM clusters on the latents (default 5)")
    p.add_argument("--bias", type=Path,
                   help="bias per frame: CSV (frame,bias) or .npz with a 'bias' array; a sample .npz movie's own "
                        "bias is used automatically")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run_analyze(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from .analysis.hysteresis import read_bias
    from .io.movie import read_movie
    from .io.sites import read_sites
    from .pipeline import demo_settings, iter_pipeline, write_outputs

    _check_analyze_options(args)
    movies = read_movie(args.movie)
    if not 0 <= args.channel < len(movies):
        raise ValueError(f"--channel {args.channel}: the file has {len(movies)} channel(s) (0..{len(movies) - 1})")
    movie = movies[args.channel]
    data = np.asarray(movie.data, dtype=np.float32)
    print(f"{movie.name}: {data.shape[0]} frame(s) of {data.shape[1]}×{data.shape[2]} px", flush=True)
    sites = read_sites(args.sites) if args.sites else None
    if args.grid is not None and sites is None:
        from .patches import grid_sites

        if args.grid < 1:
            raise ValueError(f"--grid must be a step of at least 1 pixel, got {args.grid}")
        sites = grid_sites(data.shape, args.window, step=args.grid)
        print(f"grid: {len(sites)} sites (step {args.grid} px)", flush=True)
    if args.walls and sites is None:
        from .detect import find_walls

        sites = find_walls(data, n_per_frame=args.walls_per_frame, min_spacing=2.0, edge_margin=args.window / 2,
                           seed=args.seed)
        print(f"walls: {len(sites)} wall sites", flush=True)
    bias = None
    bias_source = args.bias
    if bias_source is None and args.movie.suffix.lower() == ".npz":
        with np.load(args.movie, allow_pickle=False) as archive:
            bias_source = args.movie if "bias" in archive.files else None
    if bias_source is not None:
        bias = read_bias(bias_source, frames=range(data.shape[0]))
    settings = demo_settings(detect_method=args.detect_method, window=args.window, arch=args.arch, latent=args.latent,
                             epochs=args.epochs, per_frame=args.per_frame, seed=args.seed)
    start = time.perf_counter()
    steps = iter_pipeline(data, settings, sites)
    while True:
        try:
            item = next(steps)
        except StopIteration as done:
            result = done.value
            break
        except ValueError as err:
            if getattr(err, "model", None) is not None:  # training diverged: keep the sites and the last finite model
                raise type(err)(f"{err}; {_keep_partial(args.output, err.sites, err.model)}", err.epoch) from None
            raise
        if item[0] == "stage":
            print(f"[{time.perf_counter() - start:6.1f} s] {item[1]}: {item[2]}", flush=True)
        elif item[0] == "epoch":
            stats = item[1]
            bar = "#" * int(20 * stats["epoch"] / settings.epochs)
            print(f"\r[{time.perf_counter() - start:6.1f} s] train [{bar:<20s}] epoch {stats['epoch']}/{settings.epochs}"
                  f" loss {stats.get('train_loss', float('nan')):.4g}", end="" if stats["epoch"] < settings.epochs else "\n",
                  flush=True)
    if bias is not None and len(bias) != data.shape[0]:
        raise ValueError(f"bias: {len(bias)} values for {data.shape[0]} frames")
    movie_path = args.movie.resolve()
    try:
        written = write_or_rescue(
            lambda target: write_outputs(result, target, movie=data, movie_path=movie_path, bias=bias,
                                         n_clusters=args.clusters, extra={"command": "analyze", "movie": str(args.movie)}),
            args.output, "the project")
    except ValueError as err:  # the analysis after training failed: keep the sites with latents and the model
        raise ValueError(f"{err}; {_keep_partial(args.output, result.sites, result.model)}") from None
    figures = sorted(p.name for k, p in written.items() if k.startswith("figure_"))
    print(f"done in {time.perf_counter() - start:.0f} s; project written to {args.output}")
    print(f"  sites.csv, model/, results.npz, run.json, project.json; figures/: {len(figures)} PNG")
    print(f"  reopen in napari: napari {args.output / 'project.json'}")
    return 0


def _check_analyze_options(args: argparse.Namespace) -> None:
    from .io.limits import bounded

    bounded(args.window, "--window", 4, 256, unit="pixels")
    bounded(args.latent, "--latent", 1, 64)
    bounded(args.epochs, "--epochs", 1, 1e6)
    bounded(args.clusters, "--clusters", 1, 100)
    if args.grid is not None:
        bounded(args.grid, "--grid", 1, 4096, unit="pixels")
    for name in ("per_frame", "walls_per_frame"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _keep_partial(output: Path, sites, model) -> str:
    """Save what a failed run computed (sites, model of the last finite epoch) next to the output
    (or in the temporary folder); say where."""
    from .io.outputs import rescue_places
    from .io.sites import write_sites
    from .vae import save_model

    for place in rescue_places(output):
        try:
            place.mkdir(parents=True)
            write_sites(sites, place / "sites.csv")
            save_model(model, place / "model")
        except OSError:
            continue
        return f"the sites and the model were kept in {place}"
    return "what was computed could not be kept anywhere"
