"""The standard latent analysis of one movie, as data and as PNG figures.

:func:`analyse_latents` runs the analysis steps the papers show on an
encoded sites table: clusters, the angle histogram and its peaks, latent
densities over time, NMF of the per-frame latent densities (and their
loadings against bias), cluster fractions per frame and cluster mean
windows. It is what the ``analyze`` command and the Analysis dock call; each
step is also available on its own in this package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import plots
from .angles import angle_histogram, find_angle_peaks
from .clusters import cluster_fractions, cluster_mean_windows, cluster_sites
from .collapse import LatentCheck, check_latent_table
from .dynamics import DensityNMF, FrameDensity, density_nmf, latent_density_2d, latents_vs_frame
from .hysteresis import hysteresis_loop, loop_area


@dataclass
class LatentAnalysis:
    """Everything :func:`analyse_latents` found (empty / ``None`` where a step did not apply)."""

    sites: pd.DataFrame
    peaks: pd.DataFrame | None = None
    densities: dict = field(default_factory=dict)
    plane: FrameDensity | None = None
    nmf: DensityNMF | None = None
    fractions: pd.DataFrame | None = None
    cluster_ids: np.ndarray | None = None
    cluster_means: np.ndarray | None = None
    loop: pd.DataFrame | None = None
    loop_areas: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    angle_symmetry: int = 1
    check: LatentCheck | None = None
    skipped: dict = field(default_factory=dict)  # step → why it was not run (uninformative latents)
    failed: dict = field(default_factory=dict)  # step → the error that stopped it (the other steps still ran)

    def _step(self, name: str, run):
        """Run one analysis step; a failure is recorded with its reason instead of ending the analysis."""
        try:
            return run()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, IndexError, KeyError) as err:
            self.failed[name] = " ".join(str(err).split()) or type(err).__name__
            return None

    def arrays(self) -> dict[str, np.ndarray]:
        """Numeric results by name, ready for :func:`napari_rvae.analysis.save_npz`."""
        out: dict[str, np.ndarray] = {}
        for name, d in self.densities.items():
            out[f"density_{name}"], out[f"grid_{name}"], out[f"frames_{name}"] = d.density, d.grid, d.frames
        if self.plane is not None:
            out["plane_density"] = self.plane.density
            out["plane_y_grid"], out["plane_x_grid"] = self.plane.grids
        if self.nmf is not None:
            out["nmf_components"], out["nmf_loadings"], out["nmf_frames"] = (
                self.nmf.components, self.nmf.loadings, self.nmf.frames)
        if self.fractions is not None:
            out["cluster_fractions"] = self.fractions.to_numpy()
            out["cluster_fraction_frames"] = self.fractions.index.to_numpy()
            out["cluster_fraction_labels"] = self.fractions.columns.to_numpy()
        if self.cluster_means is not None:
            out["cluster_ids"], out["cluster_means"] = self.cluster_ids, self.cluster_means
        if self.peaks is not None:
            out["angle_peaks"], out["angle_peak_spacing"] = self.peaks["angle"].to_numpy(), self.peaks["spacing"].to_numpy()
        return out

    def summary(self) -> dict:
        """Key numbers for a run record (JSON-ready)."""
        out: dict = {}
        if self.check is not None:
            out["latent_check"] = self.check.to_dict()
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        if self.failed:
            out["failed"] = dict(self.failed)
        if "cluster" in self.sites:
            counts = self.sites["cluster"].value_counts().sort_index()
            out["cluster_sizes"] = {int(k): int(v) for k, v in counts.items()}
        if self.peaks is not None:
            out["angle_peaks_rad"] = [round(float(v), 4) for v in self.peaks["angle"]]
            out["angle_peak_spacing_rad"] = [round(float(v), 4) for v in self.peaks["spacing"]]
            out["angle_peak_spacing_deg"] = [round(float(np.degrees(v)), 1) for v in self.peaks["spacing"]]
            out["angle_symmetry"] = self.angle_symmetry
        if self.nmf is not None:
            out["nmf_relative_error"] = round(self.nmf.error, 4)
        if self.loop_areas:
            out["loop_area_signed"] = [round(float(v), 6) for v in self.loop_areas]
        return out


def analyse_latents(
    sites: pd.DataFrame,
    folder: str | os.PathLike | None = None,
    *,
    columns: Sequence[str] | None = None,
    n_clusters: int = 5,
    method: str = "gmm",
    covariance: str = "full",
    n_components: int = 2,
    bandwidth: float = 0.075,
    angle_offset: float = 0.0,
    windows: np.ndarray | None = None,
    window_index: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    seed: int = 0,
    angle_symmetry: int = 1,
    check: LatentCheck | None = None,
) -> LatentAnalysis:
    """Run the standard latent analysis; with ``folder``, also write its PNG figures there.

    Parameters
    ----------
    sites : DataFrame
        Encoded sites table (``frame`` and latent columns ``angle``, ``z0`` …).
    folder : path, optional
        Where to write ``*.png`` figures (created if needed).
    columns : list of str, optional
        Latent columns to cluster on (default: angle and every z).
    n_clusters, method, covariance : clustering settings (:func:`cluster_sites`).
    n_components : int
        NMF populations of the per-frame latent densities.
    bandwidth : float
        KDE bandwidth in standardised units (paper 001: 0.075).
    angle_offset : float
        Added to the angle (radians) before the histogram and peak finding.
    windows, window_index : (N, w, w) and (N,), optional
        Windows (and their sites rows) for the cluster mean windows.
    bias : (T,) array, optional
        Bias per frame, in the order of the sorted frames present; gives the
        loadings-vs-bias loop and its area per NMF component.
    seed : int
    angle_symmetry : int
        Rotation order of the windows' motif (graphene sites: 3): the angle histogram and its
        peaks are taken modulo ``2π / angle_symmetry``, so orientations a symmetry turn apart
        count as one (graphene's sublattices then always appear 60° apart).
    check : LatentCheck, optional
        The model's :func:`~napari_rvae.analysis.collapse.check_model`; default: the
        latents' spreads in ``sites`` (:func:`~napari_rvae.analysis.collapse.check_latent_table`).
        Uninformative latents get no clusters, angle peaks or NMF (``result.skipped`` says
        why); collapsed latents are left out of the clustering, a collapsed angle gets no
        peaks.

    Returns
    -------
    LatentAnalysis
        Steps that failed are listed in ``result.failed`` with their reason; the others ran.
    """
    if "frame" not in sites.columns:
        raise ValueError("sites: missing column 'frame'")
    from ..io.sites import latent_columns

    result = LatentAnalysis(sites=sites.copy(), angle_symmetry=int(angle_symmetry))
    result.check = check if check is not None else result._step("latent check", lambda: check_latent_table(sites))
    check = result.check or LatentCheck(n_windows=len(sites))
    nothing = "the latents carry no information"
    wanted = list(columns) if columns is not None else [c for c in latent_columns(sites) if c not in ("dx", "dy")]
    usable = check.usable(wanted)
    if not check.informative:
        for step in ("clusters", "angle peaks", "nmf"):
            result.skipped[step] = nothing
    elif not usable:
        result.skipped["clusters"] = f"every latent it would use ({', '.join(wanted)}) collapsed"
    else:
        if len(usable) < len(wanted):
            result.skipped["clusters on " + ", ".join(c for c in wanted if c not in usable)] = "collapsed latents left out"
        clustered = result._step("clusters", lambda: cluster_sites(sites, usable, n_clusters, method=method,
                                                                    covariance=covariance, seed=seed))
        if clustered is not None:
            result.sites = clustered
    table = result.sites
    z_names = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    frames = np.unique(table["frame"].to_numpy())
    if "cluster" in table:
        result.fractions = result._step("cluster fractions", lambda: cluster_fractions(table, frames=frames))
    if "angle" in table.columns and "angle peaks" not in result.skipped:
        if check.angle_collapsed:
            result.skipped["angle peaks"] = (f"the angle collapsed (spread {check.spread.get('angle', 0):.2g} rad): "
                                             "rotation was not learned")
        else:
            result.peaks = result._step("angle peaks", lambda: find_angle_peaks(
                table["angle"].dropna(), offset=angle_offset, symmetry=angle_symmetry))
    shown = [c for c in (["angle"] if "angle" in table else []) + z_names if c not in check.collapsed]
    for name in [c for c in (["angle"] if "angle" in table else []) + z_names if c in check.collapsed]:
        result.skipped[f"{name} density"] = f"{name} collapsed: its density would show noise"
    for name in shown:
        found = result._step(f"{name} density", lambda name=name: latents_vs_frame(
            table, [name], bandwidth=bandwidth, frame_ids=frames)[name])
        if found is not None:
            result.densities[name] = found
    live_z = [c for c in z_names if c in shown]
    if len(live_z) >= 2:
        result.plane = result._step("latent plane density", lambda: latent_density_2d(
            table["frame"], table[live_z[0]], table[live_z[1]], bandwidth=bandwidth, frame_ids=frames,
            names=(live_z[0], live_z[1])))
        source = result.plane
    else:
        source = result.densities.get(live_z[0]) if live_z else None
    if source is not None and len(frames) > n_components and "nmf" not in result.skipped:
        result.nmf = result._step("nmf", lambda: density_nmf(source, n_components, seed=seed))
    if windows is not None and "cluster" in table:
        means = result._step("cluster mean windows", lambda: cluster_mean_windows(
            windows, table["cluster"].to_numpy(), window_index))
        if means is not None:
            result.cluster_ids, result.cluster_means = means
    if bias is not None and result.nmf is not None:
        bias = np.asarray(bias, dtype=np.float64).ravel()
        if len(bias) != len(frames):
            raise ValueError(f"bias: {len(bias)} values for {len(frames)} frames; give one bias per frame")
        result.loop = result._step("hysteresis loop", lambda: hysteresis_loop(result.nmf.loadings, bias, frames))
        areas = result._step("loop areas", lambda: [loop_area(bias, result.nmf.loadings[:, k])
                                                    for k in range(result.nmf.loadings.shape[1])])
        result.loop_areas = areas or []
    if folder is not None:
        result.figures = _write_figures(result, Path(folder), angle_offset, bias, angle_symmetry)
    return result


def _write_figures(result: LatentAnalysis, folder: Path, angle_offset: float, bias,
                   symmetry: int = 1) -> dict[str, Path]:
    """Every figure that can be drawn; one that cannot is listed in ``result.failed``."""
    folder.mkdir(parents=True, exist_ok=True)
    table, figures = result.sites, {}
    z_names = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]

    def draw(key, make):
        path = result._step(f"figure {key}", make)
        if path is not None:
            figures[key] = path

    if result.peaks is not None:
        def angle_figure():
            centres, density = angle_histogram(table["angle"].dropna(), offset=angle_offset, symmetry=symmetry)
            modulo = f" modulo {360 // symmetry}° (the motif's {symmetry}-fold symmetry)" if symmetry > 1 else ""
            return plots.plot_lines(
                folder / "angle_histogram.png", centres, {"density": density}, marks=result.peaks["angle"],
                title=f"angle histogram{modulo}: {len(result.peaks)} peaks", xlabel="angle (rad)",
                ylabel="density (1/rad)")
        draw("angle_histogram", angle_figure)
    for name, d in result.densities.items():
        draw(f"{name}_vs_frame", lambda name=name, d=d: plots.plot_image(
            folder / f"{name}_vs_frame.png", d.density, extent=(d.grid[0], d.grid[-1], d.frames[0], d.frames[-1] + 1),
            title=f"{name} density per frame", xlabel=f"{name}{' (rad)' if name == 'angle' else ''}", ylabel="frame"))
    clustered = "cluster" in table
    if len(z_names) >= 2 and clustered:
        draw("latents_by_cluster", lambda: plots.plot_scatter(
            folder / "latents_by_cluster.png", table[z_names[0]], table[z_names[1]], table["cluster"], labels=True,
            title="latents by cluster", xlabel=z_names[0], ylabel=z_names[1]))
    if len(z_names) >= 2 and "angle" in table and (result.check is None or result.check.informative):
        draw("latents_by_angle", lambda: plots.plot_scatter(
            folder / "latents_by_angle.png", table[z_names[0]], table[z_names[1]], table["angle"], cmap="cyclic",
            title="latents coloured by angle", xlabel=z_names[0], ylabel=z_names[1]))
    if clustered and {"x", "y"} <= set(table.columns):
        first = table["frame"].min()
        in_frame = table[table["frame"] == first]
        draw("cluster_map", lambda: plots.plot_scatter(
            folder / "cluster_map.png", in_frame["x"], in_frame["y"], in_frame["cluster"], labels=True, invert_y=True,
            title=f"clusters in frame {first}", xlabel="x (px)", ylabel="y (px)"))
    if result.fractions is not None and len(result.fractions) > 1:
        f = result.fractions
        draw("cluster_fractions", lambda: plots.plot_lines(
            folder / "cluster_fractions.png", f.index.to_numpy(), {f"cluster {c}": f[c].to_numpy() for c in f.columns},
            title="cluster fractions per frame", xlabel="frame", ylabel="fraction"))
    if result.cluster_means is not None:
        draw("cluster_means", lambda: plots.plot_windows(
            folder / "cluster_means.png", result.cluster_means, titles=[f"cluster {k}" for k in result.cluster_ids]))
    if result.nmf is not None:
        n = result.nmf
        loads = {f"component {k}": n.loadings[:, k] for k in range(n.loadings.shape[1])}
        draw("nmf_loadings", lambda: plots.plot_lines(
            folder / "nmf_loadings.png", n.frames, loads, title="NMF loadings per frame", xlabel="frame",
            ylabel="loading"))
        titles = [f"component {k}" for k in range(len(n.components))]
        if n.components.ndim == 3:  # latent plane: show high y at the top
            draw("nmf_components", lambda: plots.plot_windows(
                folder / "nmf_components.png", n.components[:, ::-1], cmap="viridis", titles=titles, scale=3))
        else:
            z = next(name for name in result.densities if name != "angle")  # the latent NMF ran on
            draw("nmf_components", lambda: plots.plot_lines(
                folder / "nmf_components.png", result.densities[z].grid, dict(zip(titles, n.components)),
                title="NMF components", xlabel=z, ylabel="density"))
        if bias is not None:
            draw("nmf_loadings_vs_bias", lambda: plots.plot_lines(
                folder / "nmf_loadings_vs_bias.png", np.asarray(bias, float), loads, markers=True,
                title="NMF loadings vs bias", xlabel="bias", ylabel="loading"))
    return figures
