"""Latent chemistry map machinery against exact ring truth (graphene-movie graph faces).

The "decoder" is a hand-made callable: the latent plane is split into cells,
each cell decodes to a window cut from the noiseless atom mask of the
graphene-movie at one known atom (or ring centre), so the ring counts the map
must report are the generator's exact ring sizes.
"""

import numpy as np
import pytest

from napari_rvae.analysis.chemistry import chemistry_map, find_atoms_batch, window_graph
from napari_rvae.io.sites import make_sites
from napari_rvae.patches import cut_windows
from napari_rvae.synth import graphene_movie

W = 40
CC = 7.0


@pytest.fixture(scope="module")
def scene():
    s = graphene_movie(0, frames=3, size=192, cc=CC, noise=False, n_holes=0, grain=False, n_stone_wales=3)
    mask = (s["labels"] >= 2).astype(np.float32)  # perfect "segmenter" output, atoms = 1
    return s, mask


def _anchor_decoder(windows, anchors):
    """z (N, 2) -> the window of the nearest anchor (a Voronoi partition of the plane)."""

    def decoder(z):
        z = np.asarray(z, float)
        nearest = np.argmin(((z[:, None, :] - anchors[None]) ** 2).sum(-1), axis=1)
        return windows[nearest]

    return decoder


def test_atoms_batch_do_not_connect_across_windows():
    w = np.zeros((3, 8, 8), np.float32)
    w[:, 3:5, 3:5] = 1.0  # the same blob in three stacked windows: three atoms, not one
    w[1, 0, 0] = 1.0
    win, yx = find_atoms_batch(w, 0.5, 1)
    assert list(win) == [0, 1, 1, 2]
    np.testing.assert_allclose(yx[[0, 2, 3]], [[3.5, 3.5]] * 3)


def test_chemistry_map_reproduces_true_ring_counts(scene):
    s, mask = scene
    a = s["atoms"][s["atoms"]["frame"] == 2]
    truth_all = np.stack([a[k] for k in ("n5", "n6", "n7", "n8")], 1)
    defect = np.flatnonzero((truth_all[:, 0] > 0) | (truth_all[:, 2] > 0))
    pristine = np.flatnonzero(truth_all[:, 1] == 3)
    chosen = np.concatenate([defect[:12], pristine[::40][:12]])
    sites = make_sites(a["frame"][chosen], a["y"][chosen], a["x"][chosen], "atom", 0)
    cut = cut_windows(mask, sites, W)
    truth = truth_all[chosen][cut.rows]
    assert len(cut) >= 18 and (truth[:, 0] > 0).sum() >= 6
    # two extra cells: an empty window and a solid blob (no structure -> unphysical)
    empty = np.zeros((1, W, W), np.float32)
    blob = np.zeros((1, W, W), np.float32)
    blob[0, 10:30, 10:30] = 1
    windows = np.concatenate([cut.windows, empty, blob])
    rng = np.random.default_rng(1)
    anchors = rng.uniform(-2.6, 2.6, (len(windows), 2))
    chem = chemistry_map(_anchor_decoder(windows, anchors), d=48, span=3.0, bond_length=CC)
    got = chem.classify(anchors)
    # each anchor's own cell decodes exactly its window: counts must equal the truth
    np.testing.assert_array_equal(got[: len(truth)], truth)
    assert (got[-2:] == -1).all()
    # the whole map: every physical cell's counts are the counts of its anchor's atom
    row, col = np.meshgrid(np.arange(48), np.arange(48), indexing="ij")
    zz = np.stack([chem.grid[col.ravel()], chem.grid[row.ravel()]], 1)
    owner = np.argmin(((zz[:, None] - anchors[None]) ** 2).sum(-1), 1)
    expected = np.concatenate([truth, -np.ones((2, 4), int)])[owner]
    np.testing.assert_array_equal(chem.classify(zz), expected)
    rgb = chem.rgb()
    assert rgb.shape == (48, 48, 3) and rgb.max() <= 1 and (rgb[~chem.physical] == 0).all()
    # estimated bond length (median nearest neighbour in decoded windows) within 5 % of the truth
    auto = chemistry_map(_anchor_decoder(windows, anchors), d=12)
    assert abs(auto.bond_length - CC) < 0.05 * CC


