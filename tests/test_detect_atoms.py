"""Atoms from probability maps and raw images against synthetic ground truth."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import atoms_from_probabilities, classify_by_intensity, detect_atoms, site_intensity
from napari_rvae.detect.scenes import graphene_scene, probability_maps

SHAPE = (160, 160)
MARGIN = 4.0  # truth atoms this close to the border are not required (edge margin 2 px + half an atom)


def f1_score(found, truth, shape, tol=2.0, margin=MARGIN):
    """F1 at ``tol`` pixels with one-to-one matching; truth near the border is optional."""
    found = np.asarray(found).reshape(-1, 2)
    inner = (truth >= margin).all(1) & (truth[:, 0] <= shape[0] - 1 - margin) & (truth[:, 1] <= shape[1] - 1 - margin)
    if len(found) == 0:
        return 0.0
    dist, idx = cKDTree(truth).query(found)
    matched = dist <= tol
    # a match to one truth atom counts once
    unique_true = np.unique(idx[matched])
    tp = len(unique_true)
    fp = int((~matched).sum()) + (int(matched.sum()) - tp)
    fn = int(inner.sum()) - int(inner[unique_true].sum())
    return 2 * tp / (2 * tp + fp + fn)


@pytest.fixture(scope="module")
def scenes():
    return [graphene_scene(SHAPE, 8.0, seed=s, n_si=6, holes=1, stone_wales_defects=1) for s in range(3)]


@pytest.mark.parametrize("method", ["threshold", "peaks"])
def test_f1_from_clean_probability_maps(scenes, method):
    for sc in scenes:
        maps = probability_maps(SHAPE, sc["yx"], sc["is_si"].astype(int))
        sites = atoms_from_probabilities(maps, method=method, edge_margin=2)
        assert f1_score(sites[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99
        # class from the channel: Si channel → class 1
        _, idx = cKDTree(sc["yx"]).query(sites[["y", "x"]].to_numpy())
        assert (sites["class"].to_numpy() == sc["is_si"][idx]).mean() >= 0.99


def test_f1_from_noisy_raw_images_by_peak_finding(scenes):
    movie = np.stack([sc["image"] for sc in scenes])
    sites = detect_atoms(movie, method="peaks")
    for t, sc in enumerate(scenes):
        frame = sites[sites["frame"] == t]
        assert f1_score(frame[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99


def test_si_versus_c_by_intensity_clustering(scenes):
    movie = np.stack([sc["image"] for sc in scenes])
    sites = detect_atoms(movie, method="peaks")
    correct = []
    for t, sc in enumerate(scenes):
        frame = sites[sites["frame"] == t]
        dist, idx = cKDTree(sc["yx"]).query(frame[["y", "x"]].to_numpy())
        ok = dist < 2
        correct.append(frame["class"].to_numpy()[ok] == sc["is_si"][idx[ok]])
    correct = np.concatenate(correct)
    assert correct.mean() >= 0.98
    assert sites["class"].sum() >= 0.9 * sum(sc["is_si"].sum() for sc in scenes)


def test_no_atoms_inside_holes():
    sc = graphene_scene(SHAPE, 8.0, seed=7, n_si=2, holes=2, hole_radius=18.0)
    sites = detect_atoms(sc["image"], method="peaks")
    yx = sites[["y", "x"]].to_numpy()
    for cy, cx, r in sc["holes"]:
        inside = np.hypot(yx[:, 0] - cy, yx[:, 1] - cx) < r - 0.5 * sc["bond"]
        assert inside.sum() == 0


def test_probability_maps_with_holes_give_no_atoms_in_holes():
    sc = graphene_scene(SHAPE, 8.0, seed=3, holes=2, hole_radius=18.0)
    maps = probability_maps(SHAPE, sc["yx"], np.zeros(len(sc["yx"]), int), n_classes=1)
    yx = atoms_from_probabilities(maps)[["y", "x"]].to_numpy()
    for cy, cx, r in sc["holes"]:
        assert (np.hypot(yx[:, 0] - cy, yx[:, 1] - cx) < r - 0.5 * sc["bond"]).sum() == 0


def test_edge_margin_drops_border_atoms(scenes):
    sites = detect_atoms(scenes[0]["image"], method="peaks", edge_margin=10, refine=False)
    yx = sites[["y", "x"]].to_numpy()
    assert len(yx) > 100
    assert yx.min() >= 10 and yx.max() <= SHAPE[0] - 11


def test_threshold_method_on_raw_image(scenes):
    sc = graphene_scene(SHAPE, 8.0, seed=11, n_si=0, dose=None, read_noise=0.02)
    sites = detect_atoms(sc["image"], method="threshold", threshold=0.3)
    assert f1_score(sites[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99


def test_model_seam_accepts_a_callable_and_probabilities(scenes):
    sc = scenes[0]
    maps = probability_maps(SHAPE, sc["yx"], sc["is_si"].astype(int))[None]
    calls = []

    def model(movie):
        calls.append(movie.shape)
        return maps

    a = detect_atoms(sc["image"], method="model", model=model)
    b = detect_atoms(sc["image"], method="model", probabilities=maps)
    assert calls == [(1,) + SHAPE]
    np.testing.assert_allclose(a[["y", "x"]].to_numpy(), b[["y", "x"]].to_numpy())
    assert f1_score(a[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99
    assert set(np.unique(a["class"])) == {0, 1}  # from the channel


def test_site_intensity_sums_a_disc():
    image = np.zeros((20, 20))
    image[10, 10] = 5.0
    image[10, 12] = 1.0
    assert site_intensity(image, [[10, 10]], 1.5)[0] == pytest.approx(5.0)
    assert site_intensity(image, [[10, 10]], 2.0)[0] == pytest.approx(6.0)


def test_classify_keeps_one_population_together():
    rng = np.random.default_rng(0)
    one = rng.normal(10, 1, 500)
    assert classify_by_intensity(one).sum() == 0
    two = np.concatenate([one, rng.normal(30, 1, 10)])
    labels = classify_by_intensity(two)
    assert labels[-10:].all() and labels[:500].sum() == 0
    assert classify_by_intensity(two, method="otsu")[-10:].all()


@pytest.mark.parametrize(
    "bad", [np.zeros(5), np.zeros((2, 3, 4, 5, 6)), "not an image"], ids=["1d", "5d", "text"]
)
def test_wrong_input_raises_clear_value_error(bad):
    with pytest.raises(ValueError, match="movie"):
        detect_atoms(bad)


def test_movies_without_a_lattice_are_refused_and_bad_frames_skipped(scenes):
    for bad in (np.full((2, 32, 32), np.nan), np.ones((32, 32)), np.random.default_rng(0).normal(size=(128, 128))):
        with pytest.raises(ValueError, match="no atomic lattice found.*--spacing"):
            detect_atoms(bad)
    # a bad frame among good ones: the good frame still gives atoms
    movie = np.stack([scenes[0]["image"], np.full(SHAPE, np.nan)])
    sites = detect_atoms(movie)
    assert set(sites["frame"]) == {0} and len(sites) > 100


def test_probability_maps_validation():
    with pytest.raises(ValueError, match="probabilit"):
        atoms_from_probabilities(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="threshold"):
        atoms_from_probabilities(np.zeros((2, 10, 10)), threshold=1.5)
    with pytest.warns(UserWarning, match="no atoms"):
        assert len(atoms_from_probabilities(np.stack([np.ones((10, 10)), np.zeros((10, 10))]))) == 0


def test_model_seam_calls_the_segment_package(monkeypatch, scenes):
    """Contract with napari_rvae.segment: load_default_atom_model / load_segmenter /
    predict(model, movie, rescale, precision)."""
    import sys
    import types

    import napari_rvae

    sc = scenes[0]
    maps = probability_maps(SHAPE, sc["yx"], np.zeros(len(sc["yx"]), int), n_classes=1)[None]
    calls = []
    fake = types.ModuleType("napari_rvae.segment")
    fake.load_default_atom_model = lambda with_config=False: (calls.append("default") or ("net", {}))
    fake.load_segmenter = lambda folder: (calls.append(str(folder)) or "net", {})
    fake.native_bfloat16 = lambda: False
    fake.predict = lambda net, movie, rescale=1.0, precision="float32": (
        calls.append((net, movie.shape, rescale, precision)) or maps)
    monkeypatch.setitem(sys.modules, "napari_rvae.segment", fake)
    monkeypatch.setattr(napari_rvae, "segment", fake, raising=False)
    monkeypatch.setattr("napari_rvae.cpu.native_bfloat16", lambda: False)  # the plan asks the CPU, not torch

    sites = detect_atoms(sc["image"], method="model", rescale=0.5)
    assert calls == ["default", ("net", (1,) + SHAPE, 0.5, "float32")]
    assert f1_score(sites[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99
    assert sites["class"].sum() >= sc["is_si"].sum()  # one atom channel: Si/C from intensity
    calls.clear()
    detect_atoms(sc["image"], method="model", model="some/folder", precision="int8", rescale=1.0)
    assert calls[0] == "some/folder" and calls[-1][3] == "int8"


@pytest.mark.slow
def test_shipped_default_model_on_graphene():
    """The shipped weights are part of the package: missing or corrupt ones fail here."""
    from napari_rvae import segment

    segment.load_default_atom_model()
    sc = graphene_scene(SHAPE, 8.0, seed=21, n_si=6, holes=1)
    sites = detect_atoms(sc["image"], method="model", model="default")
    assert f1_score(sites[["y", "x"]].to_numpy(), sc["yx"], SHAPE) >= 0.99
    dist, idx = cKDTree(sc["yx"]).query(sites[["y", "x"]].to_numpy())
    assert np.sqrt((dist[dist < 2] ** 2).mean()) <= 0.2
    assert (sites["class"].to_numpy()[dist < 2] == sc["is_si"][idx[dist < 2]]).mean() >= 0.98


def test_intensity_classes_of_millions_of_sites_find_a_rare_bright_class():
    """A long movie's sites (more than the mixture is fitted on): a 0.3 % bright class is still found,
    site for site, and an unsplit population stays one class."""
    from napari_rvae.detect.atoms import FIT_SITES

    rng = np.random.default_rng(0)
    n = 3 * FIT_SITES + 17
    bright = rng.random(n) < 0.003
    intensity = np.where(bright, rng.normal(2.0, 0.1, n), rng.normal(1.0, 0.1, n))
    intensity[5] = np.nan
    classes = classify_by_intensity(intensity)
    assert classes[5] == 0 and classes.dtype == np.int64
    assert np.mean(classes[np.isfinite(intensity)] == bright[np.isfinite(intensity)]) > 0.9999
    assert classify_by_intensity(rng.normal(1.0, 0.1, n)).sum() == 0
