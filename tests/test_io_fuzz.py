"""Random bytes with any supported extension never crash the reader: ValueError or a movie."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_rvae.io.formats import READERS
from napari_rvae.io.movie import read_movie

PREFIXES = {
    ".npy": b"\x93NUMPY\x01\x00",
    ".npz": b"PK\x03\x04",
    ".tif": b"II*\x00",
    ".tiff": b"MM\x00*",
    ".h5": b"\x89HDF\r\n\x1a\n",
    ".hdf5": b"\x89HDF\r\n\x1a\n",
    ".hspy": b"\x89HDF\r\n\x1a\n",
}


@pytest.mark.parametrize("suffix", sorted(READERS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(min_size=0, max_size=2048), with_magic=st.booleans())
def test_random_bytes_never_crash(tmp_path, suffix, payload, with_magic):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes((PREFIXES.get(suffix, b"") if with_magic else b"") + payload)
    try:
        movies = read_movie(path)
    except ValueError as err:
        assert str(err) and "\n" not in str(err)
    else:  # random bytes that happen to parse must still give valid movies
        for m in movies:
            assert m.data.ndim == 3 and np.dtype(m.data.dtype) == np.float32
