"""Arbitrary small frames never crash detection: a table or one clear ValueError."""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_rvae.detect import detect_atoms, find_rings, find_walls, link_tracks

values = st.floats(allow_nan=True, allow_infinity=True, width=32)
frames = arrays(np.float32, st.tuples(st.integers(1, 2), st.integers(3, 24), st.integers(3, 24)), elements=values)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(movie=frames, method=st.sampled_from(["peaks", "threshold"]))
def test_detection_survives_any_frame(movie, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sites = detect_atoms(movie, method=method)
        except ValueError:
            return
        assert isinstance(sites, pd.DataFrame)
        assert np.isfinite(sites[["y", "x"]].to_numpy()).all()
        if len(sites):
            find_rings(sites, bond_length=3.0)
            link_tracks(sites, r_max=3.0)


@settings(max_examples=15, deadline=None)
@given(phase=frames)
def test_walls_survive_any_phase(phase):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sites = find_walls(phase)
        except ValueError:
            return
        assert isinstance(sites, pd.DataFrame)
