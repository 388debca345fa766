"""U-Net and sparse-label training: loss masking, learning from strokes, stop/continue, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_rvae.segment import (
    Augment,
    SegmenterTrainer,
    TrainSettings,
    UNet,
    UNetConfig,
    load_segmenter,
    predict,
    save_segmenter,
    sparse_cross_entropy,
)

TINY = UNetConfig(n_classes=2, filters=4, depth=2, convs_per_level=[1, 1], dilations=[2, 4, 6])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def disks_scene(seed: int, shape=(128, 128)):
    """Bright blobs (label 2) on a noisy, sloped background (label 1): image and dense truth."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(8, np.array(shape) - 8, (14, 2))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    dist = np.min(np.hypot(yy[..., None] - centres[:, 0], xx[..., None] - centres[:, 1]), axis=-1)
    truth = np.where(dist <= 5.0, 2, 1).astype(np.int64)
    image = ndimage.gaussian_filter((truth == 2).astype(float), 0.7)
    image = image + 0.2 * xx / shape[1] + rng.normal(0, 0.08, shape)
    return image.astype(np.float32), truth, centres


def strokes_from(truth: np.ndarray, centres: np.ndarray, rng) -> np.ndarray:
    """Sparse 'painted' labels: short horizontal strokes through some blobs and the background."""
    labels = np.zeros_like(truth)
    for cy, cx in centres[:8]:
        y, x = int(cy), int(cx)
        labels[y, x - 2 : x + 3] = 2
    for _ in range(12):
        y, x = rng.integers(0, truth.shape[0]), rng.integers(0, truth.shape[1] - 20)
        seg = truth[y, x : x + 20] == 1
        labels[y, x : x + 20][seg] = 1
    return labels


def test_config_json_round_trip_and_validation():
    cfg = UNetConfig(n_classes=3, filters=6, depth=2, convs_per_level=[1, 2], dropout=0.1)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="convs_per_level"):
        UNetConfig(depth=3, convs_per_level=[1, 1])
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({"n_classes": 2, "bogus": 1})
    with pytest.raises(ValueError, match="n_classes"):
        UNetConfig(n_classes=1)


def test_output_shape_and_parallel_vs_cascaded_pyramid():
    for pyramid in ("parallel", "cascaded"):
        net = UNet(UNetConfig(n_classes=3, filters=4, depth=3, convs_per_level=[1, 1, 1], pyramid=pyramid)).eval()
        assert net(torch.zeros(2, 1, 48, 64)).shape == (2, 3, 48, 64)
        assert [m.dilation for b in net.bottleneck.branches for m in b if isinstance(m, torch.nn.Conv2d)] == [
            (2, 2), (4, 4), (6, 6)]


def test_atomai_size_network_matches_its_parameter_count():
    from napari_rvae.segment.unet import atomai_equivalent_config, count_parameters

    # AtomAI's default Unet (nb_classes=1) has 594 033 parameters, 800 of them biases of convolutions
    # followed by BatchNorm (redundant, absent here); ours has one more output channel (+17).
    assert count_parameters(UNet(atomai_equivalent_config())) == 594_033 - 800 + 17


def test_loss_ignores_unlabelled_pixels():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, (2, 16, 16)))  # 0 unlabelled, 1..3 classes
    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    loss = sparse_cross_entropy(logits, labels)
    loss.backward()
    unlabelled = (labels == 0).unsqueeze(1).expand_as(logits)
    assert torch.all(logits.grad[unlabelled] == 0)
    assert torch.any(logits.grad[~unlabelled] != 0)
    # anything at unlabelled pixels (predictions there) leaves the loss unchanged
    changed = logits.detach().clone()
    changed[unlabelled] = torch.randn(int(unlabelled.sum())) * 10
    assert torch.isclose(sparse_cross_entropy(changed, labels), loss.detach())
    # and equals plain cross-entropy over the labelled pixels alone
    m = labels > 0
    manual = torch.nn.functional.cross_entropy(logits.detach().permute(0, 2, 3, 1)[m], labels[m] - 1)
    assert torch.isclose(manual, loss.detach(), atol=1e-6)
    assert sparse_cross_entropy(logits.detach(), torch.zeros_like(labels)) == 0


