"""The Train VAE dock's background jobs: windows as the settings ask, training, encoding (core calls only)."""

from __future__ import annotations

import numpy as np

#: where windows are cut from (recorded as the model's ``normalisation["source"]``, as the CLI does)
SOURCES = {"atom probability": "map", "image": "image"}

ARCH_HELP = {
    "rvae": "rVAE: angle + shift + content latents (papers 000-003)",
    "skip-rvae": "skip-rVAE: rVAE with latent skip connections in the decoder (paper 000)",
    "shift-vae": "shift-VAE: shift + content latents, no rotation (paper 004)",
    "vae": "plain VAE: content latents only (baseline)",
}


ORIENTATIONS = {"none": 0, "bond frame, 3-fold (graphene)": 3, "bond frame, 4-fold (square)": 4,
                "bond frame, 6-fold (hexagonal)": 6}


def model_source(model) -> str | None:
    """Where ``model``'s windows were cut from: ``"map"`` (atom probability) or ``"image"``."""
    return (getattr(model, "normalisation", None) or {}).get("source")


def cut_for_settings(movie, sites, settings: dict, **options):
    """Windows as the settings ask: the one place the dock cuts windows (training and preview)."""
    from ..patches import BOND_ANGLE, cut_windows, with_orientation

    symmetry = settings.get("bond_symmetry", 0)
    if symmetry:  # each window turned into its atom's bond frame
        sites = with_orientation(sites.drop(columns=[BOND_ANGLE], errors="ignore"),
                                 {"orientation": BOND_ANGLE, "bond_symmetry": symmetry})
    radius = settings.get("mask_radius", 0)
    cut = cut_windows(movie, sites, settings["window"], classes=settings["classes"], seed=settings["seed"],
                      normalisation=settings["normalisation"], centring=settings.get("centring", "pixel"),
                      orientation=BOND_ANGLE if symmetry else None,
                      mask=(radius, max(radius, settings["window"] / 2)) if radius else None, **options)
    if symmetry:
        cut.normalisation["bond_symmetry"] = int(symmetry)
    cut.normalisation["source"] = settings.get("windows_from", "image")
    return cut


#: the Train VAE dock's epochs on "auto" (0): this many, or more where the windows are few
#: (:func:`napari_rvae.vae.defaults.epochs_for`)
DOCK_EPOCHS = 20


def train_job(movie, sites, settings: dict, trainer=None, epochs: int = 10):
    """Background job: cut windows, build the model (unless continuing), train, encode every site.

    ``epochs`` 0 is "auto": :data:`DOCK_EPOCHS`, or more where the windows are few.
    Yields ``("ready", trainer, report, epochs)`` once for a new model, then
    ``("epoch", stats)`` per epoch;
    returns ``("encoded", table, report, check)`` with the
    :class:`~napari_rvae.analysis.collapse.LatentCheck` of the trained model.
    """
    from ..vae import BetaSchedule, Trainer, VAEConfig, build_model, encode_sites

    if trainer is None:
        if settings["window"] > min(np.shape(movie)[-2:]):
            raise ValueError(f"window {settings['window']} px is larger than the image "
                             f"({np.shape(movie)[-2]}×{np.shape(movie)[-1]} px); choose a smaller window")
        cut = cut_for_settings(movie, sites, settings, per_frame=settings["per_frame"],
                               round_columns=settings.get("round_columns", False))
        if len(cut) < 2:
            raise ValueError(f"only {len(cut)} window(s) could be cut ({cut.report.summary()}); "
                             "use a smaller window or more sites")
        beta = BetaSchedule(kind=settings["beta_kind"], start=settings["beta_start"], end=settings["beta_end"],
                            epochs=max(1, settings["beta_epochs"]))
        from ..vae.defaults import model_defaults

        derived = model_defaults(settings["arch"], cut.windows, cut.normalisation)
        if settings["translation_prior"] != 0.1:  # the dock's default: a value the user chose wins
            derived["translation_prior"] = settings["translation_prior"]
        config = VAEConfig(arch=settings["arch"], window=(settings["window"],) * 2, latent=settings["latent"],
                           encoder=settings["encoder"], rotation_prior=settings["rotation_prior"],
                           **{"translation_prior": settings["translation_prior"], **derived}, beta=beta)
        model = build_model(config, seed=settings["seed"])
        model.normalisation = cut.normalisation
        trainer = Trainer(model, cut.windows, batch_size=settings["batch"], lr=settings["lr"], seed=settings["seed"],
                          device=settings["device"], pixel_fraction=settings.get("pixel_fraction", 1.0),
                          leave_core_for_gui=True)
    else:
        cut = None
    if not epochs:
        from ..vae.defaults import epochs_for

        epochs = epochs_for(len(trainer.train_x), trainer.batch_size, DOCK_EPOCHS)
    if cut is not None:
        yield ("ready", trainer, cut.report, epochs)
    for stats in trainer.run(epochs):
        yield ("epoch", stats)
    from ..analysis.collapse import check_after_training

    check = check_after_training(trainer.model, trainer.train_x.cpu().numpy())
    table, report = encode_sites(trainer.model, movie, sites)
    return ("encoded", table, report, check)


def encode_job(model, movie, sites):
    from ..vae import encode_sites

    table, report = encode_sites(model, movie, sites)
    return ("encoded", table, report)
