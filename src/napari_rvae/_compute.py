"""Where and how torch runs: device selection and the thread-count policy.

Two OpenMP threads collapse when another busy process shares the cores, so
while napari is live the trainer leaves one core to the GUI.

Torch's thread count is shared by everything in the process (other plugins, the
user's notebook): jobs set it only for the time they run, with
:func:`torch_thread_limit`, and put it back afterwards.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from contextlib import contextmanager


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def torch_threads(leave_core_for_gui: bool = False) -> int:
    """Threads torch should use: all cores, or cores − 1 (at least 1) beside a GUI."""
    n = cpu_count()
    return max(1, n - 1) if leave_core_for_gui else n


def set_torch_threads(leave_core_for_gui: bool = False) -> int:
    """Apply :func:`torch_threads` for good and return the number set (command-line runs only;
    library code uses :func:`torch_thread_limit`)."""
    import torch

    n = torch_threads(leave_core_for_gui)
    torch.set_num_threads(n)
    return n


_LIMIT_LOCK = threading.Lock()
_LIMIT = {"depth": 0, "saved": None}


@contextmanager
def torch_thread_limit(threads: int | None = None, *, leave_core_for_gui: bool = False, restore: int | None = None):
    """Run the ``with`` block with ``threads`` torch threads (default :func:`torch_threads`),
    then restore the count found before (or ``restore``).

    Jobs may overlap (two docks, several threads): the count found by the first one to enter
    is put back when the last one leaves, so the process ends as it began. torch keeps the
    count per thread and gives new threads the last one set: a job in a worker thread passes
    ``restore``, the count of the thread that started it.
    """
    import torch

    n = int(threads) if threads else torch_threads(leave_core_for_gui)
    with _LIMIT_LOCK:
        if _LIMIT["depth"] == 0:
            _LIMIT["saved"] = int(restore) if restore else torch.get_num_threads()
        _LIMIT["depth"] += 1
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        with _LIMIT_LOCK:
            _LIMIT["depth"] -= 1
            if _LIMIT["depth"] == 0:
                torch.set_num_threads(_LIMIT["saved"])


def with_torch_thread_limit(function, *, leave_core_for_gui: bool = False):
    """``function`` (a plain or generator function) running under :func:`torch_thread_limit`.

    A generator's steps run under the limit one by one and the count is restored at every
    ``yield``, so a paused job never holds the process's setting. Call it in the thread whose
    count is the process's (the GUI thread): that count is what gets restored.
    """
    # torch is not imported here for a job that may not need it; not imported yet means nobody
    # changed its count, and the job's first step finds the default
    restore = None
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):  # may still be importing in another thread
        try:
            restore = torch.get_num_threads()
        except Exception:  # noqa: BLE001 - a half-imported torch: the job's first step finds the count
            restore = None
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def steps(*args, **kwargs):
            generator = function(*args, **kwargs)
            sent = None
            while True:
                with torch_thread_limit(leave_core_for_gui=leave_core_for_gui, restore=restore):
                    try:
                        item = generator.send(sent)
                    except StopIteration as done:
                        return done.value
                sent = yield item

        return steps

    @functools.wraps(function)
    def call(*args, **kwargs):
        with torch_thread_limit(leave_core_for_gui=leave_core_for_gui, restore=restore):
            return function(*args, **kwargs)

    return call


def select_device(name: str = "auto"):
    """Return a ``torch.device``: ``"auto"`` picks CUDA, then MPS, then CPU.

    A named device that is not available raises ``ValueError``.
    """
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but Apple MPS is not available here; use 'auto' or 'cpu'")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} ({err})") from None
