"""The analysis core stays headless: no Qt, no matplotlib, torch only on demand."""

import subprocess
import sys


def test_analysis_imports_no_gui_or_torch():
    code = (
        "import sys, napari_rvae.analysis, napari_rvae.analysis.plots\n"
        "bad = [m for m in ('qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'pyqtgraph', 'superqt', 'magicgui',"
        " 'matplotlib', 'torch', 'napari') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
