"""Outputs: checked before any work, never over an input or a model unless asked, right format,
OSErrors as one line, and what was computed kept when writing fails."""

from __future__ import annotations

import errno
import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

from napari_rvae.cli import main
from napari_rvae.io import outputs
from napari_rvae.io.files import save_model_files

FAST = ["--threads", "1", "--encoder-widths", "32", "--decoder-widths", "16,16"]


@pytest.fixture
def work(tmp_path):
    from napari_rvae.synth import make_sample

    rng = np.random.default_rng(0)
    movie = make_sample("graphene-movie", seed=0, frames=2, size=128)["data"]
    np.save(tmp_path / "movie.npy", movie.astype(np.float32))
    np.save(tmp_path / "w.npy", rng.uniform(0, 1, (120, 10, 10)).astype(np.float32))
    pd.DataFrame({"frame": [0, 0, 1], "y": [20.0, 24.0, 30.0], "x": [20.0, 26.0, 15.0]}).to_csv(
        tmp_path / "sites.csv", index=False)
    return tmp_path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("napari-rvae "), err
    return err


def _bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_input_is_never_overwritten(work, capsys):
    movie = (work / "movie.npy").read_bytes()
    code, _, err = _run(capsys, "detect", work / "movie.npy", "-o", work / "movie.npy")
    assert code == 2 and "csv" in _one_line(err)
    assert (work / "movie.npy").read_bytes() == movie
    sites = (work / "sites.csv").read_bytes()
    code, _, err = _run(capsys, "detect", work / "movie.npy", "-o", work / "x.npy")
    assert code == 2 and ".csv" in _one_line(err) and not (work / "x.npy").exists()
    assert main(["train", str(work / "w.npy"), "-o", str(work / "m"), "--epochs", "1", *FAST]) == 0
    code, _, err = _run(capsys, "encode", work / "m", work / "movie.npy", "--sites", work / "sites.csv",
                        "-o", work / "sites.csv")
    assert code == 2 and "is an input" in _one_line(err) and "--overwrite" in err
    assert (work / "sites.csv").read_bytes() == sites
    # asked for: the table gains the latent columns in place
    code, _, _ = _run(capsys, "encode", work / "m", work / "movie.npy", "--sites", work / "sites.csv",
                      "-o", work / "sites.csv", "--overwrite")
    assert code == 0 and "z0" in pd.read_csv(work / "sites.csv").columns


def test_a_model_is_never_replaced_without_resume_or_overwrite(work, capsys):
    model = work / "m"
    assert main(["train", str(work / "w.npy"), "-o", str(model), "--epochs", "1", *FAST]) == 0
    before = _bytes(model)
    capsys.readouterr()
    code, _, err = _run(capsys, "train", work / "w.npy", "-o", model, "--epochs", "1", *FAST)
    assert code == 2 and "already holds a trained model" in _one_line(err) and "--resume" in err
    code, _, err = _run(capsys, "decode", model, "-o", model / "model.safetensors")
    assert code == 2 and ".png" in _one_line(err)
    code, _, err = _run(capsys, "decode", model, "-o", model / "manifold.png")
    assert code == 2 and "inside the model folder" in _one_line(err)
    code, _, err = _run(capsys, "train-segmenter", work / "movie.npy", work / "movie.npy", "-o", model)
    assert code == 2 and "already holds a trained model" in _one_line(err)
    assert _bytes(model) == before
    assert main(["train", str(work / "w.npy"), "-o", str(model), "--epochs", "1", "--overwrite", *FAST]) == 0
    assert len(json.loads((model / "model.json").read_text())["history"]) == 1


@pytest.mark.parametrize("argv,message", [
    (["sample", "ferroic", "-o", "{w}/s.npy"], ".npz"),
    (["decode", "{w}/m", "-o", "{w}/x.csv"], ".png or .npy"),
    (["chemistry-map", "{w}/m", "-o", "{w}/x.tif"], ".npz or .png"),
    (["bench", "-o", "{w}/x.csv"], ".json"),
    (["encode", "{w}/m", "{w}/w.npy", "-o", "{w}/lat.npy"], ".csv"),
    (["train", "{w}/w.npy", "-o", "{w}/sites.csv"], "is a file"),
    (["analyze", "{w}/movie.npy", "-o", "{w}"], "is inside it"),
    (["detect", "{w}/movie.npy", "-o", "{w}/movie.npy/x.csv"], "is a file, not a folder"),
    (["analyze", "{w}/movie.npy", "-o", "/proc/p"], "cannot write there"),
    (["detect", "{w}/movie.npy", "-o", "/proc/p/sites.csv"], "cannot write there"),
    (["demo", "--headless", "-o", "{w}/sites.csv"], "is a file"),
])
def test_wrong_kind_or_unwritable_outputs_are_refused_before_any_work(work, capsys, argv, message):
    argv = [a.format(w=work) for a in argv]
    start = time.perf_counter()
    code, out, err = _run(capsys, *argv)
    assert code == 2 and message in _one_line(err)
    assert out == ""  # nothing ran: no progress line, no "training" line
    assert time.perf_counter() - start < 30
    assert sorted(p.name for p in work.iterdir()) == ["movie.npy", "sites.csv", "w.npy"]


