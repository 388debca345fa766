"""Perovskite A/B sublattices by geometry, unit cells and B-site displacements (detect.perovskite),
against the ferroic sample's truth (A and B columns, polarisation displacement, a dimmer substrate)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.detect import detect_atoms
from napari_rvae.detect.perovskite import assign_sublattices, displacement_vectors, with_cells
from napari_rvae.io.sites import make_sites
from napari_rvae.synth import make_sample


def truth_positions(sample):
    a = np.column_stack([sample["asites"]["y"], sample["asites"]["x"]])
    b = np.column_stack([sample["bsites"]["y"], sample["bsites"]["x"]])
    return a, b


@pytest.mark.parametrize("seed, a", [(21, 16.0), (22, 24.0)])
def test_sublattices_and_displacements_on_the_ferroic_sample(seed, a):
    """Defaults: A/B ≥ 99 % right although substrate A columns are dimmer than film B columns would be
    by brightness alone; B displacement within 0.5 px of the truth (displacements are 1.5–3 px)."""
    sample = make_sample("ferroic", seed=seed, a=a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sites = detect_atoms(sample["data"][0])
    table = with_cells(sites)
    atoms = table[table["kind"] == "atom"]
    true_a, true_b = truth_positions(sample)
    truth = np.vstack([true_a, true_b])
    label = np.r_[["A"] * len(true_a), ["B"] * len(true_b)]
    dist, idx = cKDTree(truth).query(atoms[["y", "x"]].to_numpy())
    matched = dist < 0.2 * a / np.sqrt(2)
    assert matched.mean() > 0.95
    assert np.mean(atoms["sublattice"].to_numpy()[matched] == label[idx[matched]]) >= 0.99
    b_rows = matched & (label[idx] == "B") & np.isfinite(atoms["disp_y"].to_numpy())
    assert b_rows.sum() > 0.6 * len(true_b)
    tb = sample["bsites"][idx[b_rows] - len(true_a)]
    error = np.hypot(atoms["disp_y"].to_numpy()[b_rows] - tb["py"], atoms["disp_x"].to_numpy()[b_rows] - tb["px"])
    assert np.median(error) < 0.5 and np.median(np.hypot(tb["py"], tb["px"])) > 1.0
    cells = table[table["kind"] == "cell"]
    assert len(cells) == b_rows.sum() + np.sum(~matched & (atoms["sublattice"] == "B").to_numpy() &
                                              np.isfinite(atoms["disp_y"].to_numpy()))
    vectors = displacement_vectors(table)
    assert vectors.shape == (np.isfinite(atoms["disp_y"]).sum(), 2, 3)


def test_only_one_sublattice_is_refused_with_a_clear_message():
    yy, xx = np.mgrid[0:20, 0:20] * 14.0
    sites = make_sites(0, yy.ravel(), xx.ravel(), intensity=np.random.default_rng(0).normal(10, 0.3, 400))
    with pytest.raises(ValueError, match="only one of A or B"):
        assign_sublattices(sites)
    with pytest.raises(ValueError, match="intensity"):
        assign_sublattices(make_sites(0, yy.ravel(), xx.ravel()))
