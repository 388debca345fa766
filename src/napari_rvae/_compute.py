"""Where and how torch runs: device selection and the thread-count policy.

Two OpenMP threads collapse when another busy process shares the cores, so
while napari is live the trainer leaves one core to the GUI.
"""

from __future__ import annotations

import os


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
    """Apply :func:`torch_threads` and return the number set."""
    import torch

    n = torch_threads(leave_core_for_gui)
    torch.set_num_threads(n)
    return n


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
