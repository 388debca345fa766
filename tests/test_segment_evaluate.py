"""The scoring helpers used for the default model's record: matching and simple centroids."""

import numpy as np

from napari_rvae.segment.evaluate import atom_centroids, match_points, score_atoms
from napari_rvae.synth.render import render_spots


def test_match_points_counts_one_to_one():
    truth = np.array([[10.0, 10.0], [10.0, 20.0], [30.0, 30.0]])
    found = np.array([[10.5, 10.0], [10.0, 19.0], [10.2, 19.5], [50.0, 50.0]])  # two claim the 2nd atom
    s = match_points(found, truth, tol=2.0)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1)
    assert np.isclose(s["f1"], 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_centroids_of_rendered_spots_and_border_margin():
    truth = np.array([[20.3, 20.7], [40.0, 61.2], [1.0, 30.0]])  # the last one sits on the border
    prob = render_spots((64, 80), truth, 1.0, 1.5)
    found = atom_centroids(prob, 0.5)
    assert len(found) == 3
    s = score_atoms(prob, truth, tol=1.0, margin=4.0)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0) and s["rmse"] < 0.2  # pixel-quantised support of a thresholded spot
