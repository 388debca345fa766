"""A long movie through detect → windows → encode in chunks of frames (dask): peak memory of the
whole process tree, frames per second against the in-memory path, and one against two workers.

    python benchmarks/large_movie.py -o /tmp/large [--frames 1000] [--size 1024] [--process 1000]
        [--chunk 4] [--small 20] [--scaling 16] [--method auto] [--json result.json]

1. Writes a deterministic ``(frames, size, size)`` float32 ``movie.npy`` (1000 × 1024² = 4 GB): four
   graphene frames (``napari-rvae sample graphene-movie``), each later frame one of them shifted by
   a slow drift with its own Poisson-like noise (seeded by the frame number).
2. Chunked: ``detect_atoms_chunked`` (default method: the shipped segmenter) then
   ``encode_sites_chunked`` (an rVAE of the default size, 24 px windows; its weights are its
   initial ones: encoding costs the same) on the first ``--process`` frames of the memory map, two
   local worker processes with one thread each. The peak resident memory of the process tree
   (this run and every dask worker) is sampled every 0.2 s with psutil: the sum of RSS (pages of
   shared libraries such as torch counted once per process) and the sum of PSS (shared pages
   divided among the processes that map them: what the tree really occupies).
3. In memory: ``detect_atoms`` + ``encode_sites`` on the first ``--small`` frames loaded into RAM,
   in one process with two threads (the default).
4. Scaling: the chunked run on the first ``--scaling`` frames on a warm ``dask.distributed.LocalCluster``
   of one worker process, then two (one thread each).

The target compares the chunked rate on the long movie with the in-memory rate on the short one.

Every measured run is its own child process. The result JSON records the CPU (model, SIMD flags),
the load average before and after each run, and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_movie(path: Path, frames: int, size: int, seed: int = 0) -> dict:
    """The movie on disk, written frame by frame (memory stays at a few frames)."""
    from napari_rvae.synth import make_sample

    start = time.perf_counter()
    base = make_sample("graphene-movie", seed=seed, frames=4, size=size)["data"].astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(frames, size, size))
    for t in range(frames):
        rng = np.random.default_rng(seed * 100_003 + t)
        drift = (t // 4) % 32
        frame = np.roll(base[t % 4], (drift // 2, drift), axis=(0, 1))
        out[t] = frame + rng.normal(0.0, 0.02, frame.shape).astype(np.float32)
        if t % 64 == 63:
            out.flush()
    out.flush()
    del out
    return {"path": str(path), "frames": frames, "size": size, "gigabytes": round(path.stat().st_size / 1e9, 3),
            "seconds": round(time.perf_counter() - start, 1)}


def make_model(folder: Path, movie: np.ndarray, window: int = 24) -> None:
    from napari_rvae.vae.config import VAEConfig
    from napari_rvae.vae.files import save_model
    from napari_rvae.vae.models import build_model

    lo, hi = (float(v) for v in np.percentile(movie[0], [0.1, 99.9]))
    model = build_model(VAEConfig(arch="rvae", window=(window, window), latent=2), seed=0)
    save_model(model, folder, normalisation={"mode": "global", "lo": lo, "hi": hi})


# ------------------------------------------------------------------------- the measured runs (children)
def run_chunked(movie_path: str, model: str, out: str, frames: int, chunk: int, workers: int, method: str) -> dict:
    from napari_rvae.chunks import ChunkSettings, detect_atoms_chunked, encode_sites_chunked, run_record

    movie = np.load(movie_path, mmap_mode="r")[:frames]
    settings = ChunkSettings(chunk=chunk, scheduler="processes", workers=workers)
    start = time.perf_counter()
    sites = detect_atoms_chunked(movie, Path(out) / "sites.parquet", settings=settings, method=method)
    detected = time.perf_counter()
    latents = encode_sites_chunked(model, movie, sites, Path(out) / "latents.parquet", settings=settings)
    done = time.perf_counter()
    record = run_record(latents)
    return {"frames": frames, "detect_s": detected - start, "encode_s": done - detected, "total_s": done - start,
            "frames_per_s": frames / (done - start), "windows": record["windows"].get("cut", 0),
            "sites": _rows(sites), "dask": record["dask"]}


def run_cluster(movie_path: str, model: str, out: str, frames: int, chunk: int, workers: int, method: str) -> dict:
    """The chunked run on a warm ``LocalCluster`` (workers started and their imports done before the
    clock starts), so the rate of one and two workers compares work, not start-up."""
    import distributed

    from napari_rvae.chunks import ChunkSettings, detect_atoms_chunked, encode_sites_chunked

    def warm():
        import torch  # noqa: F401

        import napari_rvae.detect.find  # noqa: F401
        import napari_rvae.segment  # noqa: F401
        import napari_rvae.vae.latents  # noqa: F401
        return True

    movie = np.load(movie_path, mmap_mode="r")[:frames]
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        client.run(warm)
        settings = ChunkSettings(chunk=chunk)
        start = time.perf_counter()
        sites = detect_atoms_chunked(movie, Path(out) / "sites.parquet", settings=settings, client=client,
                                     method=method)
        detected = time.perf_counter()
        encode_sites_chunked(model, movie, sites, Path(out) / "latents.parquet", settings=settings, client=client)
        done = time.perf_counter()
    return {"frames": frames, "workers": workers, "detect_s": detected - start, "encode_s": done - detected,
            "total_s": done - start, "frames_per_s": frames / (done - start)}


def _rows(folder) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in Path(folder).glob("part-*.parquet"))


def run_in_memory(movie_path: str, model: str, frames: int, method: str) -> dict:
    import torch

    from napari_rvae.detect import detect_atoms
    from napari_rvae.vae.files import load_model
    from napari_rvae.vae.latents import encode_sites

    movie = np.array(np.load(movie_path, mmap_mode="r")[:frames])
    start = time.perf_counter()
    sites = detect_atoms(movie, method=method)
    detected = time.perf_counter()
    table, report = encode_sites(load_model(model), movie, sites)
    done = time.perf_counter()
    return {"frames": frames, "detect_s": detected - start, "encode_s": done - detected, "total_s": done - start,
            "frames_per_s": frames / (done - start), "windows": report.cut, "sites": len(sites),
            "torch_threads": torch.get_num_threads()}


CHILD = {"chunked": run_chunked, "memory": run_in_memory, "cluster": run_cluster}


def measured(kind: str, **kwargs) -> dict:
    """Run one measurement in a child process; sample the peak RSS of the child and all its descendants."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if kind == "memory":
        env["OMP_NUM_THREADS"] = "2"
    load_before = os.getloadavg()
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, json.dumps(kwargs)], env=env,
                            stdout=subprocess.PIPE, text=True)
    peak = [0, 0]  # sum of RSS (shared library pages counted once per process), sum of PSS (shared pages split)
    stop = threading.Event()

    def sample():
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [parent] + parent.children(recursive=True)
                rss = pss = 0
                for p in tree:
                    try:
                        info = p.memory_full_info()
                        rss, pss = rss + info.rss, pss + info.pss
                    except psutil.Error:
                        pass
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(peak_rss_gb=round(peak[0] / 1e9, 3), peak_pss_gb=round(peak[1] / 1e9, 3), load_before=[round(v, 2) for v in load_before],
                  load_after=[round(v, 2) for v in os.getloadavg()])
    print(f"{kind} {kwargs.get('frames')} frames, {kwargs.get('workers', '-')} workers: "
          f"{result['frames_per_s']:.3f} frames/s, peak RSS {result['peak_rss_gb']:.2f} GB "
          f"(PSS {result['peak_pss_gb']:.2f} GB), "
          f"load {result['load_before'][0]:.1f}", flush=True)
    return result