def test_read_only_folder_is_refused_up_front(work, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = work / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = _run(capsys, "detect", work / "movie.npy", "-o", locked / "s.csv")
        assert code == 2 and "cannot write there" in _one_line(err)
    finally:
        locked.chmod(0o755)


def test_a_folder_of_other_files_is_never_replaced_even_with_overwrite(work, capsys):
    other = work / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    for flags in ([], ["--overwrite"]):
        code, _, err = _run(capsys, "train", work / "w.npy", "-o", other, "--epochs", "1", *FAST, *flags)
        assert code == 2 and "other files" in _one_line(err)
    assert (other / "holiday.jpg").read_bytes() == b"precious"


def test_an_input_inside_the_output_folder_is_refused(work, capsys):
    project = work / "proj"
    project.mkdir()
    (project / "project.json").write_text("{}")
    np.save(project / "movie.npy", np.zeros((1, 32, 32), np.float32))
    code, _, err = _run(capsys, "analyze", project / "movie.npy", "-o", project, "--overwrite")
    assert code == 2 and "is inside it" in _one_line(err)
    assert (project / "movie.npy").exists()


def test_checks_leave_no_trace(work):
    """Validating creates missing parents to probe them, then removes them again."""
    args = type("A", (), {"output": work / "a" / "b" / "c.csv", "overwrite": False})()
    assert outputs.check_output(args, outputs.Output("file", (".csv",))) == work / "a" / "b" / "c.csv"
    assert not (work / "a").exists()


def test_os_errors_are_one_line_and_results_are_kept(work, capsys, monkeypatch):
    """A full disk while writing the table: exit 1, one line, the table kept beside the target."""
    import napari_rvae.io.sites as sites_module

    real = sites_module.write_sites
    target = work / "out" / "sites.csv"

    def full_disk(table, path):
        if os.path.abspath(path) == os.path.abspath(target):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(table, path)

    monkeypatch.setattr(sites_module, "write_sites", full_disk)
    code, _, err = _run(capsys, "detect", work / "movie.npy", "-o", target)
    assert code == 1 and "No space left on device" in _one_line(err)
    kept = [p for p in (work / "out").iterdir() if p.name.startswith("sites.csv.rescued-")]
    assert len(kept) == 1 and str(kept[0]) in err and len(pd.read_csv(kept[0])) > 0
    assert not target.exists()


def test_project_rerun_replaces_the_folder_consistently(work, capsys, monkeypatch):
    """A re-run with --overwrite leaves no figure of the previous run; without it the project stays."""
    from napari_rvae.analysis.project import load_project, save_project

    project = work / "project"
    fig = work / "a.png"
    fig.write_bytes(b"\x89PNG first")
    save_project(project, sites=pd.read_csv(work / "sites.csv"), figures={"first": fig, "second": fig})
    assert sorted(p.name for p in (project / "figures").iterdir()) == ["first.png", "second.png"]
    save_project(project, sites=pd.read_csv(work / "sites.csv"), figures={"only": fig})
    assert sorted(p.name for p in (project / "figures").iterdir()) == ["only.png"]
    assert [p.name for p in load_project(project).figures] == ["only.png"]
    assert not [p for p in work.iterdir() if p.name.startswith(".project.")]  # no staging left behind
    code, _, err = _run(capsys, "analyze", work / "movie.npy", "-o", project, "--epochs", "1")
    assert code == 2 and "already holds a project" in _one_line(err) and "--overwrite" in err


def test_folder_modes_follow_the_umask(tmp_path, monkeypatch):
    """Weights, optimizer state and JSON get the same mode, the user's usual one (0666 & ~umask)."""
    import napari_rvae.io.files as files
    import napari_rvae.io.folders as folders

    for umask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        monkeypatch.setattr(files, "_UMASK", umask)
        monkeypatch.setattr(folders, "_UMASK", umask)
        folder = tmp_path / f"m{umask:o}"
        for _ in range(2):  # a new folder, then a replaced one
            save_model_files(folder, {"w": torch.zeros(3)}, {"kind": "test"},
                             extra={"training.safetensors": {"s": torch.ones(2)}})
            modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
            assert modes == dict.fromkeys(("model.json", "model.safetensors", "training.safetensors"), file_mode)
            assert folder.stat().st_mode & 0o777 == dir_mode


def test_saving_never_replaces_a_folder_of_other_files(tmp_path):
    """What a dock's Save dialog may pick: an existing folder of the user's files is refused, not replaced."""
    from napari_rvae.analysis.project import save_project

    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="holds other files"):
        save_model_files(docs, {"w": torch.zeros(3)}, {"kind": "vae"})
    with pytest.raises(ValueError, match="holds other files"):
        save_project(docs, record={"a": 1})
    assert sorted(p.name for p in docs.iterdir()) == ["thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]
    empty = tmp_path / "empty"
    empty.mkdir()
    save_model_files(empty, {"w": torch.zeros(3)}, {"kind": "vae"})  # an empty folder is fine
    assert (empty / "model.json").exists()
