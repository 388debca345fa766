"""Shared test fixtures (core tests need no Qt; GUI tests use napari's make_napari_viewer)."""

import os

import numpy as np
import pytest

# Keep torch from oversubscribing the 2 cores when tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (restored afterwards): deterministic and quiet on 2 cores."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
