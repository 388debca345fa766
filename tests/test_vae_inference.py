"""Inference plumbing: fused.share_work (every item once, errors re-raised, never waits for a helper
that cannot start) and the bench's inference section against AtomAI."""

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
    fused._pool(1).submit(lambda: None).result()  # the late helper has run by now (one thread, FIFO)
    assert torch.get_num_threads() == threads_before  # and left the process's thread count alone


def test_bench_inference_alternates_with_atomai_and_reports_ratios():
    """`napari-rvae bench`'s inference section: rounds alternate AtomAI (here a stand-in with known
    timings) and ours, and every ratio is AtomAI's median over ours (above 1: ours faster)."""
    import numpy as np

    from benchmarks.vae.bench import ATOMAI_ARCH, _inference
    from napari_rvae.vae.config import VAEConfig
    from napari_rvae.vae.models import build_model

    calls = []

    def atomai():
        calls.append("atomai")
        return {"encode_windows_per_s": 1000.0, "single_decode_ms_median": 2.0, "manifold20_batched_ms": 800.0,
                "manifold2d_d20_s": 0.5, "load_after": [0.0, 0.0, 0.0]}

    windows = np.random.default_rng(0).uniform(0, 1, (64, 28, 28)).astype(np.float32)
    out = _inference(build_model(VAEConfig(**ATOMAI_ARCH), seed=0), windows, lambda *_: calls.append("log"), atomai)
    assert calls[:3] == ["atomai", "log", "log"] and calls.count("atomai") == 2 and len(out["rounds"]) == 2
    ratio = out["ratio_vs_atomai_same_run"]
    assert ratio["single_decode"] == round(2.0 / out["single_decode_ms_median"], 2)
    assert ratio["encode"] == round(out["encode_windows_per_s"] / 1000.0, 2)
    assert ratio["manifold20_vs_manifold2d"] == round(500.0 / out["manifold20_ms_median"], 2)
    assert out["single_decode_ms_median"] > 0 and out["manifold20_ms_median"] > 0
