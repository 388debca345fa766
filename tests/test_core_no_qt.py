"""The core must be GUI-free: importing every core module with Qt / pyqtgraph blocked works."""

import pkgutil
import subprocess
import sys

import napari_rvae

BLOCKED = ["qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "pyqtgraph", "superqt", "magicgui", "napari.qt", "napari._qt", "vispy.app"]

SCRIPT = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError("GUI import from the core: " + name)
sys.meta_path.insert(0, Block())
import napari_rvae
names = [m.name for m in pkgutil.walk_packages(napari_rvae.__path__, "napari_rvae.")]
core = [n for n in names if ".widgets" not in n]
for n in core:
    importlib.import_module(n)
print(len(core))
"""


def test_every_core_module_imports_without_qt():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(blocked=BLOCKED)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n_core = sum(1 for m in pkgutil.walk_packages(napari_rvae.__path__, "napari_rvae.") if ".widgets" not in m.name)
    assert int(out.stdout.strip().splitlines()[-1]) == n_core >= 5
