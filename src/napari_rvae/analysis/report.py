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

    Returns
    -------
    LatentAnalysis
    """
    if "frame" not in sites.columns:
        raise ValueError("sites: missing column 'frame'")
    result = LatentAnalysis(sites=cluster_sites(sites, columns, n_clusters, method=method,
                                                covariance=covariance, seed=seed))
    table = result.sites
    z_names = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    frames = np.unique(table["frame"].to_numpy())
    result.fractions = cluster_fractions(table, frames=frames)
    if "angle" in table.columns:
        result.peaks = find_angle_peaks(table["angle"].dropna(), offset=angle_offset, symmetry=angle_symmetry)
        result.angle_symmetry = int(angle_symmetry)
    result.densities = latents_vs_frame(table, (["angle"] if "angle" in table else []) + z_names,
                                        bandwidth=bandwidth, frame_ids=frames)
    if len(z_names) >= 2:
        result.plane = latent_density_2d(table["frame"], table[z_names[0]], table[z_names[1]],
                                         bandwidth=bandwidth, frame_ids=frames, names=(z_names[0], z_names[1]))
        source = result.plane
    elif z_names:
        source = result.densities[z_names[0]]
    else:
        source = None
    if source is not None and len(frames) > n_components:
        result.nmf = density_nmf(source, n_components, seed=seed)
    if windows is not None:
        result.cluster_ids, result.cluster_means = cluster_mean_windows(windows, table["cluster"].to_numpy(), window_index)
    if bias is not None and result.nmf is not None:
        bias = np.asarray(bias, dtype=np.float64).ravel()
        if len(bias) != len(frames):
            raise ValueError(f"bias: {len(bias)} values for {len(frames)} frames; give one bias per frame")
        result.loop = hysteresis_loop(result.nmf.loadings, bias, frames)
        result.loop_areas = [loop_area(bias, result.nmf.loadings[:, k]) for k in range(n_components)]
    if folder is not None:
        result.figures = _write_figures(result, Path(folder), angle_offset, bias, angle_symmetry)
    return result


def _write_figures(result: LatentAnalysis, folder: Path, angle_offset: float, bias,
                   symmetry: int = 1) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table, figures = result.sites, {}
    z_names = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    if result.peaks is not None:
        centres, density = angle_histogram(table["angle"].dropna(), offset=angle_offset, symmetry=symmetry)
        modulo = f" modulo {360 // symmetry}° (the motif's {symmetry}-fold symmetry)" if symmetry > 1 else ""
        figures["angle_histogram"] = plots.plot_lines(
            folder / "angle_histogram.png", centres, {"density": density}, marks=result.peaks["angle"],
            title=f"angle histogram{modulo}: {len(result.peaks)} peaks", xlabel="angle (rad)",
            ylabel="density (1/rad)")
    for name, d in result.densities.items():
        figures[f"{name}_vs_frame"] = plots.plot_image(
            folder / f"{name}_vs_frame.png", d.density, extent=(d.grid[0], d.grid[-1], d.frames[0], d.frames[-1] + 1),
            title=f"{name} density per frame", xlabel=f"{name}{' (rad)' if name == 'angle' else ''}", ylabel="frame")
    if len(z_names) >= 2:
        figures["latents_by_cluster"] = plots.plot_scatter(
            folder / "latents_by_cluster.png", table[z_names[0]], table[z_names[1]], table["cluster"], labels=True,
            title="latents by cluster", xlabel=z_names[0], ylabel=z_names[1])
        if "angle" in table:
            figures["latents_by_angle"] = plots.plot_scatter(
                folder / "latents_by_angle.png", table[z_names[0]], table[z_names[1]], table["angle"], cmap="cyclic",
                title="latents coloured by angle", xlabel=z_names[0], ylabel=z_names[1])
    first = table["frame"].min()
    in_frame = table[table["frame"] == first]
    figures["cluster_map"] = plots.plot_scatter(
        folder / "cluster_map.png", in_frame["x"], in_frame["y"], in_frame["cluster"], labels=True, invert_y=True,
        title=f"clusters in frame {first}", xlabel="x (px)", ylabel="y (px)")
    if result.fractions is not None and len(result.fractions) > 1:
        f = result.fractions
        figures["cluster_fractions"] = plots.plot_lines(
            folder / "cluster_fractions.png", f.index.to_numpy(), {f"cluster {c}": f[c].to_numpy() for c in f.columns},
            title="cluster fractions per frame", xlabel="frame", ylabel="fraction")
    if result.cluster_means is not None:
        figures["cluster_means"] = plots.plot_windows(
            folder / "cluster_means.png", result.cluster_means, titles=[f"cluster {k}" for k in result.cluster_ids])
    if result.nmf is not None:
        n = result.nmf
        loads = {f"component {k}": n.loadings[:, k] for k in range(n.loadings.shape[1])}
        figures["nmf_loadings"] = plots.plot_lines(
            folder / "nmf_loadings.png", n.frames, loads, title="NMF loadings per frame", xlabel="frame", ylabel="loading")
        titles = [f"component {k}" for k in range(len(n.components))]
        if n.components.ndim == 3:  # latent plane: show high y at the top
            figures["nmf_components"] = plots.plot_windows(
                folder / "nmf_components.png", n.components[:, ::-1], cmap="viridis", titles=titles, scale=3)
        else:
            grid = result.densities[z_names[0]].grid
            figures["nmf_components"] = plots.plot_lines(
                folder / "nmf_components.png", grid, dict(zip(titles, n.components)),
                title="NMF components", xlabel=z_names[0], ylabel="density")
        if bias is not None:
            figures["nmf_loadings_vs_bias"] = plots.plot_lines(
                folder / "nmf_loadings_vs_bias.png", np.asarray(bias, float), loads, markers=True,
                title="NMF loadings vs bias", xlabel="bias", ylabel="loading")
    return figures
