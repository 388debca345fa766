"""Batched Gaussian refinement: accuracy against truth and against per-atom curve_fit."""

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

from napari_rvae.detect import detect_atoms, fit_gaussians, refine_positions
from benchmarks.refine import refinement_benchmark
from napari_rvae.detect.refine import extract_boxes, initial_guess
from napari_rvae.detect.scenes import graphene_scene
from napari_rvae.synth.render import add_noise, render_spots


def rmse(a, b):
    return float(np.sqrt(((np.asarray(a) - np.asarray(b)) ** 2).sum(1).mean()))


def isolated_spots(seed=0, n=144, sigma=1.6, dose=100.0):
    """Noisy Gaussian spots on a jittered grid (true sub-pixel centres) and integer starts."""
    rng = np.random.default_rng(seed)
    g = np.arange(12, 12 * 13, 12, dtype=float)
    truth = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)[:n] + rng.uniform(-0.5, 0.5, (n, 2))
    image = add_noise(render_spots((160, 160), truth, 1.0, sigma) + 0.1, rng, dose=dose, read_noise=0.02)
    start = np.rint(truth + rng.uniform(-0.7, 0.7, truth.shape))
    return image, truth, start


def test_rmse_on_noisy_spots_is_below_0_2_px():
    image, truth, start = isolated_spots()
    fit = refine_positions(image, start, half_box=4)
    assert fit["refined"].all()
    assert rmse(np.stack([fit["y"], fit["x"]], 1), truth) <= 0.2
    assert rmse(start, truth) > 0.4  # the refinement did the work
    assert np.all(np.abs(fit["sigma"] - 1.6) < 0.3)


def test_rmse_on_noisy_graphene_after_peak_finding():
    sc = graphene_scene((128, 128), 8.0, seed=4, n_si=4, holes=1)
    sites = detect_atoms(sc["image"], method="peaks", refine=True)
    dist, idx = cKDTree(sc["yx"]).query(sites[["y", "x"]].to_numpy())
    assert np.sqrt((dist[dist < 2] ** 2).mean()) <= 0.2
    assert sites["refined"].mean() > 0.98


def _reference_fit(boxes, init):
    h = (boxes.shape[1] - 1) // 2
    offs = np.arange(-h, h + 1, dtype=float)
    yy, xx = np.meshgrid(offs, offs, indexing="ij")

    def model(coords, a, y0, x0, s, b):
        y, x = coords
        return b + a * np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2 * s * s))

    return np.array([curve_fit(model, (yy.ravel(), xx.ravel()), box.ravel(), p0=p0)[0] for box, p0 in zip(boxes, init)])


def test_same_answer_as_per_atom_curve_fit():
    image, truth, start = isolated_spots(seed=1, n=60)
    boxes, weights, centres = extract_boxes(image, start, 4)
    init = initial_guess(boxes, weights)
    ours, ok = fit_gaussians(boxes, weights, init, iterations=20)
    reference = _reference_fit(boxes, init)
    assert ok.all()
    np.testing.assert_allclose(ours[:, 1:3], reference[:, 1:3], atol=1e-3)
    np.testing.assert_allclose(ours[:, 3], np.abs(reference[:, 3]), atol=1e-3)
    ours_rmse = rmse(centres + ours[:, 1:3], truth)
    ref_rmse = rmse(centres + reference[:, 1:3], truth)
    assert abs(ours_rmse - ref_rmse) < 0.005


def test_default_iterations_match_converged_fit():
    image, truth, start = isolated_spots(seed=2)
    quick = refine_positions(image, start, half_box=4)
    full = refine_positions(image, start, half_box=4, iterations=50)
    assert np.abs(quick["y"] - full["y"]).max() < 0.01 and np.abs(quick["x"] - full["x"]).max() < 0.01


def test_atoms_at_the_border_and_boxes_with_nan_are_refined():
    truth = np.array([[1.3, 30.2], [30.4, 0.8], [20.3, 20.6]])
    image = render_spots((40, 40), truth, 1.0, 1.5) + 0.05
    image[21, 22] = np.nan  # inside the third atom's box
    fit = refine_positions(image, np.rint(truth), half_box=3)
    assert fit["refined"].all()
    assert rmse(np.stack([fit["y"], fit["x"]], 1), truth) < 0.05


