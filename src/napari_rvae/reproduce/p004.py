"""Paper 004, "Finding simplicity" (shift-VAE): the shift takes the position, one latent the physics.

1D: Gaussian peaks of known centre μ and width σ. A plain VAE needs both latents and mixes μ
and σ; the shift-VAE puts μ into its shift and σ into one content latent, the other latent
unused ("latent dimensionality = physical dimensionality").
2D: grid windows of the shift-lattice sample (two phases that differ by the position of one
atom, order parameter η known per pixel): the shift-VAE's smoothest content latent map follows
η. The β-schedule search ranks schedules by the FFT smoothness of their latent maps; the
first-ranked one must be one whose map follows η.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import Check, PaperResult

TITLE = "Finding simplicity: shift-VAE and the β-schedule search (MLST 4, 045033, 2023)"
DATA = "2 000 Gaussian peaks (μ, σ known); shift-lattice sample, 256 px, η known per pixel"

R_MIN = 0.8  # |Pearson| of the 2D latent map with η (issue 15, item 3)
R2_SHIFT = 0.9  # R² of the shift latent against μ (1D)
RHO_WIDTH = 0.9  # |Spearman| of the active content latent against σ (1D)
UNUSED = 0.1  # a latent is unused when its KL is below this fraction of the largest
GRID_STEP = 4  # px between grid windows of the 2D latent map (as `analyze --grid 4`)


def _one_d(folder: Path, seed: int, log, result: PaperResult) -> None:
    from scipy.stats import spearmanr

    from ..analysis.plots import plot_scatter
    from ..synth import gaussian_peaks_1d
    from ..vae import Trainer, VAEConfig, build_model, encode
    from ..vae.latents import kl_per_latent

    data = gaussian_peaks_1d(2000, seed=seed)
    x, mu, sigma = data["data"], data["mu"], data["sigma"]
    px = 1.0 / float(data["x"][1] - data["x"][0])  # pixels per unit of x
    fitted = {}
    for arch in ("vae", "shift-vae"):
        cfg = VAEConfig(arch=arch, window=(x.shape[1],), latent=2, likelihood="bernoulli", translation_prior=0.3,
                        encoder_widths=(128, 128), decoder_widths=(64, 64, 64))
        model = build_model(cfg, seed=seed)
        Trainer(model, x, batch_size=64, lr=1e-3, seed=seed).fit(12)
        fitted[arch] = (encode(model, x), kl_per_latent(model, x))
        log(f"1D {arch}: KL per latent {np.round(fitted[arch][1], 2).tolist()}")

    table, kl = fitted["shift-vae"]
    r = float(np.corrcoef(table["dx"], mu)[0, 1])
    slope = float(np.polyfit(mu, table["dx"], 1)[0]) / px
    active = int(np.argmax(kl))
    rho = float(spearmanr(table[f"z{active}"], sigma)[0])
    used = int((kl >= UNUSED * kl.max()).sum())
    vae_table, vae_kl = fitted["vae"]
    vae_used = int((vae_kl >= UNUSED * vae_kl.max()).sum())
    vae_r = [max(abs(np.corrcoef(vae_table[f"z{k}"], v)[0, 1]) for k in range(2)) for v in (mu, sigma)]
    result.checks += [
        Check("1D: shift latent vs peak centre μ", "shift ≈ μ (linear, slope 1)",
              f"R² {r * r:.3f}, slope {slope:.2f} px per px", f"R² ≥ {R2_SHIFT}, slope 0.5–1.5, r > 0",
              r > 0 and r * r >= R2_SHIFT and 0.5 < slope < 1.5, r * r),
        Check("1D: the other latent vs peak width σ", "the remaining latent tracks σ",
              f"|Spearman| {abs(rho):.3f} (z{active})", f"≥ {RHO_WIDTH}", abs(rho) >= RHO_WIDTH, abs(rho)),
        Check("1D: content latents used by the shift-VAE", "one (latent dimension = physical dimension)",
              f"{used} of 2 (KL {', '.join(f'{v:.2f}' for v in kl)})", f"1 (KL < {UNUSED:g} × max counts as unused)",
              used == 1, float(used)),
        Check("1D: a plain VAE (no shift latent)", "position and width are mixed in its latents",
              f"{vae_used} of 2 latents used; best |r| with μ {vae_r[0]:.2f}, with σ {vae_r[1]:.2f}", "", None,
              float(vae_used)),
    ]
    plot_scatter(folder / "peaks_shift_vs_mu.png", mu, np.asarray(table["dx"]) / px, sigma,
                 title="shift-VAE: shift vs true centre (colour: sigma)", xlabel="true mu", ylabel="shift (x units)")
    plot_scatter(folder / "peaks_shiftvae_latent.png", table["dx"], table[f"z{active}"], sigma,
                 title="shift-VAE latents (colour: sigma)", xlabel="shift", ylabel=f"z{active}")
    plot_scatter(folder / "peaks_vae_latents.png", vae_table["z0"], vae_table["z1"], mu,
                 title="plain VAE latents (colour: mu)", xlabel="z0", ylabel="z1")
    result.figures += [("peaks_shift_vs_mu.png", "1D peaks: the shift-VAE's shift against the true centre μ (colour: σ)"),
                       ("peaks_shiftvae_latent.png", "1D peaks: shift-VAE shift and active content latent (colour: σ)"),
                       ("peaks_vae_latents.png", "1D peaks: a plain VAE's two latents (colour: μ) — μ and σ mixed")]


def _map_r(maps: dict, eta_at: np.ndarray) -> dict:
    return {k: abs(float(np.corrcoef(m.ravel(), eta_at.ravel())[0, 1])) for k, m in maps.items()}


def _two_d(folder: Path, seed: int, log, result: PaperResult) -> None:
    from ..analysis.beta_search import BetaSearch
    from ..analysis.commands import ranking_text
    from ..analysis.plots import plot_image
    from ..analysis.smoothness import latent_maps, smoothness
    from ..patches import grid_sites
    from ..pipeline import demo_settings, run_pipeline
    from ..synth import shift_lattice

    sample = shift_lattice(seed=seed)
    data, eta = sample["data"], sample["order_parameter"]
    # what `napari-rvae analyze --grid 4 --arch shift-vae` does
    settings = demo_settings(arch="shift-vae")
    sites = grid_sites(data.shape, 24, step=GRID_STEP)
    run = run_pipeline(data, settings, sites)
    table = run.sites
    ny, nx = table["y"].nunique(), table["x"].nunique()
    truth = eta[table["y"].round().astype(int), table["x"].round().astype(int)]
    window = run.model.config.window[0]
    scores = {f"z{k}": smoothness(table[f"z{k}"].to_numpy().reshape(ny, nx), step=GRID_STEP, window=window)
              for k in range(run.model.config.latent)}
    best = max(scores, key=scores.get)
    r = abs(float(np.corrcoef(table[best], truth)[0, 1]))
    log(f"2D analyze --grid: smoothness {scores}, |r| of {best} = {r:.3f}")
    result.checks.append(Check("2D: content latent map vs order parameter η (analyze --grid 4 --arch shift-vae)",
                               "latent maps follow the order parameter", f"|r| {r:.2f} ({best}, the smoothest map)",
                               f"≥ {R_MIN}", r >= R_MIN, r))
    plot_image(folder / "lattice_eta.png", eta[0] if eta.ndim == 3 else eta, cmap="diverging",
               title="true order parameter eta")
    plot_image(folder / "lattice_latent_map.png", table[best].to_numpy().reshape(ny, nx), cmap="viridis",
               title=f"shift-VAE {best} map (analyze --grid {GRID_STEP})")
    plot_image(folder / "lattice_image.png", data[0], cmap="gray", title="shift-lattice image")
    result.figures += [("lattice_image.png", "shift-lattice sample: two phases differing by one atom's position"),
                       ("lattice_eta.png", "its true order parameter η"),
                       ("lattice_latent_map.png", "the shift-VAE's smoothest content-latent map")]

    # β-schedule search: a small and a large initial β (the paper's contrast), the CLI's other defaults
    search = BetaSearch(data[0], starts=(0.1, 30.0), ends=(1.0,), seed=seed, step=GRID_STEP).fit()
    ranking = search.ranking()
    # |r| of each scored model's smoothest latent with η at its map's window centres
    _, ys, xs = latent_maps(search.best_model, data[0], step=GRID_STEP)
    eta_at = eta.reshape(eta.shape[-2:])[np.ix_(np.round(ys).astype(int), np.round(xs).astype(int))]
    lines = []
    first_r = None
    for row in ranking.itertuples(index=False):
        i = int(np.flatnonzero(search.starts == row.beta_start)[0])
        j = int(np.flatnonzero(search.ends == row.beta_end)[0])
        per = _map_r(search.maps[(i, j)], eta_at)
        latent_scores = {k: float(search.latent_scores[i, j, n]) for n, k in enumerate(search.maps[(i, j)])}
        smoothest = max(latent_scores, key=latent_scores.get)
        lines.append(f"rank {row.rank}: β {row.beta_start:g} → {row.beta_end:g}, score {row.score:.3f}, "
                     f"|r| of its smoothest latent ({smoothest}) with η {per[smoothest]:.2f}")
        if first_r is None:
            first_r = per[smoothest]
    log("β search ranking:\n" + ranking_text(ranking))
    result.notes += ["β-schedule search on the shift-lattice image (ranking by FFT smoothness):"] + lines
    result.checks.append(Check("2D: β search, first-ranked schedule's map vs η",
                               "the smoothest latent maps (small initial β) are the physical ones",
                               f"{lines[0] if lines else 'nothing scored'}", f"|r| ≥ {R_MIN}",
                               first_r is not None and first_r >= R_MIN, first_r))
    best = search.best
    if best is not None:
        maps = search.maps[(best["i"], best["j"])]
        for k, m in maps.items():
            plot_image(folder / f"beta_best_{k}.png", m, title=f"beta {best['beta_start']:g} -> {best['beta_end']:g}: {k}")
            result.figures.append((f"beta_best_{k}.png", f"β search, first-ranked schedule: {k} map"))


def run(folder, *, seed: int = 0, log=print) -> PaperResult:
    folder = Path(folder)
    result = PaperResult("004", TITLE, DATA)
    _one_d(folder, seed, log, result)
    _two_d(folder, seed, log, result)
    return result
