"""Paper 001, "order parameters via VAEs" (Sci. Adv. 7, eabd5084, 2021) on the graphene-movie sample.

The product's pipeline with its defaults (shipped segmenter → atom sites → windows from the
atom probability → rVAE → latents), checked against the sample's ground truth:

- the encoded angle separates graphene's two sublattices (their neighbourhoods are the same
  triangle turned by 60°) and follows the rotated grain;
- a 16-component GMM on the raw windows (the paper's baseline) splits the sublattices into
  separate classes — rotation is taken for structure — while the rVAE's content latents do not;
- a content latent measures "crystallinity": edge atoms (fewer than three bonds) stand apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .report import Check, PaperResult

TITLE = "Order parameters and phases from atomic movies via rVAE (Sci. Adv. 7, eabd5084, 2021)"
DATA = "graphene-movie sample (6 frames of 384², seeded): hopping Si, holes, Stone-Wales defects, a grain turned 0.3 rad"

FRAMES, SIZE = 6, 384
GAP = (45.0, 75.0)  # sublattice angle gap, degrees (ideal 60)
SUBLATTICE_ACC = 0.95
GRAIN_TOL = 5.0  # degrees
GMM_PURITY = 0.9  # sublattice purity of the GMM's classes: the baseline splits rotated copies
CONTENT_KNN = 0.75  # sublattice from the rVAE's content latents: near chance (0.5), far from the GMM's ≥ 0.9
EDGE_AUC = 0.7


def _match(sites, atoms):
    """Sites matched to the true atom within 2 px in the same frame → (sites rows, true atoms)."""
    import pandas as pd
    from scipy.spatial import cKDTree

    got, truth = [], []
    for frame, group in sites.groupby("frame"):
        true = atoms[atoms["frame"] == frame]
        dist, index = cKDTree(np.column_stack([true["y"], true["x"]])).query(group[["y", "x"]].to_numpy())
        near = dist < 2.0
        got.append(group[near])
        truth.append(true[index[near]])
    return pd.concat(got), np.concatenate(truth)


def _degree(bonds, truth) -> np.ndarray:
    count: dict = {}
    for frame, i, j in bonds:
        count[(frame, i)] = count.get((frame, i), 0) + 1
        count[(frame, j)] = count.get((frame, j), 0) + 1
    return np.array([count.get((int(t["frame"]), int(t["id"])), 0) for t in truth])


def _mean3(angles) -> float:
    """Circular mean of an angle defined modulo 120° (a carbon site's three-fold neighbourhood), radians."""
    return float(np.angle(np.exp(3j * np.asarray(angles)).mean()) / 3)


def _deg(a: float) -> float:
    return float(np.degrees(np.angle(np.exp(3j * a)) / 3))


def analyse(sample: dict, run_, result: PaperResult) -> dict:
    """Add the checks of a pipeline run (``pipeline.run_pipeline``) on a graphene-movie sample to
    ``result``; return what the figures need."""
    from sklearn.metrics import roc_auc_score

    from ..analysis.baselines import gmm_windows, knn_accuracy
    from ..patches import cut_windows

    params = json.loads(str(sample["params"]))
    if run_.check is not None and not run_.check.informative:
        result.notes.append("latent check: " + " ".join(run_.check.warnings))
    sites = run_.sites.dropna(subset=["angle"])
    got, truth = _match(sites, sample["atoms"])
    carbon = truth["element"] == truth["element"].min()
    angle, sub, grain = got["angle"].to_numpy(), truth["sublattice"], truth["grain"].astype(bool)
    result.notes.append(f"{len(sites)} encoded sites, {len(got)} matched to true atoms within 2 px")

    # sublattices: one 60° turn apart (angles modulo 120°)
    matrix = carbon & ~grain
    means = [_mean3(angle[matrix & (sub == k)]) for k in (0, 1)]
    gap = abs(_deg(means[0] - means[1]))
    side = np.cos(3 * (angle - means[0])) > 0
    acc = float(np.mean(side[carbon] == (sub[carbon] == 0)))
    result.checks += [
        Check("sublattice angle gap", "the angle shows a sublattice checkerboard (the two motifs 60° apart)",
              f"{gap:.1f}°", f"{GAP[0]:g}–{GAP[1]:g}°", GAP[0] <= gap <= GAP[1], gap),
        Check("sublattice from the angle", "checkerboard of the two sublattices", f"{acc:.3f} correct",
              f"≥ {SUBLATTICE_ACC}", acc >= SUBLATTICE_ACC, acc)]

    # the grain: every angle turned by the grain's misorientation
    if (carbon & grain).sum() >= 20:
        turns = [_deg(_mean3(angle[carbon & grain & (sub == k)]) - means[k]) for k in (0, 1)]
        turn = float(np.mean(np.abs(turns)))
        true_turn = float(np.degrees(params["grain_angle"]))
        ok = all(abs(abs(t) - true_turn) <= GRAIN_TOL for t in turns) and np.sign(turns[0]) == np.sign(turns[1])
        result.checks.append(Check("rotated grain", "the angle maps grain rotation",
                                   f"grain turned {turns[0]:+.1f}° / {turns[1]:+.1f}° (sublattices); true {true_turn:.1f}°",
                                   f"|turn| within ±{GRAIN_TOL:g}° of the truth, both sublattices alike", bool(ok), turn))

    # the paper's baseline: a GMM on the raw windows takes rotated copies for different classes
    window = run_.model.config.window[0]
    source = run_.probability if run_.probability is not None else sample["data"]
    cut = cut_windows(source, got, window, normalisation=run_.settings.normalisation)
    labels, gmm_means, _ = gmm_windows(cut.windows, 16)
    sub_cut, carbon_cut = sub[cut.rows], carbon[cut.rows]
    purity = float(sum(max(np.mean(sub_cut[labels == k] == 0), np.mean(sub_cut[labels == k] == 1)) * np.sum(labels == k)
                       for k in np.unique(labels)) / len(labels))
    z_cols = [c for c in got.columns if c.startswith("z") and not c.endswith("_sigma")]
    content = got[z_cols].to_numpy()[cut.rows]
    knn = knn_accuracy(content[carbon_cut], sub_cut[carbon_cut])
    result.checks += [
        Check("GMM (16, diag) on raw windows", "fails: rotated copies of one structure become separate classes",
              f"its classes are {purity:.2f} pure in sublattice", f"purity ≥ {GMM_PURITY} (the baseline splits them)",
              purity >= GMM_PURITY, purity),
        Check("rVAE content latents vs sublattice", "rotation is taken out of the content latents",
              f"sublattice k-NN from ({', '.join(z_cols)}) {knn:.2f} (chance 0.5)", f"≤ {CONTENT_KNN}",
              knn <= CONTENT_KNN, knn)]

    # crystallinity: a content latent sets edge atoms apart
    degree = _degree(sample["bonds"], truth)
    edge = degree < 3
    if edge.any() and (~edge).any():
        aucs = {c: roc_auc_score(edge, got[c]) for c in z_cols}
        aucs = {c: max(a, 1 - a) for c, a in aucs.items()}
        best = max(aucs, key=aucs.get)
        result.checks.append(Check("a content latent measures crystallinity",
                                   "z is high in ordered regions, low at edges and defects",
                                   f"{best} separates edge atoms (< 3 bonds, {edge.sum()}) from the rest: AUC {aucs[best]:.2f}",
                                   f"AUC ≥ {EDGE_AUC}", aucs[best] >= EDGE_AUC, aucs[best]))

    return {"got": got, "angle": angle, "sub": sub, "carbon": carbon, "means": means, "z_cols": z_cols,
            "gmm_means": gmm_means}


def run(folder, *, seed: int = 0, log=print) -> PaperResult:
    from ..analysis.dynamics import circular_grid, density_vs_frame
    from ..analysis.plots import plot_image, plot_lines, plot_scatter, plot_windows
    from ..pipeline import demo_settings, run_pipeline
    from ..synth import make_sample

    folder = Path(folder)
    result = PaperResult("001", TITLE, DATA)
    sample = make_sample("graphene-movie", seed=seed, frames=FRAMES, size=SIZE)
    run_ = run_pipeline(sample["data"], demo_settings(seed=seed))
    log(f"pipeline: {len(run_.sites)} sites, {run_.timings}")
    found = analyse(sample, run_, result)
    got, angle, sub, carbon, means, z_cols = (found[k] for k in ("got", "angle", "sub", "carbon", "means", "z_cols"))
    # figures: histogram by sublattice, latent-vs-frame densities, maps of one frame, GMM means
    bins = np.linspace(-30, 90, 61)  # sublattice 0 at 0°, sublattice 1 at ±60°, the grain 17° off each
    folded = (np.degrees(angle - means[0]) + 30) % 120 - 30
    hist = {f"sublattice {k}": np.histogram(folded[carbon & (sub == k)], bins)[0].astype(float) for k in (0, 1)}
    plot_lines(folder / "angle_histogram.png", 0.5 * (bins[1:] + bins[:-1]), hist, title="encoded angle (mod 120 deg)",
               xlabel="angle from the sublattice-0 mean (deg)", ylabel="sites")
    result.figures.append(("angle_histogram.png", "encoded angle by true sublattice: two peaks 60° apart"))
    frames = got["frame"].to_numpy()
    for name in ["angle"] + z_cols:
        circular = name == "angle"
        dens = density_vs_frame(frames, got[name].to_numpy(), circular=circular,
                                grid=circular_grid() if circular else None, name=name)
        g = dens.grid
        plot_image(folder / f"kde_{name}.png", dens.density.T, extent=(dens.frames[0], dens.frames[-1] + 1, g[0], g[-1]),
                   title=f"{name} density per frame", xlabel="frame", ylabel=name)
        result.figures.append((f"kde_{name}.png", f"latent-vs-time density of {name} (the paper's KDE plots)"))
    last = int(frames.max())
    one = got[got["frame"] == last]
    colours = {"angle": np.angle(np.exp(3j * one["angle"].to_numpy()))}  # modulo 120°: the sublattice checkerboard
    for name, cmap in [("angle", "cyclic")] + [(c, "viridis") for c in z_cols]:
        title = "angle (mod 120 deg)" if name == "angle" else name
        plot_scatter(folder / f"map_{name}.png", one["x"], one["y"], colours.get(name, one[name]), cmap=cmap,
                     invert_y=True, point=3, title=f"frame {last}: atoms coloured by {title}", xlabel="x (px)",
                     ylabel="y (px)")
        result.figures.append((f"map_{name}.png", f"frame {last}, atoms coloured by {name}"))
    plot_windows(folder / "gmm_means.png", found["gmm_means"], cmap="gray")
    result.figures.append(("gmm_means.png", "the GMM baseline's 16 component means: rotated copies as separate classes"))
    return result
