"""Model and project folders are replaced as a whole: killed at any instant, or out of disk,
the path holds the old folder or the new one (or recovers to one at the next load), never a mix."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_rvae.io.files import load_model_files, save_model_files

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _save(folder, generation: int, size: int = 1000):
    """A model whose weights and JSON both carry the generation: a mix is detectable."""
    save_model_files(folder, {"w": torch.full((size, size), float(generation))}, {"kind": "test", "generation": generation},
                     extra={"training.safetensors": {"g": torch.tensor([float(generation)])}})


def _generation(folder) -> int:
    tensors, config = load_model_files(folder, kind="test")
    weights = int(tensors["w"][0, 0])
    assert weights == config["generation"] == int(tensors["w"][-1, -1]), "weights and model.json of different saves"
    from safetensors.torch import load_file

    assert int(load_file(Path(folder) / "training.safetensors")["g"][0]) == weights
    return weights


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_save_replaces_and_leaves_nothing_beside(tmp_path):
    folder = tmp_path / "model"
    _save(folder, 1, size=4)
    (folder / "stale.txt").write_text("from an older version")
    _save(folder, 2, size=4)
    assert _generation(folder) == 2 and not (folder / "stale.txt").exists()
    assert _siblings(folder) == []


CRASH_CHILD = textwrap.dedent("""
    import os, shutil, sys, torch
    sys.path.insert(0, {src!r})
    import napari_rvae.io.folders as folders
    from napari_rvae.io.files import save_model_files
    folder, crash, exchange = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if not exchange:
        folders._exchange = lambda a, b: False
    real_rename, real_exchange, real_rmtree = os.rename, folders._exchange, shutil.rmtree
    count = [0]
    def rename(a, b):
        real_rename(a, b)
        count[0] += 1
        if (crash, count[0]) in (("after_ready", 1), ("mid_swap", 2)):
            os._exit(9)  # dies like SIGKILL: no handler, no cleanup
    def flush(stage):
        if crash == "while_writing":
            os._exit(9)
    def rmtree(path, *args, **kwargs):
        if crash == "after_swap":
            os._exit(9)
        return real_rmtree(path, *args, **kwargs)
    folders.os.rename, folders._flush_tree, folders.shutil.rmtree = rename, flush, rmtree
    save_model_files(folder, {{"w": torch.full((4, 4), 2.0)}}, {{"kind": "test", "generation": 2}},
                     extra={{"training.safetensors": {{"g": torch.tensor([2.0])}}}})
    os._exit(0)
""")


@pytest.mark.parametrize("crash,expected,exchange", [
    ("while_writing", 1, True), ("after_ready", 2, True), ("after_swap", 2, True),  # renameat2: no middle
    ("while_writing", 1, False), ("after_ready", 2, False), ("mid_swap", 2, False), ("after_swap", 2, False),
])
def test_recovery_from_every_crash_point(tmp_path, crash, expected, exchange):
    """A writer dies (os._exit, like SIGKILL) at each step of the swap, with renameat2 and with
    the two-rename fallback; the next load finds one complete generation and cleans up."""
    folder = tmp_path / "model"
    _save(folder, 1, size=4)
    script = tmp_path / "crash.py"
    script.write_text(CRASH_CHILD.format(src=SRC))
    done = subprocess.run([sys.executable, str(script), str(folder), crash, "1" if exchange else "0"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 9, done.stderr[-2000:]
    assert _siblings(folder)  # the crash left something beside the folder
    if crash == "mid_swap":
        assert not folder.exists()  # the only instant the path is empty: the next load recovers it
    assert _generation(folder) == expected
    assert _siblings(folder) == []


def test_a_running_writer_is_left_alone(tmp_path):
    """Staging folders of a live process (another save in progress) are not touched by a load."""
    folder = tmp_path / "model"
    _save(folder, 1, size=4)
    busy = tmp_path / f".model.new-{os.getppid()}-abc"
    busy.mkdir()
    _generation(folder)
    assert busy.exists()


KILL_CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {src!r})
    from napari_rvae.io.files import save_model_files
    folder, start = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    g = start
    while True:
        g += 1
        save_model_files(folder, {{"w": torch.full((1000, 1000), float(g))}}, {{"kind": "test", "generation": g}},
                         extra={{"training.safetensors": {{"g": torch.tensor([float(g)])}}}})
""")


@pytest.mark.parametrize("exchange", [True, False])
def test_sigkill_at_random_points_of_a_save(tmp_path, exchange):
    """A child saves 4 MB models in a loop; SIGKILL at random instants. Every time, the next load
    finds one complete generation (never weights of one save beside the JSON of another), no
    older than the last one known saved, and no leftovers once loaded."""
    folder = tmp_path / "model"
    _save(folder, 0)
    script = tmp_path / "child.py"
    code = KILL_CHILD.format(src=SRC)
    if not exchange:
        code = code.replace("from napari_rvae.io.files", "import napari_rvae.io.folders as f; f._exchange = lambda a, b: "
                            "False\nfrom napari_rvae.io.files")
    script.write_text(code)
    rng = np.random.default_rng(7 + exchange)
    generations = []
    for _ in range(10):
        start = _generation(folder)
        child = subprocess.Popen([sys.executable, str(script), str(folder), str(start)], stdout=subprocess.PIPE,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.02, 0.6)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        generation = _generation(folder)
        assert generation >= start
        assert _siblings(folder) == [], _siblings(folder)
        generations.append(generation - start)
    assert max(generations) >= 1  # the children did save (the kills landed at varied points)


def test_full_disk_keeps_the_old_model(tmp_path, monkeypatch):
    """ENOSPC while writing the weights (injected): the old model stays, no staging is left, one line."""
    folder = tmp_path / "model"
    _save(folder, 1, size=4)
    import safetensors.torch as st

    real = st.save_file

    def full(tensors, path, *args, **kwargs):
        Path(path).write_bytes(b"\0" * 10)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(st, "save_file", full)
    with pytest.raises(OSError, match="No space left"):
        _save(folder, 2, size=4)
    monkeypatch.setattr(st, "save_file", real)
    assert _generation(folder) == 1 and _siblings(folder) == []


TMPFS_CHILD = textwrap.dedent("""
    import subprocess, sys, torch
    sys.path.insert(0, {src!r})
    disk = sys.argv[1]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "none", disk], check=True)
    from napari_rvae.io.files import load_model_files, save_model_files
    folder = disk + "/model"
    w = lambda g: {{"w": torch.full((300, 300), float(g))}}  # 360 kB: one fits, two do not
    save_model_files(folder, w(1), {{"kind": "test", "generation": 1}})
    try:
        save_model_files(folder, w(2), {{"kind": "test", "generation": 2}})
        print("saved")
    except OSError as err:
        print("refused", err.errno)
    tensors, config = load_model_files(folder, kind="test")
    import os
    print(int(tensors["w"][0, 0]), config["generation"], sorted(os.listdir(disk)))
""")


def test_real_full_disk_on_a_small_tmpfs(tmp_path):
    """The same on a real 600 kB tmpfs (in a private mount namespace; skipped where not allowed)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "tmpfs_child.py"
    script.write_text(TMPFS_CHILD.format(src=SRC))
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, str(script), str(disk)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"refused {errno.ENOSPC}"
    assert lines[1] == "1 1 ['model']"  # the old model, whole, and nothing else on the disk