def test_failed_fit_keeps_the_start_and_says_so():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1e-3, (40, 40))  # no atom anywhere
    image[10, 10] = 1.0  # one hot pixel: a "spot" narrower than any atom
    start = np.array([[20.0, 20.0], [10.0, 10.0]])
    fit = refine_positions(image, start, half_box=3, fallback=False)
    assert not fit["refined"][1]
    np.testing.assert_array_equal(np.stack([fit["y"], fit["x"]], 1)[~fit["refined"]], start[~fit["refined"]])
    assert set(fit["position_from"][~fit["refined"]]) == {"start"}
    # with the fallback, a failed fit takes the smoothed frame's maximum, which stays on the spot
    fit = refine_positions(image, start, half_box=3)
    assert not fit["refined"][1] and fit["position_from"][1] == "smoothed peak"
    assert np.hypot(fit["y"][1] - 10, fit["x"][1] - 10) < 0.1


def test_refine_input_validation():
    with pytest.raises(ValueError, match="image"):
        refine_positions(np.zeros((2, 10, 10)), [[5, 5]])
    with pytest.raises(ValueError, match="half_box"):
        refine_positions(np.zeros((10, 10)), [[5, 5]], half_box=0)
    with pytest.raises(ValueError, match="boxes"):
        fit_gaussians(np.zeros((3, 4, 4)))
    empty = refine_positions(np.zeros((10, 10)), np.zeros((0, 2)))
    assert len(empty["y"]) == 0


def test_benchmark_reports_speed_and_equal_accuracy():
    result = refinement_benchmark(shape=(96, 96), n_reference=20, repeats=1)
    for key in ("ours_atoms_per_s", "curve_fit_atoms_per_s", "speedup", "rmse_ours_px", "rmse_curve_fit_px"):
        assert key in result
    assert result["n_atoms"] > 100
    assert abs(result["rmse_ours_reference_atoms_px"] - result["rmse_curve_fit_px"]) < 0.01
    assert result["rmse_ours_px"] < result["rmse_start_px"]


def test_neighbour_subtraction_removes_the_pull_of_close_atoms():
    # pairs of wide atoms 7 px apart (σ 2.5 px): their tails overlap and bias a lone fit inwards
    truth = np.array([[20.3 + 40 * i, 20.6 + dx] for i in range(3) for dx in (0.0, 7.0)])
    image = render_spots((130, 50), truth, np.ones(len(truth)), 2.5) + 0.1
    plain = refine_positions(image, truth + 0.3, half_box=4, neighbours=False)
    clean = refine_positions(image, truth + 0.3, half_box=4)
    err_plain = rmse(np.stack([plain["y"], plain["x"]], 1), truth)
    err_clean = rmse(np.stack([clean["y"], clean["x"]], 1), truth)
    assert err_plain > 0.05  # the bias is real at this overlap
    assert err_clean < 0.5 * err_plain


@pytest.mark.parametrize("seed", [0, 1, 6, 8])
def test_refinement_never_makes_low_dose_positions_worse(seed):
    """Low-dose graphene (3–25 counts per atom): per atom the fit or the smoothed maximum, whichever
    is estimated to be the more precise, is kept; the positions end no worse than the (integer) starts
    and within 0.1 × spacing of the truth (RMSE)."""
    import warnings

    from scipy.spatial import cKDTree

    from napari_rvae.detect import detect_atoms
    from napari_rvae.segment.evaluate import inside
    from napari_rvae.synth.instrument import low_dose_graphene

    scene = low_dose_graphene(seed)
    image, d = scene["image"], scene["spacing"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = detect_atoms(image, method="peaks", refine=False)[["y", "x"]].to_numpy()
    start = start[inside(start, image.shape, 12)]
    dist, idx = cKDTree(scene["positions"]).query(start)
    start, truth = start[dist < 0.25 * d], scene["positions"][idx[dist < 0.25 * d]]
    fit = refine_positions(image, start)
    refined = np.stack([fit["y"], fit["x"]], 1)
    assert rmse(refined, truth) <= rmse(start, truth) + 0.01 * d
    assert rmse(refined, truth) < 0.1 * d
    assert set(fit["position_from"]) <= {"fit", "smoothed peak", "start"}
    assert np.mean(fit["position_from"] == "start") < 0.05  # neither a fit nor a smoothed maximum: rare
    estimate = np.sqrt(np.nanmean(fit["position_error"] ** 2))
    assert 0.5 < estimate / rmse(refined, truth) < 3  # the reported error is of the right size
