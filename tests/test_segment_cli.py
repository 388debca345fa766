"""``napari-rvae train-segmenter``: trains from files, saves a loadable model, refuses bad input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_rvae.cli import main
from napari_rvae.segment import load_segmenter


@pytest.fixture()
def painted(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.1, (2, 64, 64)).astype(np.float32)
    image[:, 20:40, 20:40] += 1.0
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[:, 25:35, 28:32] = 2
    labels[:, 2:10, 2:60] = 1
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path


def test_train_segmenter_writes_model(painted, capsys):
    out = painted / "model"
    rc = main(["train-segmenter", str(painted / "image.npy"), str(painted / "labels.npy"), "-o", str(out),
               "--epochs", "2", "--crop", "32", "--batch", "2", "--steps", "2", "--filters", "4", "--depth", "2"])
    assert rc == 0
    model, config = load_segmenter(out)
    assert model.config.n_classes == 2 and len(config["training"]["history"]) == 2
    assert "epoch   2" in capsys.readouterr().out
    # fine-tuning that model on labels with a third class is refused with a clear message
    labels = np.load(painted / "labels.npy")
    labels[:, 50:55, 50:55] = 3
    np.save(painted / "labels3.npy", labels)
    rc = main(["train-segmenter", str(painted / "image.npy"), str(painted / "labels3.npy"), "-o",
               str(painted / "m3"), "--fine-tune", str(out), "--crop", "32"])
    assert rc == 2
    assert "predicts 2 classes" in capsys.readouterr().err


def test_train_segmenter_bad_input_exits_2(painted, capsys):
    np.save(painted / "short.npy", np.zeros((2, 64, 60), np.uint8))
    rc = main(["train-segmenter", str(painted / "image.npy"), str(painted / "short.npy"), "-o", str(painted / "m")])
    assert rc == 2 and "does not match" in capsys.readouterr().err
    rc = main(["train-segmenter", str(painted / "nope.npy"), str(painted / "short.npy"), "-o", str(painted / "m")])
    assert rc == 2 and "not found" in capsys.readouterr().err
