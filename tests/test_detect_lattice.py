"""Lattice scale from the data (detect.lattice): spacing, kind and contrast against known lattices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_rvae.detect.lattice import estimate_lattice, frame_lattice, scale_defaults
from napari_rvae.synth.instrument import low_dose_graphene
from napari_rvae.synth.render import add_noise, render_spots

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real" / "stem"


def lattice_image(kind: str, d: float, *, width: float = 0.22, b: float = 1.0, seed: int = 0, size: int = 384,
                  counts: float = 20.0) -> np.ndarray:
    """A noisy image of a lattice with nearest-neighbour spacing ``d`` px at a random angle."""
    rng = np.random.default_rng(seed)
    if kind == "triangular":
        vectors, basis, amps = np.array([[d, 0], [d / 2, d * np.sqrt(3) / 2]]), np.zeros((1, 2)), [1.0]
    elif kind == "honeycomb":
        a = d * np.sqrt(3)
        vectors, basis, amps = np.array([[a, 0], [a / 2, a * np.sqrt(3) / 2]]), np.array([[0, 0], [0, d]]), [1.0, b]
    elif kind == "square":
        vectors, basis, amps = np.array([[d, 0], [0, d]]), np.zeros((1, 2)), [1.0]
    else:  # perovskite A + B: A–B is the nearest-neighbour distance
        a = d * np.sqrt(2)
        vectors, basis, amps = np.array([[a, 0], [0, a]]), np.array([[0, 0], [a / 2, a / 2]]), [1.0, b]
    n = int(2 * size / d)
    i, j = np.meshgrid(np.arange(-n, n), np.arange(-n, n))
    pts = (i.reshape(-1, 1, 1) * vectors[0] + j.reshape(-1, 1, 1) * vectors[1] + basis[None]).reshape(-1, 2)
    amp = np.tile(amps, len(pts) // len(amps))
    th = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    yx = (pts @ rot + size / 2 + rng.uniform(0, d, 2))[:, ::-1]
    keep = np.all((yx > -3 * d) & (yx < size + 3 * d), axis=1)
    image = render_spots((size, size), yx[keep], amp[keep], width * d) + 0.05
    return add_noise(image, rng, dose=counts, read_noise=0.02)


@pytest.mark.parametrize("kind, expected", [("triangular", "hexagonal"), ("honeycomb", "honeycomb"),
                                            ("square", "square"), ("perovskite", "square")])
@pytest.mark.parametrize("d", [7.0, 12.0, 20.0])
def test_spacing_and_kind_of_clean_lattices(kind, expected, d):
    lattice = frame_lattice(lattice_image(kind, d, b=0.6 if kind == "perovskite" else 1.0, seed=int(d)))
    assert lattice.found and lattice.kind == expected, lattice
    assert abs(lattice.spacing / d - 1) < 0.02, lattice
    assert lattice.contrast == "bright"


@pytest.mark.parametrize("kind", ["square", "perovskite", "honeycomb"])
def test_dark_atoms_are_recognised(kind):
    lattice = frame_lattice(-lattice_image(kind, 12.0, width=0.18, b=0.6 if kind == "perovskite" else 1.0, seed=3))
    assert lattice.found and lattice.contrast == "dark" and abs(lattice.spacing / 12.0 - 1) < 0.02, lattice


@pytest.mark.parametrize("seed", range(100, 106))
def test_low_dose_graphene_spacing_within_5_percent(seed):
    """Frames with 3–40 counts per atom, amorphous cover, grain boundaries, scan distortion."""
    scene = low_dose_graphene(seed)
    lattice = estimate_lattice(scene["image"])
    assert lattice.found and abs(lattice.spacing / scene["spacing"] - 1) < 0.05, (lattice, scene["params"])


@pytest.mark.parametrize("name, image", [
    ("white noise", np.random.default_rng(0).normal(size=(512, 512))),
    ("Poisson noise", np.random.default_rng(1).poisson(3.0, (256, 256)).astype(float)),
    ("constant", np.ones((128, 128))),
    ("all NaN", np.full((64, 64), np.nan)),
    ("tiny", np.random.default_rng(2).random((10, 10))),
])
def test_no_lattice_in_frames_without_one(name, image):
    lattice = frame_lattice(image)
    assert not lattice.found and lattice.note, lattice


def test_correlated_noise_is_rarely_taken_for_a_lattice():
    """Smoothed noise has a characteristic length but no lattice: at most 1 in 24 frames passes the
    periodicity checks (and detection then demands a star of bonds, see test_detect_plausibility)."""
    rng = np.random.default_rng(5)
    found = sum(frame_lattice(ndimage.gaussian_filter(rng.normal(size=(384, 384)), s)).found
                for s in (1, 2, 3, 5) for _ in range(6))
    assert found <= 1


def test_movie_estimate_and_defaults_follow_the_spacing():
    frames = np.stack([lattice_image("honeycomb", 14.0, seed=s, size=256) for s in range(3)])
    lattice = estimate_lattice(frames)
    # two agreeing frames are enough; asking for three analyses all of them
    assert lattice.found and len(lattice.frames) == 2 and abs(lattice.spacing - 14.0) < 0.3
    every = estimate_lattice(frames, agree=3)
    assert len(every.frames) == 3 and abs(every.spacing - 14.0) < 0.3
    # a blank frame in the middle makes it look further instead of giving up
    frames[1] = 0.5
    gap = estimate_lattice(frames)
    assert gap.found and len(gap.frames) == 3 and np.isnan(gap.frames[0]) and gap.analysed == [1, 0, 2] and abs(gap.spacing - 14.0) < 0.3
    defaults = scale_defaults(lattice.spacing)
    assert defaults["window"] == 28 and defaults["chemistry_window"] == 70 and defaults["min_distance"] == pytest.approx(0.55 * lattice.spacing, rel=1e-3)
    assert defaults["rescale"] == pytest.approx(10.0 / lattice.spacing, rel=1e-3)
    with pytest.raises(ValueError, match="spacing"):
        scale_defaults(float("nan"))


@pytest.mark.skipif(not REAL.exists(), reason="real STEM files (../shared/real) not present")
def test_real_stem_files():
    from napari_rvae.io.movie import read_movie

    tmd = frame_lattice(np.asarray(read_movie(REAL / "re05.tiff")[0].data)[0])
    # metal columns 30.3 px apart (the chalcogen columns are too dim for the autocorrelation; detection finds them)
    assert tmd.found and tmd.kind == "hexagonal" and abs(tmd.spacing - 30.3) < 0.6
    oxide = frame_lattice(np.asarray(read_movie(REAL / "DMReader_Image_SI-Survey.dm3")[0].data)[0])
    assert oxide.found and abs(oxide.spacing - 14.95) < 0.5  # bright columns along the fast scan axis


def test_as_detected_reads_the_lattice_detection_settled_on():
    import pandas as pd

    from napari_rvae.detect.lattice import Lattice, as_detected

    estimate = Lattice(spacing=30.3, kind="hexagonal", found=True, frames=[30.3])
    sites = pd.DataFrame({"frame": [0], "y": [1.0], "x": [2.0]})
    assert as_detected(sites, estimate) is estimate  # no record: the estimate
    settled = Lattice(spacing=17.27, kind="honeycomb", found=True, frames=[float("nan")], note="atoms between")
    sites.attrs["detection"] = {"lattice": settled.to_dict()}
    got = as_detected(sites, estimate)
    assert got.kind == "honeycomb" and got.spacing == pytest.approx(17.27) and got.found and np.isnan(got.frames[0])
    assert Lattice.from_dict(None) is None and Lattice.from_dict({"spacing": "wide"}) is None
