"""Analysis II subcommands of ``napari-rvae``: ``chemistry-map`` and ``beta-search``.

Each is an ``add_*(parser)`` / ``run_*(args)`` pair listed in ``cli.COMMANDS``;
torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _floats(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def write_rgb_png(path, rgb, mask=None, scale: int | None = None) -> Path:
    """Write an ``(H, W, 3)`` float [0, 1] map as PNG, row 0 at the bottom; ``~mask`` drawn grey."""
    from PIL import Image

    from ..io.files import atomic_write

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output: use a .png name, got {path.name}")
    img = (np.clip(np.asarray(rgb, float), 0, 1) * 255).astype(np.uint8)
    if mask is not None:
        img[~np.asarray(mask, bool)] = 128
    img = img[::-1]
    scale = scale or max(1, 400 // max(img.shape[:2]))
    pil = Image.fromarray(np.ascontiguousarray(img), "RGB").resize((img.shape[1] * scale, img.shape[0] * scale),
                                                                  Image.NEAREST)
    return atomic_write(path, lambda p: pil.save(p, format="PNG"))


# ------------------------------------------------------------ chemistry-map
def add_chemistry_map(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="trained model folder (skip-rVAE / rVAE on atom or hollow windows)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="map.npz (all maps) or map.png (RGB of n5, n6, n7; unphysical grey)")
    p.add_argument("--grid", type=int, default=200, help="grid points per latent axis (default 200)")
    p.add_argument("--span", type=float, default=3.0, help="grid covers [-span, span] on both latents (default 3)")
    p.add_argument("--dims", default="0,1", help="the two content latents of the map (default 0,1)")
    p.add_argument("--threshold", type=float, default=None,
                   help="atom pixels are decoded values above it (default: 0.5 where the model's windows were 0-1 "
                        "(atom probability map, or each window scaled to 0-1), else halfway between the decoded "
                        "background and atom peaks)")
    p.add_argument("--bond-length", type=float, default=None,
                   help="bond length in pixels (default: the atom spacing the model's windows were cut at, else the "
                        "median nearest-neighbour distance of the decoded atoms)")
    p.add_argument("--mode", choices=("atom", "hollow"), default="atom",
                   help="atom-centred windows (rings at the centre atom) or hollow-site-centred (ring size)")


def run_chemistry_map(args: argparse.Namespace) -> int:
    from ..vae import load_model
    from .chemistry import chemistry_map, model_decoder

    suffix = args.output.suffix.lower()
    if suffix not in (".npz", ".png"):
        raise ValueError(f"--output: use a .npz or .png name, got {args.output.name}")
    try:
        dims = tuple(int(v) for v in args.dims.split(","))
    except ValueError:
        raise ValueError(f"--dims: expected two latent indices like 0,1, got {args.dims!r}") from None
    if len(dims) != 2:
        raise ValueError(f"--dims: expected two latent indices like 0,1, got {args.dims!r}")
    from ..io.limits import bounded

    bounded(args.grid, "--grid", 2, 1000, why="grid points per latent axis")
    bounded(args.span, "--span", 0, 1e3, low_open=True)
    if args.threshold is not None:
        bounded(args.threshold, "--threshold", -1e6, 1e6)
    model = load_model(args.model)
    start = time.perf_counter()
    chem = chemistry_map(model_decoder(model, dims=dims), d=args.grid, span=args.span,
                         threshold="auto" if args.threshold is None else args.threshold,
                         bond_length=args.bond_length, mode=args.mode)
    seconds = time.perf_counter() - start
    if suffix == ".png":
        write_rgb_png(args.output, chem.rgb(), chem.physical)
    else:
        import json

        from .export import save_npz

        save_npz(args.output, {"grid": chem.grid, "counts": chem.counts, "ring_size": chem.ring_size,
                               "physical": chem.physical, "rgb": chem.rgb(), "n_atoms": chem.n_atoms,
                               **{f"n{k}": chem.n(k) for k in (5, 6, 7, 8)},
                               "params": np.array(json.dumps(chem.params))})
    print(f"{args.grid}x{args.grid} chemistry map ({args.mode}) in {seconds:.1f} s: "
          f"{chem.physical.mean():.0%} physical, bond length {chem.bond_length:.2f} px, atom threshold "
          f"{chem.params['threshold']:.3g} -> {args.output}")
    print(chem.summary())
    if not chem.physical.any():
        print("warning: every window of the plane is unphysical: check the model's latent check and its window size")
    return 0


def _keep_stage(stage: Path, output: Path) -> str:
    """Move what an interrupted run wrote out of its staging folder to a visible place; say where."""
    import os

    from ..io.outputs import rescue_places

    if not any(stage.iterdir()):
        return "nothing had been written yet"
    for place in rescue_places(output):
        try:
            place.parent.mkdir(parents=True, exist_ok=True)
            os.rename(stage, place)
            stage.mkdir()  # the staging folder is removed by replaced_folder
        except OSError:
            continue
        return f"the grid points done so far are in {place}"
    return f"the grid points done so far could not be kept ({stage} is removed)"


# -------------------------------------------------------------- beta-search
def add_beta_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, help="an image or movie file (one frame is used)")
    p.add_argument("--channel", default=None, metavar="NAME|INDEX",
                   help="channel of a multi-channel file, by name or index (default the first)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="folder: beta_search.json, ranking.csv, best_model/, scores.png, best_z*.png")
    p.add_argument("--frame", type=int, default=0, help="frame of a movie (default 0)")
    p.add_argument("--starts", type=_floats, default=(0.1, 1.0, 10.0), help="beta at the start (default 0.1,1,10)")
    p.add_argument("--ends", type=_floats, default=(0.1, 1.0, 10.0), help="beta at the end (default 0.1,1,10)")
    p.add_argument("--window", type=int, default=16,
                   help="window width in pixels, a little over one lattice period (default 16)")
    p.add_argument("--windows", type=int, default=3000, help="random training windows (default 3000)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per grid point (default 20)")
    p.add_argument("--warmup-epochs", type=int, default=20,
                   help="shared shift warm-up epochs, content latents off (default 20; 0 = none)")
    p.add_argument("--step", type=int, default=2, help="latent-map grid spacing in pixels (default 2)")
    p.add_argument("--latent", type=int, default=2, help="content latents (default 2)")
    p.add_argument("--combine", choices=("max", "min"), default="max",
                   help="score of a model from its latents' scores: max (paper 004) or min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")


def ranking_text(ranking) -> str:
    """The β-search ranking as an aligned text table (one line per grid point)."""
    latents = [c for c in ranking.columns if c.startswith("score_z")]
    lines = [f"{'rank':>4}  {'beta start':>10}  {'beta end':>8}  {'score':>6}  " + "  ".join(f"{c[6:]:>6}" for c in latents)]
    for row in ranking.itertuples(index=False):
        d = row._asdict()
        lines.append(f"{d['rank']:>4}  {d['beta_start']:>10g}  {d['beta_end']:>8g}  {d['score']:>6.3f}  "
                     + "  ".join(f"{d[c]:>6.3f}" for c in latents))
    return "\n".join(lines)


def run_beta_search(args: argparse.Namespace) -> int:
    from .beta_search import BetaSearch
    from .plots import plot_image

    from ..io.folders import replaced_folder
    from ..io.movie import select_movie

    data = np.asarray(select_movie(args.image, args.channel).data, dtype=np.float32)
    if data.ndim == 3:
        if not 0 <= args.frame < len(data):
            raise ValueError(f"--frame: {args.frame} is not a frame of the {len(data)}-frame movie")
        data = data[args.frame]
    if data.ndim != 2:
        raise ValueError(f"{args.image.name}: expected an image or a (T, Y, X) movie, got shape {data.shape}")
    train = {"threads": args.threads} if args.threads else {}
    with replaced_folder(args.output, markers=("beta_search.json",)) as stage:  # a re-run replaces the whole folder; a failure keeps the old one
        search = BetaSearch(data, args.starts, args.ends, window=args.window, n_windows=args.windows, epochs=args.epochs,
                            warmup_epochs=args.warmup_epochs, step=args.step, latent=args.latent, combine=args.combine,
                            out_dir=stage, train_options=train, seed=args.seed)
        start = time.perf_counter()
        try:
            attempt = 0
            for r in search.run():
                if r.get("attempt", 0) != attempt:
                    attempt = r["attempt"]
                    print(f"no schedule gave smooth latent maps (best score {search.attempt_scores[-1]:.3f} < "
                          f"{search.good}): the shared start model failed; the grid again from start model "
                          f"{attempt + 1} of {search.attempts}")
                if r.get("diverged"):
                    print(f"[{r['done']}/{r['total']}] beta {r['beta_start']:g} -> {r['beta_end']:g}: not scored "
                          f"({r['diverged']})")
                    continue
                per = ", ".join(f"{s:.3f}" for s in r["latent_scores"])
                print(f"[{r['done']}/{r['total']}] beta {r['beta_start']:g} -> {r['beta_end']:g}: score {r['score']:.3f} "
                      f"(latents {per}; {time.perf_counter() - start:.0f} s)")
        except (KeyboardInterrupt, ValueError, OSError) as err:
            kept = _keep_stage(stage, args.output)
            if isinstance(err, KeyboardInterrupt):
                print(f"interrupted; {kept}", file=sys.stderr)
                raise
            raise type(err)(f"{err}; {kept}") from None
        if search.best is None:
            raise ValueError("beta-search: no grid point gave a finite score (flat latent maps)")
        scores = search.scores if search.scores.shape[1] > 1 else np.repeat(search.scores, 2, axis=1)
        plot_image(stage / "scores.png", scores, title="smoothness score", xlabel="beta end (index)",
                   ylabel="beta start (index)")
        for name, m in search.maps[(search.best["i"], search.best["j"])].items():
            plot_image(stage / f"best_{name}.png", m[::-1], title=f"best model: {name}")
        ranking = search.ranking()
        ranking.to_csv(stage / "ranking.csv", index=False, float_format="%.4g")
    print("ranking by smoothness score (1 = smoothest content-latent maps):")
    print(ranking_text(ranking))
    b = search.best
    print(f"best: beta {b['beta_start']:g} -> {b['beta_end']:g}, score {b['score']:.3f} -> {args.output}")
    return 0
