"""Training from a few simulated brush strokes (issue 5: ~20 strokes on one domain-movie frame → walls
on the other frames), plus the stroke simulator and the thin-structure IoU it is scored with."""

import numpy as np
import pytest
import torch

from napari_rvae.segment.strokes import simulate_strokes, thin_iou


def _walls_image():
    truth = np.ones((96, 96), np.int64)
    for k in range(-60, 60, 24):  # diagonal walls 2 px wide
        yy, xx = np.mgrid[0:96, 0:96]
        truth[(np.abs(yy - xx - k) <= 1) & (yy - xx - k >= 0)] = 2
    truth[40:48, 70:78] = 3
    return truth


def test_strokes_take_truth_labels_and_follow_walls():
    truth = _walls_image()
    painted = simulate_strokes(truth, {2: 6, 1: 4, 3: 2}, width=3, seed=1)
    m = painted > 0
    assert np.array_equal(painted[m], truth[m])  # labels come from the truth under the brush
    assert set(np.unique(painted[m])) == {1, 2, 3}
    assert m.sum() < 0.25 * truth.size  # sparse, like strokes
    # wall strokes follow the wall: a 3-px brush on a 2-px wall puts most of the walls' pixels on walls,
    # so painted wall pixels form long runs, not dots
    from scipy import ndimage
    lab, n = ndimage.label(painted == 2, np.ones((3, 3)))
    sizes = ndimage.sum(painted == 2, lab, range(1, n + 1))
    assert sizes.max() >= 15


def test_strokes_reject_missing_class():
    with pytest.raises(ValueError, match="label 4"):
        simulate_strokes(_walls_image(), {4: 1})


def test_thin_iou_tolerance():
    truth = np.zeros((1, 40, 40), bool)
    truth[0, 10:30, 20] = True
    assert thin_iou(truth, truth)["strict"] == 1.0
    shifted = np.roll(truth, 1, axis=2)
    s = thin_iou(shifted, truth, tolerance=1)
    assert s["strict"] == 0.0 and s["tolerant"] == 1.0
    assert thin_iou(shifted, truth, tolerance=0)["tolerant"] == 0.0
    thick = truth | shifted  # twice as wide as the truth: strict IoU 0.5, within 1 px everywhere
    s = thin_iou(thick, truth, tolerance=1)
    assert s["strict"] == pytest.approx(0.5) and s["tolerant"] == 1.0


@pytest.mark.slow
def test_walls_from_twenty_strokes_on_one_domain_movie_frame():
    """Issue 5 target: ~20 painted strokes on one frame → wall IoU ≥ 0.8 on the other frames (strict, no tolerance)."""
    from napari_rvae.segment import SegmenterTrainer, predict
    from napari_rvae.segment.strokes import STROKE_RECIPE, stroke_training_settings
    from napari_rvae.synth import make_sample

    torch.set_num_threads(2)
    sample = make_sample("domain-movie", seed=7)  # the recipe's epochs were chosen on seeds 0 and 2
    frames, truth = sample["data"], sample["labels"].astype(np.int64)
    t_paint = 10
    labels = np.zeros_like(truth)
    labels[t_paint] = simulate_strokes(truth[t_paint], STROKE_RECIPE, width=3, regions=sample["orientation"][t_paint],
                                      seed=1)
    assert (labels > 0).sum() < 0.01 * truth[0].size
    config, settings = stroke_training_settings(n_classes=3)
    trainer = SegmenterTrainer(frames, labels, config=config, settings=settings)
    for _ in trainer.run():
        pass
    held_out = [0, 8, 20, 26]  # frames with few and with many walls (the painted frame is 10)
    walls = predict(trainer.model, frames[held_out]).argmax(1) + 1 == 2
    score = thin_iou(walls, truth[held_out] == 2, tolerance=1)
    assert score["strict"] >= 0.8, score
    assert score["tolerant"] >= 0.9, score
    for i, t in enumerate(held_out):
        assert thin_iou(walls[i], truth[t] == 2, tolerance=0)["strict"] >= 0.75, t
    # int8 inference of this stroke-trained 3-class model meets the same bars (calibrated on these frames)
    walls8 = predict(trainer.model, frames[held_out], precision="int8").argmax(1) + 1 == 2
    score8 = thin_iou(walls8, truth[held_out] == 2, tolerance=1)
    assert score8["strict"] >= 0.8 and score8["tolerant"] >= 0.9, score8
    assert (walls8 != walls).mean() <= 0.005  # int8 and float32 disagree on at most 0.5 % of the pixels


def test_domain_strokes_visit_every_region():
    truth = np.ones((64, 64), np.int64)
    regions = np.zeros((64, 64), np.int64)
    regions[:, 48:] = 1  # a small second kind of domain (a quarter of the frame)
    painted = simulate_strokes(truth, {1: 4}, width=3, length=(6, 8), regions=regions, seed=0)
    # strokes alternate between the kinds: at least one starts inside the small region
    assert (painted[:, 50:] > 0).any() and (painted[:, :44] > 0).any()
    with pytest.raises(ValueError, match="regions"):
        simulate_strokes(truth, {1: 1}, regions=regions[:10])
