"""The maintainer's training of the shipped atom finder (scripts/atom_finder, not installed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "atom_finder"


def _load(name):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"atom_finder_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scenes_label_every_visible_atom_and_cover_the_kinds():
    data = _load("training_data")
    rng = np.random.default_rng(5)
    kinds, inverted = set(), 0
    for _ in range(40):
        scene = data.make_scene(rng, (96, 96))
        kinds.add(scene["kind"])
        inverted += scene["inverted"]
        assert scene["image"].dtype == np.float32 and 0 <= scene["image"].min() and scene["image"].max() <= 1
        pos = np.rint(scene["positions"]).astype(int)
        inside = (pos >= 0).all(1) & (pos[:, 0] < 96) & (pos[:, 1] < 96)
        assert (scene["labels"][pos[inside, 0], pos[inside, 1]] == 2).all()
    assert kinds >= {"graphene", "perovskite", "square"} and inverted >= 1


def test_a_scene_at_the_canonical_spacing_has_that_spacing():
    data = _load("training_data")
    from scipy.spatial import cKDTree

    scene = data.make_scene(np.random.default_rng(0), (160, 160), kind="square", spacing=10.0)
    d, _ = cKDTree(scene["positions"]).query(scene["positions"], k=2)
    assert abs(np.median(d[:, 1]) - 10.0) < 1.0


@pytest.mark.slow
def test_training_script_smoke(tmp_path):
    train = _load("train")
    from napari_rvae.segment import load_segmenter

    out = tmp_path / "atoms"
    assert train.main(["-o", str(out), "--minutes", "0.02", "--images", "4", "--steps", "2", "--max-epochs", "1",
                       "--crop", "64", "--batch", "2"]) == 0
    _, config = load_segmenter(out)
    assert config["canonical_spacing_px"] == 10.0 and len(config["training"]["history"]) == 1
    assert {f["frames"] for f in config["default_record"]["heldout"]["frames"]} == {"low-dose graphene", "ferroic A+B"}
