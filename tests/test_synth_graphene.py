"""graphene-movie: the ground truth agrees with the rendered movie and with graphene's topology."""

import numpy as np
import pytest

from napari_rvae.synth.graphene import SI_CONTRAST, graphene_movie

CC = 12.0


@pytest.fixture(scope="module")
def clean():
    """A noiseless movie with every kind of defect (small, fast)."""
    return graphene_movie(seed=3, frames=6, size=224, noise=False, n_holes=2, n_stone_wales=3, hole_growth=0.3, grain_radius=0.15)


@pytest.fixture(scope="module")
def noisy():
    return graphene_movie(seed=3, frames=6, size=224, noise=True, n_holes=2, n_stone_wales=3, hole_growth=0.3, grain_radius=0.15)


def _frame_lookup(atoms):
    return {(int(f), int(i)): k for k, (f, i) in enumerate(zip(atoms["frame"], atoms["id"]))}


def test_every_atom_is_the_local_intensity_maximum_within_half_a_pixel(clean):
    data, atoms = clean["data"], clean["atoms"]
    size = data.shape[1]
    r = 3  # half-window in pixels; neighbours are >= 0.8 * 12 px away
    checked = 0
    for a in atoms:
        y, x = a["y"], a["x"]
        cy, cx = int(round(y)), int(round(x))
        if not (r + 1 <= cy < size - r - 1 and r + 1 <= cx < size - r - 1):
            continue
        win = data[a["frame"], cy - r : cy + r + 1, cx - r : cx + r + 1]
        iy, ix = np.unravel_index(np.argmax(win), win.shape)
        assert 0 < iy < 2 * r and 0 < ix < 2 * r, "maximum on the window edge: not a local maximum"
        py, px = cy - r + iy, cx - r + ix
        img = data[a["frame"]]
        # sub-pixel peak by a parabola through the 3 pixels on each axis
        def vertex(m, c, p):
            den = m - 2 * c + p
            return 0.0 if den == 0 else 0.5 * (m - p) / den

        sy = py + vertex(img[py - 1, px], img[py, px], img[py + 1, px])
        sx = px + vertex(img[py, px - 1], img[py, px], img[py, px + 1])
        assert abs(sy - y) <= 0.5 and abs(sx - x) <= 0.5, (a, sy, sx)
        checked += 1
    assert checked > 0.8 * len(atoms)


def test_si_is_brighter_by_z_contrast(clean):
    data, atoms = clean["data"], clean["atoms"]
    peak = data[atoms["frame"], np.rint(atoms["y"]).astype(int), np.rint(atoms["x"]).astype(int)]
    si, c = peak[atoms["class"] == 1], peak[atoms["class"] == 0]
    assert len(si) > 0
    assert np.median(si) / np.median(c) == pytest.approx(SI_CONTRAST, rel=0.1)
    assert (atoms["element"][atoms["class"] == 1] == 14).all()


def test_si_is_about_one_percent_and_hops_to_neighbouring_sites(clean):
    atoms = clean["atoms"]
    first = atoms[atoms["frame"] == 0]
    assert 0.005 <= (first["class"] == 1).mean() <= 0.015
    si = atoms[atoms["track_id"] >= 0]
    assert (si["class"] == 1).all() and (atoms["class"][atoms["track_id"] < 0] == 0).all()
    hops = 0
    drift = clean["drift"]
    for tid in np.unique(si["track_id"]):
        tr = np.sort(si[si["track_id"] == tid], order="frame")
        for a, b in zip(tr[:-1], tr[1:]):
            if b["frame"] != a["frame"] + 1:
                continue
            move = np.hypot(*(np.array([b["y"] - a["y"], b["x"] - a["x"]]) - (drift[b["frame"]] - drift[a["frame"]])))
            if b["id"] != a["id"]:
                hops += 1
                assert 0.8 * CC <= move <= 1.2 * CC, "a hop goes to a bonded neighbour"
            else:
                assert move < 1e-9
    assert hops > 0


