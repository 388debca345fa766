"""CLI: --help, --version, info, and one clear error line for bad files."""

import subprocess
import sys

import numpy as np

from napari_rvae import __version__
from napari_rvae.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out
    out = subprocess.run([sys.executable, "-m", "napari_rvae.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "info" in out.stdout


def test_info_prints_shape_and_scale(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", data=np.zeros((3, 16, 20), np.float32) + 1, scale=[1, 0.2, 0.2], units=["", "nm", "nm"])
    assert main(["info", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "(3, 16, 20)" in out and "0.2 × 0.2 nm" in out


def test_info_on_corrupt_file_is_one_line_and_nonzero(tmp_path, capsys):
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 40)
    assert main(["info", str(tmp_path / "bad.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("napari-rvae info: error:") and len(err.splitlines()) == 1
