"""``napari-rvae demo`` tests for a working display in a child process: a set but unusable
``DISPLAY`` runs the demo headless instead of aborting in Qt, and ``--no-run`` is honoured."""

from __future__ import annotations

import json
import os

import pytest

from napari_rvae.cli import main, usable_display


def test_an_unusable_display_is_detected(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":987")  # no X server there
    ok, why = usable_display()
    assert not ok and ":987" in why and "\n" not in why


def test_the_test_display_is_usable():
    if not os.environ.get("DISPLAY"):
        pytest.fail("pytest-xvfb should provide a display for the GUI tests")
    ok, why = usable_display()
    assert ok, why


def test_no_run_without_a_usable_display_does_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DISPLAY", ":987")
    assert main(["demo", "--no-run", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "--no-run" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["demo", "--no-run"]) == 2


@pytest.mark.slow
def test_an_unusable_display_falls_back_to_the_headless_demo(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no usable display" in printed and ":987" in printed
    index = json.loads((out / "project.json").read_text())
    assert index["sites"] == "sites.csv" and (out / "model" / "model.safetensors").exists()
