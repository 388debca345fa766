"""Shared test fixtures (core tests need no Qt; GUI tests use napari's make_napari_viewer)."""

import os

import numpy as np
import pytest

# Keep torch from oversubscribing the 2 cores when tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