def test_bonds_join_atoms_08_to_12_cc_apart(noisy):
    atoms, bonds = noisy["atoms"], noisy["bonds"]
    assert len(bonds) > 0
    row = _frame_lookup(atoms)
    i = np.array([row[(f, a)] for f, a in zip(bonds["frame"], bonds["i"])])
    j = np.array([row[(f, a)] for f, a in zip(bonds["frame"], bonds["j"])])
    length = np.hypot(atoms["y"][i] - atoms["y"][j], atoms["x"][i] - atoms["x"][j])
    assert length.min() >= 0.8 * CC and length.max() <= 1.2 * CC
    # every atom has at most 3 bonds (sp2 carbon)
    for f in np.unique(bonds["frame"]):
        b = bonds[bonds["frame"] == f]
        assert np.bincount(np.concatenate([b["i"], b["j"]])).max() <= 3


def test_stone_wales_atoms_sit_in_5_and_7_rings(noisy):
    atoms, sw, rings = noisy["atoms"], noisy["stone_wales"], noisy["rings"]
    assert len(sw) >= 1
    drift = noisy["drift"]
    for d in sw:
        later = atoms[(atoms["defect"] == d["id"]) & (atoms["frame"] >= d["frame"])]
        assert len(later) > 0
        for a in later:
            sizes = {s for s, n in zip((5, 6, 7, 8), (a["n5"], a["n6"], a["n7"], a["n8"])) if n > 0}
            assert sizes == {5, 7}
            assert (a["n5"], a["n7"]) == (1, 2)
        for f in np.unique(later["frame"]):
            centre = np.array([d["y"], d["x"]]) + drift[f] - drift[d["frame"]]
            r = rings[rings["frame"] == f]
            near = r[np.hypot(r["y"] - centre[0], r["x"] - centre[1]) < 1.6 * CC]
            assert sorted(near["size"].tolist()) == [5, 5, 7, 7]  # the 5-7-7-5 defect
    # pristine lattice far from defects: three hexagons per atom
    assert np.median(atoms["n6"]) == 3


def test_holes_grow_and_contain_no_atoms(noisy):
    holes, atoms, labels = noisy["hole_masks"], noisy["atoms"], noisy["labels"]
    frac = holes.mean(axis=(1, 2))
    assert frac[-1] > frac[0] and frac[-1] > 0.005
    assert np.all(np.diff(frac) > -0.002)  # they grow (drift can move a hole slightly out of view)
    counts = np.bincount(atoms["frame"])
    assert counts[-1] < counts[0]  # edge atoms are removed
    iy, ix = np.rint(atoms["y"]).astype(int), np.rint(atoms["x"]).astype(int)
    assert not holes[atoms["frame"], iy, ix].any()
    assert (labels[atoms["frame"], iy, ix] == np.where(atoms["class"] == 1, 3, 2)).all()
    assert (labels[holes] == 1).all()


def test_ground_truth_does_not_depend_on_noise(clean, noisy):
    for key in ("atoms", "bonds", "rings", "stone_wales", "labels", "hole_masks"):
        np.testing.assert_array_equal(clean[key], noisy[key])
    assert not np.array_equal(clean["data"], noisy["data"])


def test_grain_adds_rotated_atoms_and_boundary_rings():
    g = graphene_movie(seed=0, frames=1, size=256, grain=True, grain_radius=0.3, n_holes=0, n_stone_wales=0)
    atoms = g["atoms"]
    assert (atoms["grain"] == 1).sum() > 50
    assert ((atoms["n5"] > 0) | (atoms["n7"] > 0) | (atoms["n8"] > 0)).sum() > 0


def test_invalid_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="frames"):
        graphene_movie(frames=0)
    with pytest.raises(ValueError, match="cc"):
        graphene_movie(cc=-1)
    with pytest.raises(ValueError, match="seed"):
        graphene_movie(seed=-3)
