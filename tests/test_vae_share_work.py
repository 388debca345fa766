"""fused.share_work: every item once, errors re-raised, never waits for a helper that cannot start."""

import threading

import pytest
import torch

from napari_rvae.vae import fused


def test_every_item_runs_once_and_modes_follow_the_caller():
    seen, modes = [], set()
    lock = threading.Lock()

    def work(i):
        with lock:
            seen.append(i)
            modes.add((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))

    with torch.inference_mode():
        fused.share_work(work, range(50), workers=2)
    assert sorted(seen) == list(range(50))
    assert modes == {(False, True)}
    assert torch.get_num_threads() >= 1


def test_an_error_in_any_item_reaches_the_caller():
    def work(i):
        if i == 7:
            raise ValueError("item 7 is bad")

    with pytest.raises(ValueError, match="item 7"):
        fused.share_work(work, range(20), workers=2)


def test_a_helper_that_cannot_start_is_not_waited_for():
    """The pool's thread is held by another job: the caller does every item itself and returns."""
    threads_before = torch.get_num_threads()
    release = threading.Event()
    busy = fused._pool(1).submit(release.wait, 30)
    try:
        done = []
        finished = threading.Event()

        def call():
            fused.share_work(done.append, range(10), workers=2)
            finished.set()

        caller = threading.Thread(target=call)
        caller.start()
        assert finished.wait(10), "share_work waited for a helper that never started"
        assert sorted(done) == list(range(10))
    finally:
        release.set()
        busy.result()
    assert torch.get_num_threads() == threads_before
