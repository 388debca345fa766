"""The project's benchmarks, comparisons and validations (not part of the installed package).

Run them from a source checkout: ``napari-rvae bench`` (see :mod:`benchmarks.bench`), or a module
directly, e.g. ``python -m benchmarks.validate_chemistry``. They import ``napari_rvae`` as a user
would.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict:
    """The environment for a child Python that imports ``benchmarks``: the checkout on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
