"""Plausibility of a detection against the estimated lattice (detect.plausibility) and the refusal of
frames without atoms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from napari_rvae.detect import detect_atoms
from napari_rvae.detect.lattice import Lattice
from napari_rvae.detect.plausibility import bond_order, check_sites, confirms, decorated
from napari_rvae.io.sites import make_sites


def honeycomb(d: float, size: float = 300.0, sublattices: int = 2) -> np.ndarray:
    a = d * np.sqrt(3)
    i, j = np.meshgrid(np.arange(-20, 21), np.arange(-20, 21))
    cells = np.stack([i.ravel() * a + j.ravel() * a / 2, j.ravel() * a * np.sqrt(3) / 2], 1)
    pts = np.concatenate([cells, cells + [0, d]][:sublattices])
    return pts[np.all((pts > 5) & (pts < size - 5), axis=1)]


def test_a_plausible_detection_has_no_findings():
    yx = honeycomb(12.0)
    lattice = Lattice(spacing=12.0, kind="honeycomb", found=True)
    assert check_sites(make_sites(0, yx[:, 0], yx[:, 1]), lattice, (1, 300, 300)) == []


def test_noise_maxima_are_reported_as_too_many_sites():
    yx = np.random.default_rng(0).uniform(5, 295, (5000, 2))
    lattice = Lattice(spacing=12.0, kind="honeycomb", found=True)
    findings = check_sites(make_sites(0, yx[:, 0], yx[:, 1]), lattice, (1, 300, 300), method="peaks")
    assert len(findings) >= 1 and findings[0].startswith("too many sites") and "--method model" in findings[0]


def test_a_missed_sublattice_is_reported_and_a_second_species_upgrades_the_lattice():
    yx = honeycomb(12.0)
    one = honeycomb(12.0, sublattices=1)  # one sublattice: nearest neighbours 12·√3 px apart
    assert any("no peak at the spacing" in f or "few sites" in f
               for f in check_sites(make_sites(0, one[:, 0], one[:, 1]), Lattice(spacing=12.0, kind="honeycomb",
                                                                                  found=True), (1, 300, 300)))
    # a TMD-like image: the autocorrelation saw only the bright metal lattice (hexagonal, 12·√3 px);
    # the detected atoms include the dim species at 12 px between them
    seen = decorated(make_sites(0, yx[:, 0], yx[:, 1]), Lattice(spacing=12.0 * np.sqrt(3), kind="hexagonal",
                                                                found=True))
    assert seen.kind == "honeycomb" and abs(seen.spacing - 12.0) < 0.1 and "atoms found between" in seen.note


def test_bond_order_tells_lattices_from_random_points():
    yx = honeycomb(12.0) + np.random.default_rng(1).normal(0, 0.5, (len(honeycomb(12.0)), 2))
    assert np.nanmedian(bond_order(yx, 3, 6)) > 0.9
    rnd = np.random.default_rng(2).uniform(0, 300, (600, 2))
    assert np.nanmedian(bond_order(rnd, 3, 6)) < 0.7
    assert confirms(make_sites(0, yx[:, 0], yx[:, 1]), Lattice(spacing=12.0, kind="honeycomb"))
    assert not confirms(make_sites(0, rnd[:, 0], rnd[:, 1]), Lattice(spacing=12.0, kind="honeycomb"))


@pytest.mark.parametrize("sigma", [0, 1, 2, 3, 5, 8])
def test_detection_refuses_correlated_noise(sigma):
    """Frames of (smoothed) noise, which have a characteristic length but no atoms, give one clear error."""
    rng = np.random.default_rng(sigma)
    for size in (128, 256, 512):
        frame = rng.normal(size=(size, size))
        frame = ndimage.gaussian_filter(frame, sigma) if sigma else frame
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match="no atomic lattice"):
                detect_atoms(frame, method="peaks")


def test_checks_on_the_geometry_of_chunks_equal_the_checks_on_the_whole_table(tmp_path):
    """A movie detected in chunks is checked on its sites' geometry measured chunk by chunk (left on disk
    beside the partitions, joined by the finish): the same lattice update, confirmation and findings as
    on the whole table."""
    from napari_rvae.detect.plausibility import STARS, SiteGeometry

    rng = np.random.default_rng(3)
    frames = []
    for t in range(6):  # honeycomb frames with jitter; frame 4 holds noise maxima, frame 5 two sites only
        yx = honeycomb(12.0) + rng.normal(0, 0.4, (len(honeycomb(12.0)), 2))
        yx = rng.uniform(5, 295, (900, 2)) if t == 4 else yx[:2] if t == 5 else yx
        frames.append(make_sites(t, yx[:, 0], yx[:, 1]))
    import pandas as pd

    table = pd.concat(frames, ignore_index=True)
    from napari_rvae.chunks.steps import _joined_geometry
    from napari_rvae.chunks.store import write_side_arrays

    whole = SiteGeometry.of(table, (6, 300, 300))
    for start, part in ((0, table[table["frame"] < 3]), (3, table[table["frame"] >= 3])):  # as two chunks leave it
        write_side_arrays(tmp_path, start, SiteGeometry.of(part, (6, 300, 300)).to_arrays())
    joined = _joined_geometry(tmp_path)
    np.testing.assert_array_equal(joined.counts, [len(f) for f in frames])
    np.testing.assert_array_equal(joined.nn, whole.nn)
    for star in STARS:
        np.testing.assert_array_equal(joined.order(*star), whole.order(*star))
    for lattice in (Lattice(spacing=12.0 * np.sqrt(3), kind="hexagonal", found=True),
                    Lattice(spacing=12.0, kind="honeycomb", found=False, regular=False)):
        assert decorated(joined, lattice) == decorated(table, lattice)
        assert confirms(joined, lattice, (6, 300, 300)) == confirms(table, lattice, (6, 300, 300))
        assert check_sites(joined, lattice, (6, 300, 300)) == check_sites(table, lattice, (6, 300, 300))
    # the upgrade to a honeycomb is seen on the geometry as on the table (the test above, chunked)
    assert decorated(joined, Lattice(spacing=12.0 * np.sqrt(3), kind="hexagonal", found=True)).kind == "honeycomb"
    with pytest.raises(ValueError, match="was not measured"):
        SiteGeometry.of(table, stars=()).order(3, 6)