def test_hollow_map_gives_ring_size(scene):
    s, mask = scene
    rings = s["rings"][s["rings"]["frame"] == 2]
    pick = np.concatenate([np.flatnonzero(rings["size"] != 6), np.flatnonzero(rings["size"] == 6)[::50][:6]])
    sites = make_sites(rings["frame"][pick], rings["y"][pick], rings["x"][pick], "hollow", 0)
    cut = cut_windows(mask, sites, W)
    truth = rings["size"][pick][cut.rows]
    assert {5, 6, 7} <= set(truth.tolist())
    anchors = np.random.default_rng(2).uniform(-2.5, 2.5, (len(cut), 2))
    chem = chemistry_map(_anchor_decoder(cut.windows, anchors), d=32, bond_length=CC, mode="hollow")
    np.testing.assert_array_equal(chem.classify(anchors)[:, 0], truth)
    assert chem.physical.all()


def test_window_graph_draws_the_centre_rings(scene):
    s, mask = scene
    a = s["atoms"][s["atoms"]["frame"] == 2]
    k = int(np.flatnonzero(a["n5"] > 0)[0])
    cut = cut_windows(mask, make_sites([2], [a["y"][k]], [a["x"][k]], "atom", 0), W)
    g = window_graph(lambda z: cut.windows, np.zeros(2), bond_length=CC)
    assert g["window"].shape == (W, W)
    np.testing.assert_array_equal(g["counts"], [a["n5"][k], a["n6"][k], a["n7"][k], a["n8"][k]])
    assert sorted(len(r) for r in g["rings"]) == sorted(
        [5] * a["n5"][k] + [6] * a["n6"][k] + [7] * a["n7"][k] + [8] * a["n8"][k])
    # every bond is within the band and the centre atom has 3 of them
    d = np.hypot(*(g["atoms"][g["bonds"][:, 0]] - g["atoms"][g["bonds"][:, 1]]).T)
    assert ((d > 0.5 * CC) & (d < 1.2 * CC)).all()
    assert (g["bonds"] == g["centre_index"]).any(1).sum() == 3


def test_bad_inputs():
    with pytest.raises(ValueError, match="d"):
        chemistry_map(lambda z: np.zeros((len(z), 8, 8)), d=0)
    with pytest.raises(ValueError, match="mode"):
        chemistry_map(lambda z: np.zeros((len(z), 8, 8)), d=4, mode="bond")
    with pytest.raises(ValueError, match="decoder"):
        chemistry_map(lambda z: np.zeros((3, 8)), d=4, bond_length=5)


def test_scale_recorded_with_windows_gives_the_bond_length(scene):
    """The windows record the sites' spacing; a model trained on them gives the chemistry map its bond length
    (atoms: the spacing; hollow sites of a honeycomb: spacing / √3)."""
    from types import SimpleNamespace

    from napari_rvae.analysis.chemistry import recorded_bond_length

    s, mask = scene
    a = s["atoms"][s["atoms"]["frame"] == 2]
    atoms = make_sites(a["frame"], a["y"], a["x"], "atom", 0)
    cut = cut_windows(mask, atoms, W)
    assert abs(cut.normalisation["site_spacing_px"] - CC) < 0.05 * CC and cut.normalisation["site_kind"] == "atom"
    assert abs(recorded_bond_length(SimpleNamespace(normalisation=cut.normalisation)) - CC) < 0.05 * CC
    r = s["rings"][s["rings"]["frame"] == 2]
    hollow = cut_windows(mask, make_sites(r["frame"], r["y"], r["x"], "hollow", 0), W)
    assert abs(recorded_bond_length(SimpleNamespace(normalisation=hollow.normalisation)) - CC) < 0.05 * CC
    assert recorded_bond_length(SimpleNamespace(normalisation={"mode": "none"})) is None


