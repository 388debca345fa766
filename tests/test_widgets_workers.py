"""Background jobs: the GUI stays responsive, Stop / Continue work, errors become notifications."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_rvae._compute import torch_threads
from napari_rvae.widgets import _workers
from napari_rvae.widgets._workers import BackgroundJob, EventLoopGapMeter

pytestmark = pytest.mark.gui


class DummyState:
    """What a core trainer state looks like to the dock: epoch, losses and a stop flag."""

    def __init__(self) -> None:
        self.epoch = 0
        self.losses: list[float] = []
        self.stop = False
        self.torch_threads: list[int] = []


def dummy_training(state: DummyState, epochs: int, batches: int = 20):
    """A small torch training loop, one yield per epoch, that honours the stop flag."""
    torch.manual_seed(0)
    x = torch.randn(2000, 64)
    y = x @ torch.randn(64, 1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    state.stop = False
    while state.epoch < epochs and not state.stop:
        for batch in torch.split(torch.arange(len(x)), len(x) // batches):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
        state.epoch += 1
        state.losses.append(float(loss))
        state.torch_threads.append(torch.get_num_threads())
        yield state
    return state


def test_training_keeps_gui_responsive_and_stops(make_napari_viewer, qtbot):
    make_napari_viewer()
    state = DummyState()
    seen: list[int] = []
    job = BackgroundJob("Training", on_yield=lambda s: seen.append(s.epoch))
    meter = EventLoopGapMeter()
    before = torch.get_num_threads()
    job.start(dummy_training, state, 10_000, stop=lambda: setattr(state, "stop", True))
    assert torch.get_num_threads() == before  # the GUI thread's setting is not touched
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=30_000)
    meter.start()  # from the first epoch on: the GUI while training (the bench reports the gaps' sizes)
    qtbot.wait(1000)
    meter.stop()
    with qtbot.waitSignal(job.finished, timeout=30_000):
        job.stop()
    assert not job.running
    stopped_at = state.epoch
    assert 8 <= stopped_at < 10_000
    assert seen == list(range(1, stopped_at + 1))  # every epoch reached the GUI, in order
    assert len(meter.gaps_ms) > 20  # the event loop kept running
    assert torch.get_num_threads() == before  # the job gave torch's threads back
    # Continue: the same state resumes where it stopped
    with qtbot.waitSignal(job.finished, timeout=60_000):
        job.start(dummy_training, state, stopped_at + 3)
    assert state.epoch == stopped_at + 3
    # inside the job: one core left to the GUI; after it, the process's setting as it was
    assert set(state.torch_threads) == {torch_threads(leave_core_for_gui=True)}
    assert torch.get_num_threads() == before
    assert np.all(np.isfinite(state.losses)) and state.losses[-1] < state.losses[0]


def test_errors_become_notifications_and_viewer_lives(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    shown: list[str] = []
    monkeypatch.setattr(_workers, "show_error", shown.append)

    def broken(n):
        yield 1
        raise ValueError("window size 3 is too small; use at least 8 pixels")

    job = BackgroundJob("Cutting windows", on_yield=lambda v: None)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start(broken, 2)
    assert shown == ["Cutting windows failed: ValueError: window size 3 is too small; use at least 8 pixels"]
    assert isinstance(job.last_error, ValueError)
    # a failing display callback is reported too, and the job still finishes
    job = BackgroundJob("Showing", on_yield=lambda v: 1 / 0)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start(lambda: (yield 1))
    assert "ZeroDivisionError" in shown[-1]
    viewer.add_image(np.zeros((4, 4)))  # the viewer is alive
    assert len(viewer.layers) == 1


def test_start_twice_is_refused(make_napari_viewer, qtbot):
    make_napari_viewer()
    state = DummyState()
    job = BackgroundJob("Training")
    job.start(dummy_training, state, 10_000, stop=lambda: setattr(state, "stop", True))
    with pytest.raises(ValueError, match="already running"):
        job.start(dummy_training, state, 1)
    qtbot.waitUntil(lambda: state.epoch >= 1, timeout=60_000)  # a user presses Stop once training shows
    with qtbot.waitSignal(job.finished, timeout=60_000):
        job.stop()


def test_jobs_run_in_the_plugins_own_pool_and_restore_torch_threads(make_napari_viewer, qtbot):
    """Good neighbour: napari's global thread pool keeps its size; torch's count for new threads
    (what another plugin's worker gets) is back to what it was once the job ends."""
    import threading

    from qtpy.QtCore import QThreadPool

    make_napari_viewer()
    global_pool = QThreadPool.globalInstance().maxThreadCount()
    torch.set_num_threads(2)
    seen = {}

    def job_steps():
        seen["in_job"] = torch.get_num_threads()
        seen["private_pool_active"] = _workers.plugin_thread_pool().activeThreadCount()
        yield 1

    job = BackgroundJob("Probe", on_yield=lambda v: None)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start(job_steps)
    assert QThreadPool.globalInstance().maxThreadCount() == global_pool
    assert seen["private_pool_active"] == 1
    assert seen["in_job"] == torch_threads(leave_core_for_gui=True)
    fresh = {}
    other = threading.Thread(target=lambda: fresh.setdefault("threads", torch.get_num_threads()))
    other.start()
    other.join()
    assert fresh["threads"] == 2