def main() -> None:
    from benchmarks.detection_speed import cpu

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="work folder (the movie is written here)")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--process", type=int, default=None, help="frames of the movie processed (default all)")
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=20, help="frames of the in-memory comparison")
    parser.add_argument("--scaling", type=int, default=16, help="frames of the 1- vs 2-worker comparison (0: skip)")
    parser.add_argument("--method", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=("large", "memory", "scaling"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    movie = args.out / "movie.npy"
    result = {"cpu": cpu(), "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    existing = movie.exists() and np.load(movie, mmap_mode="r").shape == (args.frames, args.size, args.size)
    result["movie"] = {"path": str(movie), "reused": True} if existing else make_movie(movie, args.frames, args.size)
    print(f"movie: {result['movie']}", flush=True)
    model = args.out / "model"
    make_model(model, np.load(movie, mmap_mode="r")[:1])
    common = {"movie_path": str(movie), "model": str(model), "method": args.method}
    if "large" not in args.skip:
        result["chunked"] = measured("chunked", out=str(args.out / "large"), frames=args.process or args.frames,
                                     chunk=args.chunk, workers=args.workers, **common)
    if "memory" not in args.skip:
        result["in_memory"] = measured("memory", frames=args.small, **common)
        if "chunked" in result:
            result["rate_ratio_in_memory_over_chunked"] = round(
                result["in_memory"]["frames_per_s"] / result["chunked"]["frames_per_s"], 3)
    if args.scaling and "scaling" not in args.skip:
        one = measured("cluster", out=str(args.out / "w1"), frames=args.scaling, chunk=4, workers=1, **common)
        two = measured("cluster", out=str(args.out / "w2"), frames=args.scaling, chunk=4, workers=2, **common)
        result["scaling"] = {"one_worker": one, "two_workers": two,
                             "speedup": round(two["frames_per_s"] / one["frames_per_s"], 3)}
    text = json.dumps(result, indent=1, default=float)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(CHILD[sys.argv[2]](**json.loads(sys.argv[3])), default=float))
    else:
        main()
