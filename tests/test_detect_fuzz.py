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


def _valid_sites(sites, movie):
    """A sites table whose positions lie in the frames they name."""
    assert isinstance(sites, pd.DataFrame)
    assert {"frame", "y", "x", "kind"} <= set(sites.columns)
    yx = sites[["y", "x"]].to_numpy(dtype=float)
    assert np.isfinite(yx).all()
    t, h, w = movie.shape
    assert ((yx >= -0.5) & (yx <= np.array([h, w]) - 0.5)).all()
    assert sites["frame"].between(0, t - 1).all()


def _one_line(err: ValueError) -> None:
    message = str(err)
    assert message and "\n" not in message, message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(movie=frames, method=st.sampled_from(["peaks", "threshold"]))
def test_detection_survives_any_frame(movie, method):
    """The contract: a valid sites table, or one ValueError line — then rings and tracks keep it too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sites = detect_atoms(movie, method=method)
        except ValueError as err:
            _one_line(err)
            return
        _valid_sites(sites, movie)
        if len(sites):
            for step in (lambda: find_rings(sites, bond_length=3.0), lambda: link_tracks(sites, r_max=3.0)):
                try:
                    result = step()
                except ValueError as err:
                    _one_line(err)
                    continue
                table = result[0] if isinstance(result, tuple) else result
                assert isinstance(table, pd.DataFrame) and len(table) == len(sites)


@settings(max_examples=15, deadline=None)
@given(phase=frames)
def test_walls_survive_any_phase(phase):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sites = find_walls(phase)
        except ValueError as err:
            _one_line(err)
            return
        _valid_sites(sites, phase)
