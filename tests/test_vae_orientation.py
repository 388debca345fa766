"""Windows turned into each atom's bond frame: graphene's sublattices and rotated grains give alike windows."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_rvae.detect import bond_orientation
from napari_rvae.detect.scenes import honeycomb
from napari_rvae.io.sites import make_sites
from napari_rvae.patches import cut_windows, cut_windows_1d, recipe_options, with_orientation
from napari_rvae.synth.render import render_spots

BOND = 6.0
THIRD = 2 * np.pi / 3


def circular_gap(a, b, period):
    """Smallest distance between angles a and b modulo ``period`` (radians)."""
    d = np.mod(np.asarray(a) - np.asarray(b), period)
    return np.minimum(d, period - d)


def interior(yx, shape, margin):
    return np.all((yx >= margin) & (yx <= np.array(shape) - 1 - margin), axis=1)


@pytest.mark.parametrize("alpha", [0.0, 0.3, -1.1])
def test_bond_angle_of_a_rotated_honeycomb(alpha):
    """Lattice turned by α: bonds of one sublattice at 30° + α, of the other at 90° + α (mod 120°)."""
    yx = honeycomb((90, 90), BOND, angle=alpha, offset=(0.3, 0.6))
    table = bond_orientation(make_sites(0, yx[:, 0], yx[:, 1]), symmetry=3)
    inner = interior(yx, (90, 90), BOND + 1)
    angle = table["bond_angle"].to_numpy()[inner]
    assert np.all((angle > -np.pi / 3) & (angle <= np.pi / 3))
    a = circular_gap(angle, np.radians(30) + alpha, THIRD)
    b = circular_gap(angle, np.radians(90) + alpha, THIRD)
    near_a, near_b = a < 1e-6, b < 1e-6
    assert np.all(near_a | near_b)
    assert 0.4 < near_a.mean() < 0.6  # both sublattices present, each at its own angle
    assert table.attrs["atoms_without_bonds"] == 0


def test_bond_angle_edge_cases():
    lonely = make_sites([0, 0, 1], [5.0, 50.0, 9.0], [5.0, 50.0, 9.0])
    table = bond_orientation(lonely, bond_length=3.0)
    assert np.all(table["bond_angle"] == 0) and table.attrs["atoms_without_bonds"] == 3
    with pytest.raises(ValueError, match="symmetry"):
        bond_orientation(lonely, symmetry=0)


def test_turned_window_samples_the_image_along_the_angle():
    """On a linear ramp, window pixel (v, u) about centre c holds the image at
    c + (u cos φ − v sin φ, u sin φ + v cos φ) in (x, y): linear interpolation is exact there."""
    ny, nx, w = 60, 70, 9
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    movie = np.stack([xx + 1000.0 * yy]).astype(np.float64)
    phi = np.array([0.0, 0.4, 2.0, -2.9])
    sites = make_sites(0, [30.2, 25.7, 33.1, 28.0], [35.4, 30.1, 36.9, 40.3], bond_angle=phi)
    cut = cut_windows(movie, sites, w, orientation="bond_angle")
    assert len(cut) == 4
    g = np.arange(w) - (w - 1) / 2
    v, u = np.meshgrid(g, g, indexing="ij")
    for k in range(4):
        y = sites.y[k] + u * np.sin(phi[k]) + v * np.cos(phi[k])
        x = sites.x[k] + u * np.cos(phi[k]) - v * np.sin(phi[k])
        np.testing.assert_allclose(cut.windows[k], x + 1000.0 * y, rtol=1e-5)
    assert cut.normalisation["orientation"] == "bond_angle"
    assert cut.normalisation["centring"] == "subpixel"


def test_sublattices_and_grains_give_alike_windows_only_when_turned():
    """Two honeycomb grains (misoriented by 0.5 rad) rendered as spots: turned into the bond
    frame, every interior atom's window matches the mean window within a few per cent of its
    contrast; cut plainly, the two sublattices and grains differ by tens of per cent."""
    shape, w = (96, 96), 21
    frames, tables = [], []
    for t, alpha in enumerate((0.3, 0.8)):
        yx = honeycomb(shape, BOND, angle=alpha, offset=(0.4, 0.2))
        frames.append(render_spots(shape, yx, 1.0, 1.3))
        tables.append(make_sites(t, yx[:, 0], yx[:, 1]))
    movie = np.stack(frames)
    sites = bond_orientation(pd.concat(tables, ignore_index=True))

    def spread(cut):
        mean = cut.windows.mean(0)
        return np.sqrt(((cut.windows - mean) ** 2).mean(axis=(1, 2))).max() / float(np.ptp(mean))

    turned = cut_windows(movie, sites, w, orientation="bond_angle")
    plain = cut_windows(movie, sites, w, centring="subpixel")
    assert len(turned) > 50
    assert spread(turned) < 0.06
    assert spread(plain) > 0.25


def test_recipe_round_trip_and_bond_angle_computed_when_missing():
    yx = honeycomb((80, 80), BOND, angle=0.2)
    movie = render_spots((80, 80), yx, 1.0, 1.3)[None]
    sites = make_sites(0, yx[:, 0], yx[:, 1])
    recipe = {"mode": "global", "lo": 0.0, "hi": 1.0, "centring": "subpixel", "orientation": "bond_angle",
              "bond_symmetry": 3}
    options = recipe_options(recipe)
    assert options["orientation"] == "bond_angle"
    completed = with_orientation(sites, recipe)
    np.testing.assert_allclose(completed["bond_angle"], bond_orientation(sites)["bond_angle"])
    again = cut_windows(movie, completed, 15, **options)
    assert again.normalisation["orientation"] == "bond_angle"
    assert "orientation" not in recipe_options({"mode": "none"})  # 1D cuts keep working
    cut_windows_1d(np.zeros((1, 40)), make_sites(0, 0.0, 20.0), 8, **recipe_options({"mode": "none"}))


def test_encode_sites_turns_windows_like_the_training_cut():
    from napari_rvae.vae import VAEConfig, build_model, encode, encode_sites

    yx = honeycomb((80, 80), BOND, angle=0.2)
    movie = render_spots((80, 80), yx, 1.0, 1.3)[None]
    sites = make_sites(0, yx[:, 0], yx[:, 1])
    model = build_model(VAEConfig(arch="vae", window=(15, 15), latent=2), seed=0)
    cut = cut_windows(movie, bond_orientation(sites), 15, normalisation="global", orientation="bond_angle")
    model.normalisation = dict(cut.normalisation, bond_symmetry=3)
    table, report = encode_sites(model, movie, sites)  # no bond_angle column: computed as in training
    assert report.cut == len(cut)
    np.testing.assert_allclose(table["z0"].to_numpy()[cut.rows], encode(model, cut.windows)["z0"], rtol=1e-5,
                               atol=1e-6)


def test_orientation_bad_input():
    movie = np.zeros((1, 40, 40), np.float32)
    sites = make_sites(0, [20.0], [20.0])
    with pytest.raises(ValueError, match="no column 'bond_angle'"):
        cut_windows(movie, sites, 8, orientation="bond_angle")
    with pytest.raises(ValueError, match="NaN"):
        cut_windows(movie, sites.assign(bond_angle=np.nan), 8, orientation="bond_angle")
    # a turned window reaches further than a plain one: dropped at the border (and counted), or padded
    edge = make_sites(0, [5.0], [20.0], bond_angle=[np.pi / 4])
    assert cut_windows(movie, edge, 9, centring="subpixel").report.cut == 1
    dropped = cut_windows(movie, edge, 9, orientation="bond_angle")
    assert dropped.report.cut == 0 and dropped.report.border_dropped == 1
    padded = cut_windows(movie, edge, 9, orientation="bond_angle", border="pad")
    assert padded.report.cut == 1 and padded.report.border_padded == 1


def test_train_cli_orientation_is_recorded_and_repeated_by_encode(tmp_path):
    from napari_rvae.cli import main

    yx = honeycomb((64, 64), BOND, angle=0.5)
    movie = np.stack([render_spots((64, 64), yx, 1.0, 1.3)] * 2).astype(np.float32)
    np.save(tmp_path / "movie.npy", movie)
    make_sites(np.repeat([0, 1], len(yx)), np.tile(yx[:, 0], 2), np.tile(yx[:, 1], 2)).to_csv(
        tmp_path / "sites.csv", index=False)
    model = tmp_path / "model"
    assert main(["train", str(tmp_path / "movie.npy"), "--sites", str(tmp_path / "sites.csv"), "--window", "13",
                 "--arch", "vae", "--orientation", "bond_angle", "--mask", "5", "-o", str(model), "--epochs", "1",
                 "--threads", "1"]) == 0
    recipe = json.loads((model / "model.json").read_text())["normalisation"]
    assert recipe["orientation"] == "bond_angle" and recipe["bond_symmetry"] == 3 and recipe["mask"] == [5.0, 6.5]
    assert main(["encode", str(model), str(tmp_path / "movie.npy"), "--sites", str(tmp_path / "sites.csv"),
                 "-o", str(tmp_path / "lat.csv")]) == 0
    table = pd.read_csv(tmp_path / "lat.csv")
    assert "bond_angle" in table and table["z0"].notna().sum() > 20


def test_circular_mask_weights_and_recipe():
    from napari_rvae.patches import circular_mask, mask_radii

    m = circular_mask(28, 11.0, 14.0)
    g = np.arange(28) - 13.5
    r = np.hypot(*np.meshgrid(g, g, indexing="ij"))
    assert np.all(m[r <= 11] == 1) and np.all(m[r >= 14] == 0)
    ring = (r > 11) & (r < 14)
    assert np.all((m[ring] > 0) & (m[ring] < 1))
    order = np.argsort(r[ring])
    assert np.all(np.diff(m[ring][order]) <= 1e-6)  # falls with the radius
    assert mask_radii(5, 20) == (5.0, 10.0) and mask_radii((3, 4), 20) == (3.0, 4.0)
    for bad in ((5, 3), 0.5, (1, 2, 3), float("nan")):
        with pytest.raises(ValueError, match="mask"):
            mask_radii(bad, 20)
    movie = np.ones((1, 40, 40), np.float32)
    cut = cut_windows(movie, make_sites(0, 20.0, 20.0), 28 - 14, mask=(4.0, 6.0))
    np.testing.assert_allclose(cut.windows[0], circular_mask(14, 4.0, 6.0))
    assert cut.normalisation["mask"] == [4.0, 6.0]
    assert recipe_options(cut.normalisation)["mask"] == (4.0, 6.0)
