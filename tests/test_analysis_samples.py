"""Issue 7, "Correct (synthetic ground truth)": the analysis core on the real synthetic samples.

* ferroic: rotation-only rVAE on 12-px windows at the cell centres (the recipe of
  ``tests/test_vae_ferroic.py``, whose ``cell_centres`` helper is reused), then the
  angle histogram (``analysis.angles``) and a GMM on the latents (``analysis.clusters``).
* domain-movie: grid windows over every frame of the *movie* (not the label maps),
  rVAE, per-frame (z0, z1) KDE → NMF (``analysis.dynamics``), loadings vs the true
  domain fraction and vs bias (``analysis.hysteresis``).
* paper 003's baseline point on ferroic (``analysis.baselines.compare_baselines``).

Measured numbers are in docs/analysis.md, "Checked on the samples".
"""

import numpy as np
import pytest
import torch

from napari_rvae import analysis as an
from napari_rvae.analysis.angles import assign_variants, find_angle_peaks
from napari_rvae.analysis.baselines import compare_baselines
from napari_rvae.analysis.clusters import agreement, cluster_sites
from napari_rvae.patches import cut_windows, grid_sites
from napari_rvae.synth import make_sample
from napari_rvae.vae import Trainer, VAEConfig, build_model, encode
from test_vae_ferroic import EPOCHS, FRAMES, LATENT, WINDOW, cell_centres

torch.set_num_threads(1)

SUBSTRATE = 4  # ferroic ``variant`` label of the (non-polar) substrate; 0–3 are the film's variants


@pytest.fixture(scope="module")
def ferroic():
    """Windows, true variant per window (4 = substrate) and rVAE latents on the ferroic sample."""
    sample = make_sample("ferroic", seed=0, frames=FRAMES)
    sites, keep = cell_centres(sample)
    cut = cut_windows(sample["data"], sites, WINDOW, normalisation="global")
    truth = np.asarray(sample["bsites"]["variant"][keep][cut.rows])
    model = build_model(VAEConfig(arch="rvae", window=(WINDOW, WINDOW), latent=LATENT, translation=False), seed=0)
    Trainer(model, cut.windows, seed=0, threads=1, lr=1e-3).fit(EPOCHS)
    return cut.windows, truth, encode(model, cut.windows)


def _circular_mean(a):
    return float(np.angle(np.exp(1j * np.asarray(a)).mean()))


@pytest.mark.slow
def test_ferroic_angle_histogram_one_peak_per_variant(ferroic):
    """Four angle peaks on the film, each variant's mean angle closest to its own peak."""
    _, truth, latents = ferroic
    film = truth != SUBSTRATE
    angle = latents["angle"].to_numpy()[film]
    peaks = find_angle_peaks(angle, max_peaks=6)
    print("film angle peaks (rad):", np.round(peaks["angle"].to_numpy(), 3),
          "spacings:", np.round(peaks["spacing"].to_numpy(), 3))
    assert len(peaks) == 4
    means = np.array([_circular_mean(angle[truth[film] == v]) for v in range(4)])
    nearest = assign_variants(means, peaks["angle"].to_numpy())
    assert len(set(nearest.tolist())) == 4, f"two variants share a peak: means {means}, peaks {peaks}"
    assert agreement(assign_variants(angle, peaks["angle"].to_numpy()), truth[film]) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("ellipticity, round_columns", [(0.0, False), (None, True)])
def test_ferroic_angle_peaks_pi_over_2_apart(ellipticity, round_columns):
    """Issue 7: neighbouring angle peaks π/2 ± 0.15 rad apart.

    Windows resampled so the cell centre is the window's exact centre (``centring="subpixel"``,
    the point the rVAE rotates about); with the papers' rounding the same model gives spacings
    from 1.1 to 2.1 rad. ``ellipticity=0.0`` is the ferroic sample with round columns; ``None``
    the shipped sample, whose columns are elliptical with a fixed orientation (a probe
    astigmatism that does not turn with the variant, so no rotation of a window maps one variant
    onto the next: spacings 1.64, 1.44, 1.80, 1.40 rad without correction). There the windows
    are cut with ``round_columns=True``, which measures the ellipses and blurs each frame along
    their short axis so the columns come out round (docs/analysis.md)."""
    extra = {} if ellipticity is None else {"ellipticity": ellipticity}
    sample = make_sample("ferroic", seed=0, frames=FRAMES, **extra)
    sites, keep = cell_centres(sample)
    cut = cut_windows(sample["data"], sites, WINDOW, normalisation="global", centring="subpixel",
                      round_columns=round_columns)
    truth = np.asarray(sample["bsites"]["variant"][keep][cut.rows])
    model = build_model(VAEConfig(arch="rvae", window=(WINDOW, WINDOW), latent=LATENT, translation=False), seed=0)
    Trainer(model, cut.windows, seed=0, threads=1, lr=1e-3).fit(30)
    angle = encode(model, cut.windows)["angle"].to_numpy()[truth != SUBSTRATE]
    peaks = find_angle_peaks(angle, max_peaks=4)
    print(f"ellipticity {ellipticity}, round_columns {round_columns}: spacings (rad)",
          np.round(peaks["spacing"].to_numpy(), 3))
    assert len(peaks) == 4
    np.testing.assert_allclose(peaks["spacing"].to_numpy(), np.pi / 2, atol=0.15)
    film = truth[truth != SUBSTRATE]
    assert agreement(assign_variants(angle, peaks["angle"].to_numpy()), film) >= 0.95


