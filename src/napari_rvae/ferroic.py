"""The ferroic-variants recipe (paper 003): B-site-centred windows → rotation-only rVAE → variants.

In a perovskite the polarisation shows as the B-site column's off-centring from its four A
neighbours; the ferroic variants are the same off-centred cell turned by 90°. Windows centred
on the refined B columns see that cell: the A square sits off the window centre against the
polarisation, which is the only thing that breaks the cell's four-fold symmetry, so an rVAE that
explains the windows by turning one template finds the variants as angles a quarter turn apart.
What makes that hold (measured in docs/reproduce.md, "003 ferroic variants"):

- **windows in lattice units**: ``window_cells`` (2) B–B spacings wide, so the B column, its four
  A neighbours and the inner edge of the next B columns are in, at any pixel size; the spacing is
  measured on the B sites themselves;
- **centred on the refined B column** (sub-pixel resampling), the point the rVAE turns about, so a
  turn by π/2 maps one variant onto the next; no shift latents (the B column *is* the centre: a
  shift latent would explain the off-centring as a shift and leave the angle nothing to do);
- **round columns**: a probe astigmatism (elliptical columns of fixed orientation) does not turn
  with the variant and pulls the peaks off their π/2 spacing; it is measured and blurred away first;
- **even columns**: the image divided by the A columns' brightness interpolated between them, so
  the film row next to a dimmer substrate does not hold a one-sided intensity step, which an rVAE
  reads as a turn (a third to a half of that row's variants were wrong without it); then **one
  global intensity scale** for all windows;
- **a second reading where the first explains little**: the encoder reads every window in one pass;
  a window it sends to unusual latents (a nearly four-fold template that does not match it) gets an
  angle whose quarter turn is arbitrary (7 % of the film on one run). The decoder's reconstruction of
  each window is compared at the four quarter turns of the encoder's reading and of the template at
  the median latents, and a clearly better one (≥ 10 % lower error) replaces it, latents included
  (:func:`~napari_rvae.analysis.variants.symmetric_rereading`; ``reread``, column ``reread``);
- **angles in one template's frame**: the rVAE's template changes with the content latents, and a
  decoder may give some latents (weakly polar cells, at domain walls) a template turned by about a
  quarter turn, so the same variant got two angles a quarter turn apart (a variant accuracy of 0.78
  and 0.86 on two of seven runs); each site's angle is read against the template at the median
  latents (:func:`~napari_rvae.analysis.variants.common_frame_angle`; ``common_frame``); the
  encoder's own angle stays in ``angle_encoded``;
- **the angle as a polarisation vector in the GMM** (5 components, full covariance, as the paper,
  on angle and latents): a non-polar cell is four-fold symmetric, so the rVAE gives the substrate
  the film's four variant angles and a Gaussian on (cos, sin) of the angle cannot hold it in one
  cluster; scaled by the B column's measured off-centring, its angles fall together at the origin
  (:func:`~napari_rvae.analysis.variants.cluster_variants`);
- the decoder is evaluated on about ``decoder_pixels`` random pixels per window and step, so the
  training cost does not grow with the pixel size of the lattice.

:func:`ferroic_variants` runs it on a movie (detecting the atoms, or on given sites).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

PRESET = "ferroic-variants"
EVEN_COLUMNS_WIDTH = 0.35  # σ of the brightness map, in B–B spacings (the nearest A column dominates)


@dataclass
class FerroicRecipe:
    """Settings of the ferroic-variants recipe (pixels and radians; window in lattice spacings)."""

    window_cells: float = 2.0
    latent: int = 2
    steps: int = 1800
    epochs: int | None = None
    batch: int = 32
    lr: float = 2e-3
    normalisation: str = "global"
    even_columns: bool = True
    round_columns: bool = True
    translation: bool = False
    common_frame: bool = True
    reread: bool = True
    decoder_pixels: int = 256
    n_variants: int = 4
    n_clusters: int = 5
    polarisation_weight: float = 6.0
    seed: int = 0
    threads: int | None = None

    def __post_init__(self):
        if not (self.window_cells > 0.5 and math.isfinite(self.window_cells)):
            raise ValueError(f"window_cells: a window of more than half a lattice spacing, got {self.window_cells}")
        if (self.epochs is not None and self.epochs < 1) or min(self.steps, self.batch) < 1 or self.latent < 0 \
                or self.decoder_pixels < 16:
            raise ValueError("epochs, steps and batch must be ≥ 1, latent ≥ 0, decoder_pixels ≥ 16")
        if self.n_variants < 2 or self.n_clusters < 1:
            raise ValueError("n_variants must be ≥ 2 and n_clusters ≥ 1")
        if not (self.polarisation_weight > 0 and math.isfinite(self.polarisation_weight)):
            raise ValueError(f"polarisation_weight must be > 0, got {self.polarisation_weight}")

    def epochs_for(self, n_windows: int) -> int:
        """``epochs``, or as many as give about ``steps`` optimiser steps on ``n_windows`` windows (85 % of
        them train), between 10 and 400: a small image trains as long as a large one."""
        if self.epochs is not None:
            return int(self.epochs)
        per_epoch = max(1, math.ceil(0.85 * int(n_windows) / self.batch))
        return int(np.clip(math.ceil(self.steps / per_epoch), 10, 400))

    def window_for(self, spacing: float) -> int:
        """Window side (pixels, even) for a B–B spacing in pixels."""
        return int(max(8, 2 * round(self.window_cells * float(spacing) / 2)))


@dataclass
class FerroicResult:
    """What the recipe found: the B sites with their latents, variant and cluster, and the model."""

    sites: pd.DataFrame  # B sites: frame, y, x, … angle, angle_encoded, z0 …, variant, cluster; NaN / −1 if not cut
    windows: np.ndarray  # (N, w, w) the windows of the encoded rows
    rows: np.ndarray  # (N,) positional row of ``sites`` of every window
    model: object
    peaks: pd.DataFrame  # the variant peaks of the encoded angle (angle, spacing …)
    spacing: float  # B–B spacing, pixels
    window: int
    recipe: FerroicRecipe
    timings: dict = field(default_factory=dict)
    check: object | None = None
    epochs: int = 0
    clustering: dict = field(default_factory=dict)  # how the GMM read the angle (cluster_variants' info)
    angle_frame: list | None = None  # latents of the common template the angles are read against (None: as encoded)
    rereading: dict = field(default_factory=dict)  # windows read again (symmetric_rereading): count, margin

    def record(self) -> dict:
        return {"preset": PRESET, "recipe": asdict(self.recipe), "spacing_px": self.spacing, "window_px": self.window,
                "peaks_rad": [float(v) for v in self.peaks["angle"]],
                "peak_spacings_rad": [float(v) for v in self.peaks["spacing"]], "epochs": self.epochs,
                "clustering": self.clustering, "angle_frame_latents": self.angle_frame, "rereading": self.rereading,
                "timings_s": self.timings}


def perovskite_atoms(movie, sites: pd.DataFrame | None = None, *, a_site: str = "bright") -> pd.DataFrame:
    """The atom columns of a perovskite image with their ``sublattice`` (``"A"``/``"B"``) and, on the
    B columns, the measured displacement ``disp_y, disp_x, disp`` from the cell centre.

    ``sites``: atom sites already found (``frame, y, x, intensity``); default: :func:`detect_atoms`."""
    from .detect import detect_atoms
    from .detect.perovskite import with_cells

    if sites is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = detect_atoms(movie)
    if "sublattice" not in sites:
        sites = with_cells(sites[sites["kind"] == "atom"] if "kind" in sites else sites, a_site=a_site)
    return sites[(sites["kind"] == "atom") if "kind" in sites else np.ones(len(sites), bool)]


def b_sites(movie, sites: pd.DataFrame | None = None, *, a_site: str = "bright") -> pd.DataFrame:
    """The B columns of a perovskite image as a sites table (refined positions, with the measured
    displacement ``disp_y, disp_x`` from the cell centre where the cell is complete).

    ``sites``: atom sites already found (``frame, y, x, intensity``, or with ``sublattice``);
    default: :func:`detect_atoms`."""
    atoms = perovskite_atoms(movie, sites, a_site=a_site)
    b = atoms[atoms["sublattice"] == "B"].reset_index(drop=True)
    if len(b) < 8:
        raise ValueError(f"only {len(b)} B columns were found; a ferroic-variants analysis needs a perovskite "
                         "image with both A and B columns resolved (see detect --perovskite)")
    return b


def even_columns(movie, atoms: pd.DataFrame, spacing: float, *, sublattice: str = "A",
                 width: float = EVEN_COLUMNS_WIDTH) -> tuple[np.ndarray, dict]:
    """Divide each frame by the brightness of one sublattice's columns, interpolated between them.

    The brightness map is a Gaussian-weighted mean (σ = ``width`` × ``spacing``) of the four nearest
    ``sublattice`` columns' ``intensity`` over their median: near a column it is that column's own
    brightness. Columns of another chemistry (a dimmer substrate) then look like the film's, so a
    window on the film row next to them no longer holds a one-sided intensity step. Frames
    without such columns (or sites without ``intensity``) are left as they are.

    Returns ``(movie, info)``; ``info``: ``applied`` (bool), ``frames`` (frames levelled) and ``message``."""
    from scipy.spatial import cKDTree

    out = np.array(movie, dtype=np.float32, copy=True)
    if "intensity" not in atoms or "sublattice" not in atoms:
        return out, {"applied": False, "frames": 0, "message": "columns not levelled (no intensity per column)"}
    cols = atoms[(atoms["sublattice"] == sublattice) & np.isfinite(atoms["intensity"])]
    yy, xx = np.mgrid[0:out.shape[1], 0:out.shape[2]]
    pixels = np.c_[yy.ravel(), xx.ravel()]
    done = 0
    for f in range(len(out)):
        here = cols[cols["frame"] == f] if "frame" in cols else cols
        level = here["intensity"].to_numpy(dtype=np.float64)
        if len(here) < 4 or not np.median(level) > 0:
            continue
        dist, idx = cKDTree(here[["y", "x"]].to_numpy()).query(pixels, k=4)
        weight = np.exp(-0.5 * (dist / (width * spacing)) ** 2) + 1e-12
        brightness = (weight * (level / np.median(level))[idx]).sum(1) / weight.sum(1)
        out[f] /= np.clip(brightness, 0.05, None).reshape(out.shape[1:]).astype(np.float32)
        done += 1
    return out, {"applied": done > 0, "frames": done, "sublattice": sublattice, "width": width,
                 "message": f"columns levelled by the {sublattice} columns' brightness in {done} of {len(out)} frames"}


def ferroic_variants(movie, recipe: FerroicRecipe | None = None, sites: pd.DataFrame | None = None,
                     window: int | None = None, log=None) -> FerroicResult:
    """Run the recipe: B sites → windows → rotation-only rVAE → angle peaks, variants, GMM clusters.

    Parameters
    ----------
    movie : (T, Y, X) or (Y, X) array
        HAADF-like frames (bright A columns).
    recipe : FerroicRecipe, optional
    sites : DataFrame, optional
        Atom sites (all columns, A and B; or B sites with a ``sublattice`` column); default: detected.
    window : int, optional
        Window side in pixels instead of ``recipe.window_cells`` B–B spacings.
    log : callable, optional
        Receives one line per stage.
    """
    from .analysis.collapse import check_after_training
    from .patches import cut_windows, site_spacing
    from .vae import Trainer, VAEConfig, build_model, encode

    recipe = recipe or FerroicRecipe()
    say = log or (lambda message: None)
    movie = np.asarray(movie, dtype=np.float32)
    movie = movie[None] if movie.ndim == 2 else movie
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    atoms = perovskite_atoms(movie, sites)
    b = b_sites(movie, atoms)
    spacing = site_spacing(b)
    if spacing is None:
        raise ValueError("the B columns' spacing could not be measured (too few B sites per frame)")
    levelled = {"applied": False}
    if recipe.even_columns:
        movie, levelled = even_columns(movie, atoms, spacing)
        say(f"columns: {levelled['message']}")
    window = recipe.window_for(spacing) if window is None else int(window)
    timings["sites_s"] = time.perf_counter() - t0
    say(f"sites: {len(b)} B columns, B–B spacing {spacing:.2f} px → windows of {window} px")
    t0 = time.perf_counter()
    cut = cut_windows(movie, b, window, normalisation=recipe.normalisation, centring="subpixel",
                      round_columns=recipe.round_columns)
    cut.normalisation["source"] = "image"
    cut.normalisation["even_columns"] = levelled  # the windows were cut from the levelled image
    timings["windows_s"] = time.perf_counter() - t0
    say(f"windows: {cut.report.summary()}" + (f"; {cut.normalisation['round_columns'].get('message', '')}"
                                              if isinstance(cut.normalisation.get("round_columns"), dict) else ""))
    if len(cut) < max(recipe.n_clusters, 8):
        raise ValueError(f"only {len(cut)} windows could be cut ({cut.report.summary()}); the image is too small "
                         f"for windows of {window} px")
    t0 = time.perf_counter()
    config = VAEConfig(arch="rvae", window=(window, window), latent=recipe.latent, translation=recipe.translation)
    model = build_model(config, seed=recipe.seed)
    model.normalisation = cut.normalisation
    trainer = Trainer(model, cut.windows, batch_size=recipe.batch, lr=recipe.lr, seed=recipe.seed,
                      threads=recipe.threads, pixel_fraction=min(1.0, recipe.decoder_pixels / window**2))
    epochs = recipe.epochs_for(len(cut))
    for stats in trainer.run(epochs):
        if stats["epoch"] in (1, epochs) or stats["epoch"] % 10 == 0:
            say(f"train: epoch {stats['epoch']}/{epochs} loss {stats.get('train_loss', float('nan')):.4g}")
    model.history = list(trainer.state.history)
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    latents = encode(model, cut.windows)
    table = b.copy()
    for name in latents.columns:
        column = np.full(len(table), np.nan)
        column[cut.rows] = latents[name].to_numpy()
        table[name] = column
    check = check_after_training(model, cut.windows)
    from .analysis.angles import assign_variants
    from .analysis.variants import cluster_variants, common_frame_angle, symmetric_rereading, variant_peaks
    from .vae.latents import decode

    names = [f"z{k}" for k in range(recipe.latent)]
    table["angle_encoded"] = table["angle"]
    frame = {"reference": None}
    angle, reading_z = latents["angle"].to_numpy(), latents[names].to_numpy()
    reference, rereading = None, {}

    def draw(z, a):
        return decode(model, z, angle=a)

    if recipe.reread and names:
        angle, reading_z, reading = symmetric_rereading(cut.windows, angle, reading_z, draw, n_fold=recipe.n_variants)
        reference = reading["reference"]
        rereading = {"windows": int(reading["reread"].sum()), "of": int(len(cut)), "margin": reading["margin"],
                     "n_fold": reading["n_fold"]}
        table["reread"] = False
        table.loc[table.index[cut.rows], "reread"] = reading["reread"]
        # the reading's latents too: a window the encoder sent to another phase's latents keeps them otherwise,
        # and the GMM puts it with that phase (seed 0 at a = 30 px: the substrate's cluster 0.91 → 0.56 pure)
        table.loc[table.index[cut.rows], names] = reading_z
        say(f"angle: {rereading['windows']} of {len(cut)} windows read again (the encoder's reading explained "
            f"them ≥ {reading['margin']:.0%} worse than a {recipe.n_variants}-fold turn of it or of the template "
            "at the median latents)")
    if recipe.common_frame and names:
        angle, frame = common_frame_angle(angle, reading_z, draw, reference=reference)
        turned = float(np.mean(np.abs(frame["turn"]) > 0.2))
        say(f"angle: read in the frame of the template at the median latents; {turned:.0%} of the sites' "
            "templates are turned by more than 0.2 rad from it")
    table.loc[table.index[cut.rows], "angle"] = angle
    encoded = table.iloc[cut.rows]
    peaks = variant_peaks(encoded["angle"], recipe.n_variants)
    variant = np.full(len(table), -1, dtype=np.int64)
    if len(peaks):
        variant[cut.rows] = assign_variants(encoded["angle"].to_numpy(), peaks["angle"].to_numpy())
    table["variant"] = variant
    labels, clustering = cluster_variants(encoded, names, recipe.n_clusters, weight=recipe.polarisation_weight,
                                          seed=recipe.seed)
    table["cluster"] = -1
    table.loc[table.index[cut.rows], "cluster"] = labels
    if clustering["polarity"] is None:
        say("clusters: no measured B off-centring (disp) in the sites; the angle enters the GMM unscaled, so a "
            "non-polar phase may be split over the variant angles")
    timings["analysis_s"] = time.perf_counter() - t0
    say(f"angle peaks: {', '.join(f'{v:.2f}' for v in peaks['angle'])} rad; spacings "
        f"{', '.join(f'{v:.2f}' for v in peaks['spacing'])} rad; {check.line()}")
    return FerroicResult(sites=table, windows=cut.windows, rows=cut.rows, model=model, peaks=peaks, spacing=spacing,
                         window=window, recipe=recipe, timings=timings, check=check, epochs=epochs,
                          clustering=clustering, angle_frame=frame["reference"], rereading=rereading)


def write_ferroic_outputs(result: FerroicResult, folder, *, movie_path=None, movie_info: dict | None = None,
                          extra: dict | None = None) -> dict:
    """Write the run as a project folder (replaced as a whole): ``sites.csv`` (B sites with ``angle``,
    ``z0`` …, ``variant``, ``cluster``), ``model/``, ``figures/*.png`` (the paper's figures),
    ``run.json`` and ``project.json``. Returns name → path."""
    import json
    from pathlib import Path

    from .analysis.project import write_project_files
    from .analysis.variants import write_variant_figures
    from .io.folders import replaced_folder
    from .vae import save_model

    final = Path(folder)
    with replaced_folder(final, markers=("project.json",)) as stage:
        save_model(result.model, stage / "model")
        table = result.sites.iloc[result.rows]
        figures = write_variant_figures(stage / "figures", table, result.peaks["angle"], windows=result.windows,
                                        clusters=table["cluster"].to_numpy())
        record = {**result.record(), "n_sites": int(len(result.sites)), "n_encoded": int(len(result.rows)),
                  "check": result.check.to_dict() if result.check is not None else None, **(extra or {})}
        write_project_files(stage, final=final, sites=result.sites, movie_path=movie_path, movie_info=movie_info,
                            models={"model": stage / "model"},
                            figures={Path(name).stem: stage / "figures" / name for name, _ in figures},
                            record=json.loads(json.dumps(record, default=str)))
    written = {"sites": final / "sites.csv", "model": final / "model", "run": final / "run.json",
               "project": final / "project.json"}
    written.update({f"figure_{Path(name).stem}": final / "figures" / name for name, _ in figures})
    return written
