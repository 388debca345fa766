"""napari-rvae: invariant VAEs for STEM / PFM movies, inside napari and in notebooks.

The core verbs, in pipeline order (``docs/api.md`` documents each)::

    import napari_rvae as nr
    movie = nr.read_movie("scan.dm4")[0]                 # Movie: data (T, Y, X), scale, units
    lattice = nr.estimate_lattice(movie.data)            # atom spacing, lattice kind, contrast
    sites = nr.detect_atoms(movie.data)                  # sites table: frame, y, x, class, …
    cut = nr.cut_windows(movie.data, sites, 24, normalisation="global")
    model = nr.train(cut, arch="rvae", latent=2, epochs=20)
    sites, report = nr.encode_sites(model, movie.data, sites)   # adds angle, dx, dy, z0, z1
    clusters = nr.cluster_sites(sites, n_clusters=4)
    windows = nr.decode(model, [[0.0, 1.0]], angle=0.5)

Names are imported on first use (PEP 562): ``import napari_rvae`` imports neither torch nor Qt.
The core (everything outside ``widgets``) never imports Qt.
"""

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_API = {
    # reading and writing
    "read_movie": "io.movie", "select_movie": "io.movie", "Movie": "io.movie",
    "read_sites": "io.sites", "write_sites": "io.sites", "make_sites": "io.sites",
    # sites
    "estimate_lattice": "detect.lattice", "detect_atoms": "detect.find", "find_walls": "detect.walls",
    "find_rings": "detect.rings", "link_tracks": "detect.tracks",
    # windows
    "cut_windows": "patches", "grid_sites": "patches", "Windows": "patches",
    # models
    "VAEConfig": "vae.config", "build_model": "vae.models", "Trainer": "vae.trainer", "train": "vae.train",
    "encode": "vae.latents", "encode_sites": "vae.latents", "decode": "vae.latents", "manifold": "vae.latents",
    "save_model": "vae.files", "load_model": "vae.files",
    # analysis
    "analyse_latents": "analysis.report", "cluster_sites": "analysis.clusters",
    "density_vs_frame": "analysis.dynamics", "density_nmf": "analysis.dynamics",
    "latent_maps": "analysis.latent_maps", "chemistry_map": "analysis.chemistry", "check_model": "analysis.collapse",
    # the whole pipeline
    "run_pipeline": "pipeline", "PipelineSettings": "pipeline",
    # samples with ground truth
    "make_sample": "synth",
    # exports to peers' formats
    "save_atomai": "export.atomai", "save_hyperspy": "export.hyperspy", "export_decoder": "export.decoder",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
