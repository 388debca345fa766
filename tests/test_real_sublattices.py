"""The pipeline's defaults on a real honeycomb (re05.tiff, a HAADF image of a transition-metal
dichalcogenide, ../shared/real): the windows follow the lattice detection settled on, and the rVAE's
angle separates the two sublattices (paper 001) as the atoms' own geometry does.

Skipped where the folder is absent (a user's fresh clone)."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_rvae.io.movie import read_movie
from napari_rvae.pipeline import demo_settings, iter_pipeline, run_pipeline

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="real data folder ../shared/real is absent")


def _re05() -> np.ndarray:
    (movie,) = read_movie(REAL / "stem/re05.tiff")
    return np.asarray(movie.data, dtype=np.float32)


def test_windows_follow_the_lattice_detection_settled_on():
    # the autocorrelation sees the brighter sublattice's hexagonal lattice (30.3 px); the atoms found
    # between them make it a honeycomb of 17.3 px, and the windows are two of those spacings
    steps = iter_pipeline(_re05(), demo_settings())
    stages = {}
    for item in steps:
        if item[0] == "stage":
            stages[item[1]] = item[2]
            if item[1] == "windows":
                break
    steps.close()
    assert "34 px" in stages["windows"], stages["windows"]


def _geometric_sublattice(sites):
    """Which sublattice each site is on, from the directions to its three nearest neighbours (the two
    sublattices' bond stars are 60° apart), and how clearly (|projection|, 1 for a perfect star)."""
    yx = sites[["y", "x"]].to_numpy()
    _, idx = cKDTree(yx).query(yx, k=4)
    vec = yx[idx[:, 1:]] - yx[:, None, :]
    star = np.mean(np.exp(3j * np.arctan2(vec[..., 0], vec[..., 1])), axis=1)
    along = np.real(star * np.exp(-0.5j * np.angle(np.mean(star**2))))
    return along > 0, np.abs(along)


def test_rvae_angle_separates_real_sublattices_with_the_defaults():
    result = run_pipeline(_re05(), demo_settings())  # what `napari-rvae analyze re05.tiff` runs
    assert result.check is not None and result.check.informative, result.check.warnings
    assert result.settings.epochs > 12  # one image: more epochs than a movie, for enough optimiser steps
    side, clear = _geometric_sublattice(result.sites)
    encoded = result.sites["angle"].notna().to_numpy() & (clear > 0.5)
    turn = np.exp(3j * result.sites["angle"].to_numpy()[encoded])  # the angle modulo 120°
    truth = side[encoded]
    a, b = np.angle(np.mean(turn[truth])) / 3, np.angle(np.mean(turn[~truth])) / 3
    gap = abs(np.degrees(np.angle(np.exp(3j * (a - b))) / 3))
    assert 45 <= gap <= 75, gap  # the two bond stars are 60° apart
    accuracy = np.mean((np.real(turn * np.exp(-3j * a)) > np.real(turn * np.exp(-3j * b))) == truth)
    assert accuracy >= 0.95, accuracy


@pytest.mark.gui
def test_detect_dock_hands_the_settled_lattice_to_train_vae(make_napari_viewer, qtbot):
    # the Train VAE dock's window follows the lattice detection settled on, not the first estimate
    pytest.importorskip("napari_rvae.vae")
    from napari_rvae.detect.lattice import scale_defaults
    from napari_rvae.widgets._state import workflow

    viewer = make_napari_viewer()
    viewer.open(str(REAL / "stem/re05.tiff"), plugin="napari-rvae")
    _, detect = viewer.window.add_plugin_dock_widget("napari-rvae", "Detect")
    _, train = viewer.window.add_plugin_dock_widget("napari-rvae", "Train VAE")
    flow = workflow(viewer)
    qtbot.waitUntil(lambda: flow.lattice is not None and not detect.lattice_job.running, timeout=60_000)
    detect.run()
    qtbot.waitUntil(lambda: not detect.job.running, timeout=120_000)
    assert detect.job.last_error is None, detect.job.last_error
    assert flow.lattice.kind == "honeycomb" and flow.lattice.spacing == pytest.approx(17.3, abs=0.5)
    assert train.window_spin.value() == scale_defaults(flow.lattice.spacing)["window"] == 34