@pytest.mark.slow
def test_ferroic_gmm_recovers_variant_and_substrate_map(ferroic):
    """GMM, 5 full-covariance components on (angle as circular, z0): ≥ 90 % after Hungarian matching."""
    _, truth, latents = ferroic
    labelled = cluster_sites(latents, ["angle", "z0"], n_clusters=5, method="gmm", covariance="full", seed=0)
    score = agreement(labelled["cluster"].to_numpy(), truth)
    print(f"ferroic variant + substrate agreement: {score:.3f}")
    assert score >= 0.90


@pytest.mark.slow
def test_ferroic_baselines_split_rotational_variants(ferroic):
    """Paper 003: PCA and a GMM on raw windows separate the rotational variants (each a
    rotated copy of one motif); the rVAE puts that difference in its angle.

    Scored with k-NN accuracy of the film's variant (chance ≈ 0.31)."""
    windows, truth, latents = ferroic
    film_truth = np.where(truth != SUBSTRATE, truth, -1)
    angle = latents["angle"].to_numpy()
    scores = compare_baselines(
        windows, {"variant": film_truth},
        {"rvae_angle": np.c_[np.cos(angle), np.sin(angle)], "rvae_z": latents[["z0"]].to_numpy()},
        methods=("pca", "nmf", "gmm"), seed=0,
    ).set_index("method")
    print(scores.round(3).to_string())
    chance = scores["chance"].iloc[0]
    assert chance < 0.4
    for method in ("pca", "gmm"):  # raw-window methods split the rotated copies apart
        assert scores.loc[method, "knn_accuracy"] >= 0.9
    assert scores.loc["gmm", "nmi"] >= 0.5
    assert scores.loc["rvae_angle", "knn_accuracy"] >= 0.9  # the rotation lives in the angle


DOMAIN_FRAMES, DOMAIN_SIZE, DOMAIN_WINDOW, DOMAIN_STEP, DOMAIN_EPOCHS = 30, 128, 12, 6, 5


@pytest.mark.slow
def test_domain_movie_nmf_loading_follows_domain_fraction_with_a_loop():
    """Grid windows (12 px, step 6) over every movie frame → rVAE → per-frame (z0, z1) KDE → NMF.

    One loading follows the true needle fraction (|Pearson| ≥ 0.9) and, against bias,
    encloses a loop turning the same way as the true fraction's loop, with a normalised
    area at least half of the truth's."""
    sample = make_sample("domain-movie", seed=0, frames=DOMAIN_FRAMES, size=DOMAIN_SIZE)
    movie, bias, fraction = sample["data"], np.asarray(sample["bias"]), np.asarray(sample["domain_fraction"])
    sites = grid_sites(movie.shape, DOMAIN_WINDOW, DOMAIN_STEP)
    cut = cut_windows(movie, sites, DOMAIN_WINDOW, normalisation="global")
    model = build_model(VAEConfig(arch="rvae", window=(DOMAIN_WINDOW, DOMAIN_WINDOW), latent=2), seed=0)
    Trainer(model, cut.windows, seed=0, threads=1, lr=1e-3).fit(DOMAIN_EPOCHS)
    latents = encode(model, cut.windows)
    frames = sites["frame"].to_numpy()[cut.rows]
    plane = an.latent_density_2d(frames, latents["z0"].to_numpy(), latents["z1"].to_numpy(), n_grid=64,
                                 frame_ids=range(DOMAIN_FRAMES))
    loadings = an.density_nmf(plane, n_components=2, seed=0).loadings
    r = np.array([np.corrcoef(loadings[:, i], fraction)[0, 1] for i in range(2)])
    best = int(np.argmax(np.abs(r)))
    follower = loadings[:, best] * np.sign(r[best])  # oriented to rise with the fraction

    def normalised_area(values):
        return an.loop_area(bias, (values - values.min()) / np.ptp(values))

    area, true_area = normalised_area(follower), normalised_area(fraction)
    print(f"domain-movie: Pearson {np.round(r, 3)}; normalised loop area {area:.3f} (truth {true_area:.3f}); "
          f"raw loading area {an.loop_area(bias, loadings[:, best]):.3f}, "
          f"true fraction area {an.loop_area(bias, fraction):.4f}")
    assert abs(r[best]) >= 0.9
    assert abs(true_area) > 0.05  # the sample does carry a loop
    assert np.sign(area) == np.sign(true_area)
    assert abs(area) >= 0.5 * abs(true_area)