def test_threshold_from_the_decoded_data_and_windows_too_small_said(scene):
    s, mask = scene
    a = s["atoms"][s["atoms"]["frame"] == 2]
    truth_all = np.stack([a[k] for k in ("n5", "n6", "n7", "n8")], 1)
    chosen = np.flatnonzero(truth_all[:, 1] == 3)[::40][:8]
    cut = cut_windows(mask, make_sites(a["frame"][chosen], a["y"][chosen], a["x"][chosen], "atom", 0), W)
    anchors = np.random.default_rng(3).uniform(-2.5, 2.5, (len(cut), 2))
    # windows on another scale (per-window standardised, atoms ~ +1.5, background ~ -0.5): 0.5 would still
    # work here, so scale them so that it does not, and check the automatic threshold does
    scaled = 0.3 * cut.windows - 0.2
    fixed = chemistry_map(_anchor_decoder(scaled, anchors), d=24, bond_length=CC, threshold=0.5)
    assert not fixed.physical.any()  # nothing above 0.5: every window empty
    auto = chemistry_map(_anchor_decoder(scaled, anchors), d=24, bond_length=CC)
    assert -0.2 < auto.params["threshold"] < 0.1
    np.testing.assert_array_equal(auto.classify(anchors), truth_all[chosen][cut.rows])
    # windows of two bond lengths cannot show the rings through the centre atom: said, with the size to use
    small = cut_windows(mask, make_sites(a["frame"][chosen], a["y"][chosen], a["x"][chosen], "atom", 0), 16)
    with pytest.raises(ValueError, match=r"windows of 16 px .* at least 3[0-9] px"):
        chemistry_map(_anchor_decoder(small.windows, anchors[: len(small)]), d=12, bond_length=CC)
    with pytest.raises(ValueError, match="same value"):
        chemistry_map(lambda z: np.zeros((len(z), W, W), np.float32), d=8, bond_length=CC)


def test_recorded_window_scale_sets_the_threshold_and_the_unphysical_region_is_said(scene):
    """A decoder that overshoots where no window was encoded (values from −1.2 to 1.4, as a trained
    decoder extrapolates): the decoded pixels' spread misplaces the threshold, the recorded 0–1 scale
    of the model's windows does not."""
    from types import SimpleNamespace

    s, mask = scene
    a = s["atoms"][s["atoms"]["frame"] == 2]
    truth_all = np.stack([a[k] for k in ("n5", "n6", "n7", "n8")], 1)
    chosen = np.flatnonzero(truth_all[:, 1] == 3)[::40][:8]
    cut = cut_windows(mask, make_sites(a["frame"][chosen], a["y"][chosen], a["x"][chosen], "atom", 0), W)
    yy, xx = np.mgrid[:W, :W]
    junk = np.stack([-1.2 + 2.6 * ((yy + xx) % 9 == k) for k in range(6)]).astype(np.float32)  # stripes
    faded = 0.4 * cut.windows[:4]  # a lattice below half contrast: no atoms
    windows = np.concatenate([cut.windows, junk, faded])
    anchors = np.random.default_rng(5).uniform(-2.6, 2.6, (len(windows), 2))
    plain = _anchor_decoder(windows, anchors)
    data_rule = chemistry_map(plain, d=24, bond_length=CC)
    assert data_rule.params["threshold"] < 0.2  # the overshoot pulls it down into the faded lattice
    recorded = _anchor_decoder(windows, anchors)
    recorded.model = SimpleNamespace(normalisation={"mode": "window", "source": "map", "site_spacing_px": CC,
                                                    "site_kind": "atom"})
    chem = chemistry_map(recorded, d=24)
    assert chem.params["threshold"] == 0.5 and chem.bond_length == CC
    got = chem.classify(anchors)
    np.testing.assert_array_equal(got[: len(cut)], truth_all[chosen][cut.rows])
    assert (got[len(cut) + len(junk):] == -1).all()  # the faded lattice holds no atom above half contrast
    text = chem.summary()
    assert f"{1 - chem.physical.mean():.0%} of the latent plane unphysical" in text and "no lattice" in text
    assert "(0, 3, 0)" in text
