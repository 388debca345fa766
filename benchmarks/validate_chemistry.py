"""End-to-end check of the latent chemistry map and latent trajectories on graphene-movie.

Run::

    python -m benchmarks.validate_chemistry [-o OUT_DIR] [--epochs 20] [--model MODEL_DIR]

Steps (paper 000): a graphene-movie with exact ring truth (with its rotated
grain, as the sample ships; ``--no-grain`` for one orientation) and 5 % Si
(``--si-fraction``) so that enough Si steps change ring environment; an atom
"probability map" rendered from the true positions (Gaussian spots of
σ = 0.2·cc; ChemDisc cuts windows from the DCNN output, not the raw image);
atom-centred windows turned into each atom's bond frame (both sublattices and
both grains alike) under a circular mask (1 within 11 px, 0 from 14 px: the
latents describe the atom's own rings, not the window's corners; ``--plain``
drops both for comparison); a VAE with 2 content latents (``--arch vae``, the
default: its MLP decoder learns the lattice in minutes on a CPU; ``--arch
skip-rvae`` is the paper's model, whose coordinate decoder did not learn the
honeycomb within a few CPU minutes here — see docs); the chemistry map of its
latent plane; every atom encoded and looked up on the map; the Si tracks'
latent paths compared with the true ring sizes along each track. Prints the
numbers quoted in ``docs/analysis-2.md``. A few minutes on 2 free cores
(``--epochs``, ``--windows`` trade time for quality); ``--model`` reuses a
trained model. Ring counts do not depend on the decoded orientation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _scene(seed: int, frames: int, size: int, cc: float, grain: bool = True, si_fraction: float = 0.01):
    from napari_rvae.synth import graphene_movie
    from napari_rvae.synth.render import render_spots

    s = graphene_movie(seed, frames=frames, size=size, cc=cc, noise=False, n_stone_wales=8, n_holes=2,
                       si_hop=0.5, hole_growth=0.3, grain=grain, si_fraction=si_fraction)
    atoms = pd.DataFrame(s["atoms"])
    maps = np.stack([
        np.clip(render_spots((size, size), atoms.loc[atoms.frame == t, ["y", "x"]].to_numpy(), 1.0, 0.2 * cc), 0, 1)
        for t in range(frames)
    ]).astype(np.float32)
    return s, atoms, maps


def _environment(atoms: pd.DataFrame) -> np.ndarray:
    return atoms[["n5", "n6", "n7", "n8"]].to_numpy(np.int64)


def run(out: Path | None, *, seed=0, frames=8, size=256, cc=5.0, window=28, n_windows=4000, epochs=80,
        model_dir: Path | None = None, d=100, threads=1, arch="vae", beta=0.02, lr=1e-3, batch=64,
        decoder_widths=(256, 256), pixel_fraction=0.25, grain=True, align=True, si_fraction=0.05, mask=(11.0, 14.0)) -> dict:
    import torch

    from napari_rvae.io.sites import make_sites
    from napari_rvae.patches import cut_windows
    from napari_rvae.vae import BetaSchedule, Trainer, VAEConfig, build_model, encode, load_model, save_model
    from napari_rvae.analysis.chemistry import chemistry_map, model_decoder
    from napari_rvae.analysis.trajectories import latent_trajectories

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    s, atoms, maps = _scene(seed, frames, size, cc, grain, si_fraction)
    sites = make_sites(atoms.frame.to_numpy(), atoms.y.to_numpy(), atoms.x.to_numpy(), "atom", atoms["class"].to_numpy())
    if align:  # windows in each atom's own bond frame: sublattices and grains alike
        from napari_rvae.detect import bond_orientation

        sites = bond_orientation(sites, symmetry=3)
    cut = cut_windows(maps, sites, window, orientation="bond_angle" if align else None, mask=mask)
    env = _environment(atoms)[cut.rows]
    print(f"scene: {len(atoms)} atoms in {frames} frames, {len(cut)} windows of {window} px "
          f"({time.perf_counter() - t0:.0f} s)")

    if model_dir is not None:
        model = load_model(model_dir)
    else:
        rng = np.random.default_rng(seed)
        defect = np.flatnonzero((env[:, 0] > 0) | (env[:, 2] > 0) | (env[:, 3] > 0) | (env.sum(1) < 3))
        rest = np.setdiff1d(np.arange(len(cut)), defect)
        train = np.concatenate([defect, rng.choice(rest, max(0, min(len(rest), n_windows - len(defect))), False)])
        # Gaussian likelihood with β = 0.02 ≈ a noise σ of 0.14 on 0–1 windows (β = 1, σ = 1, collapses)
        cfg = VAEConfig(arch=arch, window=(window, window), latent=2, encoder_widths=(256, 128),
                        decoder_widths=tuple(decoder_widths), rotation_prior=0.1, translation_prior=0.1,
                        beta=BetaSchedule("constant", start=beta, end=beta))
        model = build_model(cfg, seed=seed)
        trainer = Trainer(model, cut.windows[train], seed=seed, lr=lr, batch_size=batch, threads=threads,
                          pixel_fraction=pixel_fraction if arch != "vae" else 1.0)
        for stats in trainer.run(epochs):
            print(f"  epoch {stats['epoch']:3d}  test loss {stats['test_loss']:.2f}  ({stats['seconds']:.0f} s)")
        model.normalisation = cut.normalisation
        if out is not None:
            save_model(model, out / "model")
    t1 = time.perf_counter()
    chem = chemistry_map(model_decoder(model), d=d, span=3.0, bond_length=cc)
    print(f"chemistry map {d}x{d}: {time.perf_counter() - t1:.1f} s, physical {chem.physical.mean():.1%}, "
          f"bond length {chem.bond_length:.2f} px")

    z = encode(model, cut.windows)[["z0", "z1"]].to_numpy()
    got = chem.classify(z)
    pristine = (env[:, 1] == 3) & (env[:, [0, 2, 3]].sum(1) == 0)
    hit = (got[:, 0] == 0) & (got[:, 1] == 3) & (got[:, 2] == 0)
    frac_pristine = float(hit[pristine].mean())
    sw = (env[:, 0] > 0) & (env[:, 2] > 0)  # atoms in both a 5- and a 7-ring: Stone–Wales cores
    defect_cell = (got[:, 0] > 0) | (got[:, 2] > 0)
    frac_sw = float(defect_cell[sw].mean()) if sw.any() else float("nan")
    chance = float(defect_cell.mean())
    exact_sw = float(np.all(got[sw] == env[sw], axis=1).mean()) if sw.any() else float("nan")
    print(f"pristine atoms in (0,3,0) cells: {frac_pristine:.1%} of {pristine.sum()}")
    print(f"Stone-Wales (5+7) atoms in cells with 5- or 7-rings: {frac_sw:.1%} of {sw.sum()}  "
          f"(chance = share of all atoms: {chance:.1%}; ratio {frac_sw / max(chance, 1e-9):.1f}x); "
          f"exact (n5..n8) match {exact_sw:.1%}")

    # Si trajectories: latent step vs change of the true environment
    table = sites.iloc[cut.rows].reset_index(drop=True)
    table["z0"], table["z1"] = z[:, 0], z[:, 1]
    table["track_id"] = atoms["track_id"].to_numpy()[cut.rows]
    table["env"] = [tuple(e) for e in env]
    traj = latent_trajectories(table, columns=("z0", "z1"))
    jump_at = traj.attrs["jump_threshold"]
    traj = traj.merge(table[["frame", "track_id", "env"]], on=["frame", "track_id"], how="left")
    prev_env = traj.groupby("track_id")["env"].shift(1)
    has_prev = traj["step"].notna() & prev_env.notna()
    changed = has_prev & (traj["env"] != prev_env)
    same = has_prev & ~changed
    steps_same, steps_changed = traj.loc[same, "step"].to_numpy(), traj.loc[changed, "step"].to_numpy()
    result = {
        "pristine_in_030": frac_pristine, "n_pristine": int(pristine.sum()), "sw_in_defect_cells": frac_sw,
        "n_sw": int(sw.sum()), "chance_defect_cells": chance, "sw_exact": exact_sw,
        "physical_fraction": float(chem.physical.mean()), "n_si_tracks": int(traj.track_id.nunique()),
        "si_steps_same_env": int(len(steps_same)), "si_steps_changed_env": int(len(steps_changed)),
    }
    # per track: every step with a changed environment is a jump and no step without one is
    judged = traj.loc[has_prev].assign(changed=changed[has_prev])
    right = judged["jump"] == judged["changed"]
    per_track = right.groupby(judged["track_id"]).all()
    result["tracks_all_steps_right"] = float(per_track.mean()) if len(per_track) else float("nan")
    result["tracks_with_change"] = int(judged.groupby("track_id")["changed"].any().sum())
    result["tracks_with_change_all_right"] = float(per_track[judged.groupby("track_id")["changed"].any()].mean()) \
        if result["tracks_with_change"] else float("nan")
    if len(steps_same):
        result["median_step_same_env"] = float(np.median(steps_same))
        result["p90_step_same_env"] = float(np.percentile(steps_same, 90))
    if len(steps_changed):
        result["median_step_changed_env"] = float(np.median(steps_changed))
        result["jumps_flagged_changed"] = float(traj.loc[changed, "jump"].mean())
        if len(steps_same):
            result["jumps_flagged_same"] = float(traj.loc[same, "jump"].mean())
            # probability that a changed-environment step is larger than an unchanged one (AUC)
            auc = (steps_changed[:, None] > steps_same[None, :]).mean()
            result["auc_changed_vs_same"] = float(auc)
    print(f"Si tracks: {result['n_si_tracks']}; steps with the same true environment: {len(steps_same)} "
          f"(median {result.get('median_step_same_env', float('nan')):.3f}, 90th pct "
          f"{result.get('p90_step_same_env', float('nan')):.3f}); with a changed environment: {len(steps_changed)} "
          f"(median {result.get('median_step_changed_env', float('nan')):.3f}); "
          f"AUC {result.get('auc_changed_vs_same', float('nan')):.2f}; flagged as jumps (threshold "
          f"{jump_at:.2f}): {result.get('jumps_flagged_changed', float('nan')):.0%} of changed, "
          f"{result.get('jumps_flagged_same', float('nan')):.0%} of unchanged; tracks with every step right: "
          f"{result['tracks_all_steps_right']:.0%} (of the {result['tracks_with_change']} whose environment "
          f"changes: {result['tracks_with_change_all_right']:.0%})")
    if out is not None:
        from napari_rvae.analysis.export import save_npz

        save_npz(out / "chemistry_map.npz", {"counts": chem.counts, "physical": chem.physical, "grid": chem.grid,
                                             "z": z, "env": env})
        try:
            from napari_rvae.analysis.plots import plot_image

            plot_image(out / "chemistry_rgb_n5.png", chem.n(5), title="n5")
        except Exception as err:  # figures are a bonus here
            print(f"(no figure: {err})")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output", type=Path, default=None, help="folder for the model and the map (optional)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--windows", type=int, default=4000, help="training windows (all defect atoms + pristine)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--model", type=Path, default=None, help="reuse a trained model folder")
    p.add_argument("--grid", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch threads (2 threads collapse on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arch", default="vae", choices=("skip-rvae", "rvae", "vae"),
                   help="vae (default: learns the lattice in minutes) or skip-rvae / rvae (paper; slow to learn)")
    p.add_argument("--beta", type=float, default=0.02, help="constant KL weight (default 0.02)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--decoder", default="256,256", help="decoder widths (skip-rVAE: e.g. 128,128,128)")
    p.add_argument("--no-grain", action="store_true", help="one lattice orientation (no rotated grain)")
    p.add_argument("--plain", action="store_true",
                   help="plain windows: not turned into the bond frame, no circular mask (for comparison)")
    p.add_argument("--si-fraction", type=float, default=0.05,
                   help="share of Si atoms (default 0.05: enough Si steps that change environment to test)")
    a = p.parse_args(argv)
    if a.output is not None:
        a.output.mkdir(parents=True, exist_ok=True)
    run(a.output, seed=a.seed, frames=a.frames, n_windows=a.windows, epochs=a.epochs, model_dir=a.model, d=a.grid,
        threads=a.threads, arch=a.arch, beta=a.beta, lr=a.lr, batch=a.batch,
        decoder_widths=tuple(int(v) for v in a.decoder.split(",")), grain=not a.no_grain, align=not a.plain,
        mask=None if a.plain else (11.0, 14.0), si_fraction=a.si_fraction)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
