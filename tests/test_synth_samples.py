"""pfm-switching, domain-movie, ferroic, shift-lattice, sines-1d: ground truth is self-consistent and physical."""

import numpy as np
import pytest

from napari_rvae.synth import domain_movie, ferroic, pfm_switching, shift_lattice, sines_1d
from napari_rvae.synth.ferroic import SUBSTRATE, variant_angles


def _neighbourhood_has_both(mask: np.ndarray) -> np.ndarray:
    """For a (Y, X) bool map: pixels whose 3×3 neighbourhood (edge-padded) holds True and False."""
    p = np.pad(mask, 1, mode="edge")
    views = [p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    stack = np.stack(views)
    return stack.any(0) & ~stack.all(0)


# ------------------------------------------------------------------ PFM
@pytest.fixture(scope="module")
def pfm():
    return pfm_switching(seed=2, frames=24, size=96)


def test_pfm_switched_fraction_equals_mask_mean(pfm):
    np.testing.assert_allclose(pfm["switched_fraction"], (pfm["domains"] > 0).mean(axis=(1, 2)), atol=1e-12)
    assert pfm["switched_fraction"].max() > 0.3  # it really switches
    assert pfm["switched_fraction"][0] == 0.0


def test_pfm_walls_lie_between_differently_signed_domains(pfm):
    for d, w in zip(pfm["domains"], pfm["walls"]):
        both = _neighbourhood_has_both(d > 0)
        np.testing.assert_array_equal(w, both)  # every wall pixel touches both signs, and only those
    assert pfm["walls"].any()


def test_pfm_hysteresis_and_phase_follow_domains(pfm):
    bias, frac = pfm["bias"], pfm["switched_fraction"]
    T = len(bias)
    # same bias on the rising (t) and falling (T/2 - t) branches: more switched on the way down
    for t in range(1, T // 4):
        assert bias[t] == pytest.approx(bias[T // 2 - t])
        assert frac[T // 2 - t] >= frac[t]
    assert frac[T // 2 - 2] - frac[2] > 0.1
    interior = ~pfm["walls"]
    sign_ok = np.sign(pfm["data"][interior]) == pfm["domains"][interior]
    assert sign_ok.mean() > 0.95
    assert np.abs(pfm["data"][interior]).mean() == pytest.approx(90, abs=10)
    walls = pfm["walls"]
    assert pfm["amplitude"][walls].mean() < 0.85 * pfm["amplitude"][interior].mean()  # amplitude dips at walls


# ---------------------------------------------------------------- domains
@pytest.fixture(scope="module")
def domains():
    return domain_movie(seed=1, frames=20, size=160)


def test_domain_labels_and_walls(domains):
    labels, orient = domains["labels"], domains["orientation"]
    assert set(np.unique(labels)) <= {1, 2, 3}
    for lab, o in zip(labels, orient):
        boundary = np.zeros(o.shape, dtype=bool)
        for v in np.unique(o):
            boundary |= _neighbourhood_has_both(o == v)
        contaminant = lab == 3
        np.testing.assert_array_equal(lab == 2, boundary & ~contaminant)
    np.testing.assert_array_equal(labels == 3, np.broadcast_to(domains["contaminants"], labels.shape))
    # walls and contaminants are dark in the BF image
    data = domains["data"]
    assert data[labels == 2].mean() < 0.9 * data[labels == 1].mean()
    assert data[labels == 3].mean() < 0.8 * data[labels == 1].mean()


def test_domain_fraction_follows_bias_with_hysteresis(domains):
    bias, frac = domains["bias"], domains["domain_fraction"]
    np.testing.assert_allclose(frac, (domains["orientation"] > 0).mean(axis=(1, 2)))
    assert frac.max() - frac.min() > 0.05
    # loop area: the closed cycle V(t) -> f(t) encloses a non-zero area
    v = np.append(bias, bias[0])
    f = np.append(frac, frac[0])
    area = 0.5 * abs(np.sum(v[:-1] * f[1:] - v[1:] * f[:-1]))
    assert area > 0.02 * (frac.max() - frac.min()) * 2
    T = len(bias)
    for t in range(1, T // 4):
        assert frac[T // 2 - t] >= frac[t] - 1e-12
    assert set(np.unique(domains["orientation"])) == {0, 1, 2}  # both needle orientations


# ---------------------------------------------------------------- ferroic
@pytest.fixture(scope="module")
def bfo():
    return ferroic(seed=0, size=320)


def test_ferroic_variants_are_90_degree_rotations(bfo):
    b = bfo["bsites"]
    a = bfo["params"]
    import json

    lattice = json.loads(str(a))["a"]
    assert set(np.unique(b["variant"])) == {0, 1, 2, 3, SUBSTRATE}
    np.testing.assert_allclose(b["y"], b["y0"] + b["py"])
    np.testing.assert_allclose(b["x"], b["x0"] + b["px"])
    mag = np.hypot(b["py"], b["px"])
    assert (mag[b["variant"] == SUBSTRATE] == 0).all()
    # in domain interiors (all 8 neighbouring cells in the same variant) the polarisation is the variant's
    dm = bfo["domain_map"]
    rc = np.rint(np.stack([b["y0"], b["x0"]], 1)).astype(int)
    interior = np.ones(len(b), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            q = np.clip(rc + np.array([dy, dx]) * int(lattice * 1.5), 0, dm.shape[0] - 1)
            interior &= dm[q[:, 0], q[:, 1]] == b["variant"]
    polar = interior & (b["variant"] < SUBSTRATE)
    assert polar.sum() > 30
    np.testing.assert_allclose(mag[polar], 0.12 * lattice, rtol=0.02)
    expected = variant_angles()[b["variant"][polar]]
    measured = np.arctan2(-b["py"][polar], b["px"][polar])
    diff = np.angle(np.exp(1j * (measured - expected)))
    assert np.abs(diff).max() < np.deg2rad(5)
    # walls: somewhere the off-centring turns (intermediate angles exist)
    off = np.abs(np.angle(np.exp(1j * 4 * (np.arctan2(-b["py"], b["px"]) - np.pi / 4))))
    assert (off[(mag > 0) & ~interior] > 0.3).any()


def test_ferroic_b_sites_are_dimmer_columns(bfo):
    img = bfo["data"][0]
    a_sites, b_sites = bfo["asites"], bfo["bsites"]
    film_a = a_sites[a_sites["substrate"] == 0]
    film_b = b_sites[b_sites["variant"] < SUBSTRATE]
    ia = img[np.rint(film_a["y"]).astype(int), np.rint(film_a["x"]).astype(int)]
    ib = img[np.rint(film_b["y"]).astype(int), np.rint(film_b["x"]).astype(int)]
    assert np.median(ib) < 0.7 * np.median(ia)


# ------------------------------------------------------------- shift / sines
def test_shift_lattice_order_parameter():
    s = shift_lattice(seed=4, size=128)
    op = s["order_parameter"]
    assert op.min() >= -1 and op.max() <= 1
    assert (op > 0.5).mean() > 0.15 and (op < -0.5).mean() > 0.15  # two phases
    atoms = s["atoms"]
    centre = atoms[atoms["sublattice"] == 1]
    corner = atoms[atoms["sublattice"] == 0]
    # each centre atom sits at (corner + a/2) shifted along x by order * 0.18 * a
    cy = np.round((centre["y"] - corner["y"][0] - 6.0) / 12.0) * 12.0 + corner["y"][0] + 6.0
    cx0 = np.round((centre["x"] - corner["x"][0] - 6.0 - centre["order"] * 0.18 * 12) / 12.0) * 12.0 + corner["x"][0] + 6.0
    np.testing.assert_allclose(centre["y"], cy, atol=1e-9)
    np.testing.assert_allclose(centre["x"] - cx0, centre["order"] * 0.18 * 12.0, atol=1e-9)


def test_sines_mu_sigma_reproduce_the_curves():
    s = sines_1d(seed=5, n=500)
    lo, hi = s["value_range"]
    x, mu, sigma = s["x"], s["mu"], s["sigma"]
    model = (np.sin((x[None] - mu[:, None]) / sigma[:, None]) - lo) / (hi - lo)
    resid = s["data"] - model
    assert resid.std() == pytest.approx(0.05 / (hi - lo), rel=0.1)
    wrong = (np.sin((x[None] - mu[:, None] - 1.0) / sigma[:, None]) - lo) / (hi - lo)
    assert (s["data"] - wrong).std() > 4 * resid.std()
    assert s["data"].min() == 0.0 and s["data"].max() == 1.0
    assert mu.min() >= -3 and mu.max() <= 3
    assert set(np.unique(sigma)) == {0.5, 1.0, 1.5, 2.0}
    assert s["data"].shape == (500, 100) and s["data"].dtype == np.float32
