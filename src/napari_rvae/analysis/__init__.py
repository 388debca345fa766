"""Latent-space analysis (numpy / scipy / sklearn / pandas; no Qt).

- :mod:`.clusters` — GMM / k-means on latents (circular angle), cluster mean
  windows, cluster fractions vs frame, Hungarian matching to ground truth.
- :mod:`.dynamics` — per-frame KDE of latents (frame × value images), 2D
  latent KDE per frame, NMF of the densities.
- :mod:`.hysteresis` — loadings vs bias: sweep directions, loop table, loop area, bias CSV.
- :mod:`.angles` — wrapping, offsets, histogram peaks and their spacing, variants.
- :mod:`.baselines` — PCA / NMF / GMM / conv-autoencoder on raw windows and
  k-NN / silhouette scores against known classes.
- :mod:`.export` — CSV / Parquet / NPZ / ``run.json`` exports and project folders.
- :mod:`.plots` — headless PNG figures (Pillow).
- :mod:`.collapse` — is a trained model informative? Latent spread vs the prior, KL per latent,
  reconstruction vs the mean window (:func:`check_model`, :func:`check_latent_table`).
- :mod:`.report` — :func:`analyse_latents`: all of the above on one sites table, as data + PNGs.
"""

from .angles import angle_difference, angle_histogram, assign_variants, find_angle_peaks, peak_spacings, wrap_angle
from .baselines import (
    autoencoder_embedding,
    compare_baselines,
    gmm_windows,
    knn_accuracy,
    nmf_embedding,
    pca_embedding,
    silhouette,
)
from .clusters import (
    agreement,
    cluster_features,
    cluster_fractions,
    cluster_mean_windows,
    cluster_sites,
    latent_features,
    match_clusters,
)
from .dynamics import (
    DensityNMF,
    FrameDensity,
    circular_grid,
    density_nmf,
    density_vs_frame,
    latent_density_2d,
    latents_vs_frame,
)
from .collapse import LatentCheck, check_latent_table, check_model
from .hysteresis import hysteresis_loop, loop_area, read_bias, sweep_direction
from .report import LatentAnalysis, analyse_latents
from .export import export_sites, load_npz, run_record, save_npz, write_run_record
from .project import Project, load_project, project_layer_data, save_project

__all__ = [
    "DensityNMF", "FrameDensity", "LatentAnalysis", "LatentCheck", "Project", "analyse_latents",
    "check_latent_table", "check_model",
    "agreement", "angle_difference", "angle_histogram", "assign_variants", "autoencoder_embedding",
    "circular_grid", "cluster_features", "cluster_fractions", "cluster_mean_windows", "cluster_sites",
    "compare_baselines", "density_nmf", "density_vs_frame", "export_sites", "find_angle_peaks",
    "gmm_windows", "hysteresis_loop", "knn_accuracy", "latent_density_2d", "latent_features",
    "latents_vs_frame", "load_npz", "load_project", "loop_area", "match_clusters", "nmf_embedding",
    "pca_embedding", "peak_spacings", "project_layer_data", "read_bias", "run_record", "save_npz", "save_project",
    "silhouette", "sweep_direction", "wrap_angle", "write_run_record",
]