def test_training_from_sparse_strokes_beats_chance():
    image, truth, centres = disks_scene(1)
    labels = strokes_from(truth, centres, np.random.default_rng(1))
    assert (labels > 0).mean() < 0.05  # genuinely sparse
    settings = TrainSettings(epochs=12, crop=32, batch=8, steps_per_epoch=12, lr=3e-3, seed=0,
                             val_fraction=0.2, augment=Augment(zoom=(0.9, 1.1), noise_poisson=None))
    trainer = SegmenterTrainer(image, labels, config=TINY, settings=settings)
    history = list(trainer.run())
    assert len(history) == 12 and history[-1]["epoch"] == 12
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # score on a different scene with dense truth: IoU of the blob class far above chance
    test_image, test_truth, _ = disks_scene(7)
    pred = predict(trainer.model, test_image)[0].argmax(0) + 1
    iou = np.sum((pred == 2) & (test_truth == 2)) / np.sum((pred == 2) | (test_truth == 2))
    chance = (test_truth == 2).mean()  # IoU of predicting the class everywhere
    assert iou > 0.6 > 3 * chance, (iou, chance)
    # a snapshot is frozen: further training does not change it
    snap = trainer.snapshot()
    before = {k: v.clone() for k, v in snap.state_dict().items()}
    list(trainer.run(1))
    assert all(torch.equal(before[k], v) for k, v in snap.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_stop_flag_ends_within_a_batch_and_continue_resumes():
    image, truth, centres = disks_scene(2, (64, 64))
    labels = strokes_from(truth, centres, np.random.default_rng(2))
    trainer = SegmenterTrainer(image, labels, config=TINY,
                               settings=TrainSettings(epochs=5, crop=32, batch=2, steps_per_epoch=50))
    seen = []
    for stats in trainer.run():
        seen.append(stats)
        trainer.stop()
    assert len(seen) == 1 and trainer.state.status == "stopped"
    # stop requested while an epoch runs: the epoch ends early, flagged as stopped
    calls = {"n": 0}
    original = trainer.optimizer.step

    def step_and_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            trainer.stop()
        return original(*a, **k)

    trainer.optimizer.step = step_and_stop
    more = list(trainer.run(5))
    assert len(more) == 1 and more[0]["stopped"] and calls["n"] == 3 and more[0]["epoch"] == 2
    trainer.optimizer.step = original
    assert [s["epoch"] for s in trainer.run(2)] == [3, 4]
    assert trainer.state.status == "finished" and len(trainer.state.history) == 4


def test_save_load_round_trip_exact(tmp_path):
    torch.manual_seed(0)
    model = UNet(UNetConfig(n_classes=3, filters=4, depth=2, convs_per_level=[1, 1]))
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model.train()(torch.randn(4, 1, 32, 32))
    model.eval()
    save_segmenter(tmp_path / "m", model, training={"history": [{"epoch": 1}]})
    loaded, config = load_segmenter(tmp_path / "m")
    assert config["kind"] == "segmenter" and config["training"]["history"][0]["epoch"] == 1
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(1, 1, 40, 36)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_wrong_class_count_model_is_refused(tmp_path):
    image, truth, centres = disks_scene(3, (64, 64))
    labels = strokes_from(truth, centres, np.random.default_rng(3))
    labels[0, :5] = 3  # a third class painted
    two_class = UNet(TINY)
    save_segmenter(tmp_path / "m", two_class)
    loaded, _ = load_segmenter(tmp_path / "m")
    with pytest.raises(ValueError, match="predicts 2 classes.*value 3"):
        SegmenterTrainer(image, labels, model=loaded, settings=TrainSettings(crop=32))
    with pytest.raises(ValueError, match="'segmenter'"):
        from napari_rvae.io.files import save_model_files

        save_model_files(tmp_path / "vae", {"w": torch.zeros(1)}, {"kind": "vae"})
        load_segmenter(tmp_path / "vae")


def test_fine_tuning_keeps_architecture_and_changes_weights():
    image, truth, centres = disks_scene(4, (64, 64))
    labels = strokes_from(truth, centres, np.random.default_rng(4))
    base = UNet(TINY)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    trainer = SegmenterTrainer(image, labels, model=base, settings=TrainSettings(epochs=1, crop=32, batch=2,
                                                                                 steps_per_epoch=2))
    list(trainer.run())
    assert trainer.model is base
    assert any(not torch.equal(before[k], v) for k, v in base.state_dict().items())


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((32, 32)), np.zeros((32, 32), int), "no labelled pixel"),
        (np.zeros((32, 32)), np.ones((32, 30), int), "does not match"),
        (np.zeros((32, 32)), -np.ones((32, 32), int), ">= 0"),
        (np.zeros((2, 2, 32, 32)), np.ones((2, 2, 32, 32), int), r"\(T, Y, X\)"),
    ],
)
def test_bad_training_inputs(images, labels, match):
    with pytest.raises(ValueError, match=match):
        SegmenterTrainer(images, labels, config=TINY)


def test_constant_frame_is_refused_for_training():
    labels = np.ones((32, 32), int)
    labels[:4] = 2
    with pytest.raises(ValueError, match="frame 0 is constant"):
        SegmenterTrainer(np.full((32, 32), 3.0), labels, config=TINY)
