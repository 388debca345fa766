"""Paper 000 (ChemDisc): skip-rVAE chemical space map of graphene, Si trajectories, PFM switching.

Graphene part, with the product's defaults (the pipeline as ``analyze --arch skip-rvae`` runs
it): atoms detected on the graphene-movie sample, windows of five atom spacings cut from the
atom probability map, a skip-rVAE trained on them (content latents standardised after training,
:mod:`~napari_rvae.vae.standardise`, so the ``±3`` plane is where the windows are encoded), its
latent plane decoded and the rings at each decoded window's centre atom counted (:func:`~napari_rvae.analysis.chemistry.chemistry_map`).
Checked against the sample's truth: the ring counts of the atoms themselves (each site's true
(n5, n6, n7) against the map's counts where the site is encoded), the Si positions and tracks.
PFM part: the pfm-switching sample's switched fraction against bias (the hysteresis loop) and
the walls' curvature per frame, against the sample's true domains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import Check, PaperResult

TITLE = "ChemDisc: skip-rVAE chemical space of graphene; Si trajectories; PFM switching and wall curvature"
DATA = "graphene-movie and pfm-switching samples (generated with the run's seed)"

#: the full run: graphene frames, frame side, training epochs; ``quick`` runs (tests) use less
FULL = {"frames": 8, "size": 256, "cc": 12.0, "epochs": 20, "grid": 60, "pfm_frames": 20, "pfm_size": 128}
#: tests: a finer lattice (8 px bonds: 40 px windows, cheaper steps), as many training steps
QUICK = {"frames": 6, "size": 192, "cc": 8.0, "epochs": 12, "grid": 40, "pfm_frames": 20, "pfm_size": 96}
MATCH_PX = 2.0  # a detected site is a true atom within this distance (pixels)


def _matched(sites, atoms, frame_col="frame"):
    """Index of the true atom each site matches (−1 beyond MATCH_PX), per frame."""
    from scipy.spatial import cKDTree

    out = np.full(len(sites), -1, np.int64)
    for frame, rows in sites.groupby(frame_col).indices.items():
        truth = np.flatnonzero(atoms["frame"] == frame)
        if not len(truth):
            continue
        d, i = cKDTree(np.column_stack([atoms["y"][truth], atoms["x"][truth]])).query(
            sites[["y", "x"]].to_numpy()[rows])
        out[rows] = np.where(d < MATCH_PX, truth[i], -1)
    return out


def graphene_part(folder: Path, seed: int, p: dict, log) -> tuple[list, list, list, dict]:
    from ..analysis.chemistry import chemistry_map
    from ..analysis.commands import write_rgb_png
    from ..analysis.plots import plot_image, plot_scatter
    from ..detect.atoms import _keep_inside
    from ..detect.find import EDGE_MARGIN
    from ..detect.tracks import link_tracks
    from ..pipeline import demo_settings, run_pipeline
    from ..synth import graphene_movie
    from ..vae.latents import manifold

    checks, figures, notes = [], [], []
    sample = graphene_movie(seed, frames=p["frames"], size=p["size"], cc=p["cc"])
    atoms = sample["atoms"]
    log(f"graphene-movie: {p['frames']} frames of {p['size']}², training a skip-rVAE ({p['epochs']} epochs)")
    result = run_pipeline(sample["data"], demo_settings(arch="skip-rvae", epochs=p["epochs"], seed=seed))
    model, sites, check = result.model, result.sites, result.check
    cfg = model.config
    notes.append(f"skip-rVAE on {len(sites.dropna(subset=['z0']))} windows of {cfg.window[0]} px cut from the "
                 f"{'atom probability map' if result.probability is not None else 'image'}; angle symmetry "
                 f"{cfg.angle_symmetry}, grid scale {cfg.grid_scale:.1f}; {p['epochs']} epochs, "
                 f"{result.timings.get('train_s', 0):.0f} s of training")
    gain = float(check.gain) if check.gain is not None else float("nan")
    checks.append(Check("skip-rVAE learns the graphene windows (reconstruction beyond the mean window)",
                        "trained skip-rVAE reconstructs the windows (manifold of honeycomb neighbourhoods)",
                        f"reconstructions explain {gain:.0%} of the variance beyond the mean window",
                        "≥ 20 %", bool(gain >= 0.2), gain))
    mosaic = manifold(model, d=8)[1]
    plot_image(folder / "manifold.png", mosaic, cmap="gray", title="decoded latent plane (z0 to the right, z1 up)")
    figures.append(("manifold.png", "decoded latent plane of the skip-rVAE (8 × 8 windows over z0, z1 in ±3)"))

    chem = chemistry_map(model, d=p["grid"])
    moved = (getattr(model, "latent_standardisation", None) or [{}])[-1]
    if moved.get("offset"):
        notes.append("content latents standardised after training (vae.standardise): the windows had been encoded "
                     "at " + ", ".join(f"z{i} = {m:.2f} ± {s:.2f}" for i, (m, s) in
                                       enumerate(zip(moved["offset"], moved["scale"]))))
    notes.append(f"chemistry map {p['grid']}² over ±3 (atom threshold {chem.params['threshold']:.2g}, bond length "
                 f"{chem.bond_length:.1f} px): {chem.summary()}")
    write_rgb_png(folder / "chemistry_map.png", chem.rgb(), chem.physical)
    figures.append(("chemistry_map.png", "chemical space map: (n5, n6, n7) rings at the decoded centre atom as "
                                         "(red, green, blue); grey = unphysical"))
    phys = chem.physical
    counts = chem.counts[phys]
    patterns, sizes = (np.unique(counts[:, :3], axis=0, return_counts=True) if len(counts)
                       else (np.zeros((0, 3), np.int64), np.zeros(0, np.int64)))
    shares = {tuple(int(v) for v in pattern): k / len(counts) for pattern, k in zip(patterns, sizes)}
    share6 = float(shares.get((0, 3, 0), 0.0))
    largest = bool(shares) and max(shares, key=shares.get) == (0, 3, 0)
    order = np.argsort(sizes)[::-1][:4]
    notes.append("ring patterns (n5, n6, n7) of the physical region: " + ", ".join(
        f"({a}, {b}, {c}) {k / len(counts):.0%}" for (a, b, c), k in zip(patterns[order], sizes[order])))
    unphysical = float(1 - phys.mean())
    # the paper: region areas in proportion to the data; the sample has pristine lattice beside edges, holes and
    # defects, so the pristine pattern is the largest region, not a fixed share of the plane
    checks.append(Check("6-rings dominate the physical region of the latent plane",
                        "most of the map is three 6-rings at the centre atom (pristine graphene)",
                        f"(0, 3, 0) is {'the' if largest else 'not the'} largest region: {share6:.0%} of the "
                        f"physical region; physical region {phys.mean():.0%}",
                        "the largest region of the physical map", largest, share6))
    # the paper: physical regions with areas in proportion to the data, "often separated by the thin lines of
    # unphysical domains" (smeared atoms); a decoder that continues the lattice smoothly has almost none
    checks.append(Check("unphysical region marked", "thin lines of unphysical configurations between the regions "
                        "(marked −1)", f"{unphysical:.1%} of the plane unphysical", "≤ 80 %",
                        bool(unphysical <= 0.8), unphysical))
    defect = float(np.mean((counts[:, 0] > 0) | (counts[:, 2] > 0))) if len(counts) else 0.0
    checks.append(Check("defect (5/7) rings in the map", "5- and 7-ring regions where defect windows are encoded",
                        f"{defect:.1%} of the physical region has a 5- or 7-ring at the centre", "", None, defect))

    # the map against the truth: each encoded site's true rings vs the map's counts where it is encoded
    enc = sites.dropna(subset=["z0", "z1"]).reset_index(drop=True)
    match = _matched(enc, atoms)
    ok = match >= 0
    truth = np.stack([atoms[k][match[ok]] for k in ("n5", "n6", "n7")], 1)
    mapped = chem.classify(enc[["z0", "z1"]].to_numpy()[ok])
    pristine = (truth[:, 1] == 3) & (truth[:, 0] == 0) & (truth[:, 2] == 0)
    agree = float(np.mean(np.all(mapped[pristine, :3] == [0, 3, 0], axis=1))) if pristine.any() else float("nan")
    checks.append(Check("pristine atoms land in the 6-ring region",
                        "carbon atoms of pristine lattice are encoded where the map shows three 6-rings",
                        f"{agree:.0%} of {int(pristine.sum())} pristine atoms (true rings from the sample; "
                        f"{pristine.mean():.0%} of the encoded atoms are pristine)",
                        "≥ 60 %", bool(agree >= 0.6), agree))
    kind = np.where(pristine, 0, np.where((truth[:, 0] > 0) | (truth[:, 2] > 0), 1, 2))
    plot_scatter(folder / "latents_by_truth.png", enc["z0"].to_numpy()[ok], enc["z1"].to_numpy()[ok], kind,
                 labels=True, title="encoded atoms: 0 pristine, 1 next to a 5/7 ring, 2 other (edge, Si)",
                 xlabel="z0", ylabel="z1")
    figures.append(("latents_by_truth.png", "latent plane of the encoded atoms coloured by their true rings"))

    # Si trajectories: detected Si (class 1) linked across frames, against the true Si tracks
    si = sites[sites["class"] == 1] if "class" in sites else sites.iloc[:0]
    # the truth the detector can report: Si centres at least its edge margin inside the frame (half an atom at
    # the border has no reliable centre, and the detector leaves those out by design)
    inside = _keep_inside(np.column_stack([atoms["y"], atoms["x"]]), np.asarray(sample["data"]).shape[-2:],
                          EDGE_MARGIN)
    true_si = atoms[(atoms["element"] == atoms["element"].max()) & inside]
    if len(si):
        tracked = link_tracks(sites, r_max=1.5 * float(model.normalisation.get("site_spacing_px", 12.0)),
                              classes=1, min_length=2)
        si = tracked[tracked["track_id"] >= 0].dropna(subset=["z0"])
    found = _matched(sites[sites["class"] == 1], true_si) if len(true_si) else np.array([], np.int64)
    recall = len(set(found[found >= 0].tolist())) / max(1, len(true_si))
    precision = float(np.mean(found >= 0)) if len(found) else 0.0
    checks.append(Check("Si dopants found", "Si atoms (bright) picked out in every frame",
                        f"recall {recall:.0%}, precision {precision:.0%} of {len(true_si)} true Si sites (≥ {EDGE_MARGIN:g} px "
                        "inside the frame, the detector's edge margin)",
                        "both ≥ 80 %", bool(recall >= 0.8 and precision >= 0.8), recall))
    if len(si):
        link = _matched(si, true_si)
        ids = true_si["track_id"][np.maximum(link, 0)]
        steps = right = 0
        for _, rows in si.assign(_true=np.where(link >= 0, ids, -1)).sort_values("frame").groupby("track_id"):
            t = rows["_true"].to_numpy()
            steps += max(0, len(t) - 1)
            right += int(np.sum((t[1:] == t[:-1]) & (t[1:] >= 0)))
        correct = right / max(1, steps)
        checks.append(Check("Si trajectories linked", "Si followed frame to frame (greedy nearest neighbour, paper)",
                             f"{len(si['track_id'].unique())} tracks; {correct:.0%} of {steps} links join the same "
                             f"true Si", "≥ 80 % of links", bool(correct >= 0.8 and steps > 0), correct))
        plot_scatter(folder / "si_trajectories.png", si["z0"].to_numpy(), si["z1"].to_numpy(),
                     si["track_id"].to_numpy(), labels=True, title="Si trajectories in the latent plane (by track)",
                     xlabel="z0", ylabel="z1")
        figures.append(("si_trajectories.png", "latent positions of the tracked Si dopants, one colour per track"))
    else:
        checks.append(Check("Si trajectories linked", "Si followed frame to frame", "no Si detected", "≥ 80 % of links",
                            False))
    return checks, figures, notes, {"chemistry": chem}


def pfm_part(folder: Path, seed: int, p: dict, log) -> tuple[list, list]:
    from ..analysis.hysteresis import loop_area
    from ..analysis.pfm import curvature_vs_frame, switching_degree_per_frame, wall_metrics
    from ..analysis.plots import plot_lines
    from ..detect.walls import analyse_walls, wall_sites
    from ..patches import cut_windows
    from ..synth.pfm import pfm_switching

    checks, figures = [], []
    s = pfm_switching(seed, frames=p["pfm_frames"], size=p["pfm_size"])
    log(f"pfm-switching: {p['pfm_frames']} frames of {p['pfm_size']}²")
    bias, truth = s["bias"], s["switched_fraction"]
    got = (switching_degree_per_frame(s["data"]) + 1) / 2
    err = float(np.nanmax(np.abs(got - truth)))
    checks.append(Check("switched fraction per frame", "switching degree follows the bias sweep",
                        f"largest error against the sample's true switched fraction {err:.3f}", "≤ 0.03",
                        bool(err <= 0.03), err))
    area, true_area = loop_area(bias, got, "absolute"), loop_area(bias, truth, "absolute")
    rel = abs(area - true_area) / max(true_area, 1e-9)
    checks.append(Check("hysteresis of switching vs bias", "switching degree vs bias is a hysteresis loop",
                        f"loop area {area:.2f} V (truth {true_area:.2f} V)", "area > 0, within 10 % of the truth",
                        bool(area > 0 and rel <= 0.1), area))
    plot_lines(folder / "switching_vs_bias.png", bias, {"measured": got, "truth": truth}, markers=True,
               title="switched fraction vs tip bias", xlabel="bias (V)", ylabel="switched fraction")
    figures.append(("switching_vs_bias.png", "switched-area fraction against bias: the hysteresis loop"))
    walls = analyse_walls(s["data"])
    half = 12
    sites = wall_sites(walls.walls, n_per_frame=40, min_spacing=6, edge_margin=half + 1, seed=seed)
    measured = cut_windows(walls.domains.astype(np.float32), sites, 2 * half, normalisation="none")
    true_w = cut_windows((s["domains"] > 0).astype(np.float32), sites, 2 * half, normalisation="none")
    frames = sites["frame"].to_numpy()[measured.rows]
    c = curvature_vs_frame(wall_metrics(measured.windows, 0.5)["curvature"], frames)
    ct = curvature_vs_frame(wall_metrics(true_w.windows, 0.5)["curvature"], frames)
    both = c.merge(ct, on="frame", suffixes=("", "_true"))
    r = float(np.corrcoef(both["mean"], both["mean_true"])[0, 1]) if len(both) > 2 else float("nan")
    checks.append(Check("wall curvature vs time", "wall curvature changes with time as domains grow and shrink",
                        f"per-frame mean curvature correlates r = {r:.2f} with the true walls' over {len(both)} frames",
                        "r ≥ 0.8", bool(r >= 0.8), r))
    plot_lines(folder / "curvature_vs_frame.png", both["frame"].to_numpy(),
               {"measured": both["mean"].to_numpy(), "truth": both["mean_true"].to_numpy()}, markers=True,
               title="mean wall curvature per frame", xlabel="frame", ylabel="curvature (1/px)")
    figures.append(("curvature_vs_frame.png", "mean signed wall curvature per frame (24 px wall windows)"))
    return checks, figures


def run(folder, *, seed: int = 0, log=print, quick: bool = False) -> PaperResult:
    folder = Path(folder)
    p = QUICK if quick else FULL
    result = PaperResult("000", TITLE, DATA)
    checks, figures, notes, _ = graphene_part(folder, seed, p, log)
    pchecks, pfigures = pfm_part(folder, seed, p, log)
    result.checks, result.figures, result.notes = checks + pchecks, figures + pfigures, notes
    return result
