"""Segmenter validation on held-out painted strokes: the split, IoU per class, the trust note."""

import numpy as np
import pytest

from napari_rvae.segment.validation import confusion, quality, split_strokes, strokes


def painted(n_strokes=(6, 6), size=64):
    """Background (1) and atom (2) strokes: short horizontal lines on separate rows."""
    labels = np.zeros((1, size, size), np.int64)
    for value, n in zip((1, 2), n_strokes):
        for k in range(n):
            row = 4 + 8 * k + (value - 1) * 4
            labels[0, row, 5:25] = value
    return labels


def test_whole_strokes_are_held_out_per_class():
    labels = painted()
    train, val, held = split_strokes(labels, 0.3, np.random.default_rng(0))
    assert np.array_equal((train > 0) | (val > 0), labels > 0) and not ((train > 0) & (val > 0)).any()
    for value in (1, 2):
        assert held[value]["strokes"] >= 1 and held[value]["painted_strokes"] == 6
        # whole strokes: every held-out stroke is complete in val and absent from train
        for _, v, pixels in strokes(val):
            if v == value:
                assert len(pixels) == 20
    # a class painted with one stroke keeps it for training and cannot be validated
    one = painted((6, 1))
    train, val, held = split_strokes(one, 0.3)
    assert held[2]["strokes"] == 0 and (train == 2).sum() == 20


def test_iou_per_class_and_the_trust_note():
    truth = np.array([1, 1, 1, 1, 2, 2, 0, 0])
    predicted = np.array([1, 1, 1, 2, 1, 2, 2, 1])  # unpainted pixels (0) are not counted
    m = confusion(predicted, truth, 2)
    assert m.tolist() == [[3, 1], [1, 1]]
    report = quality(m, ["background", "atom"], min_pixels=1)
    assert report["iou"] == pytest.approx([3 / 5, 1 / 3])
    assert report["accuracy"] == pytest.approx(4 / 6) and report["trusted"]
    # the old failure: only background held out looked perfect; now it says why it cannot be trusted
    only_background = confusion(np.ones(10, int), np.ones(10, int), 2)
    report = quality(only_background, ["background", "atom"], held={1: {"painted_strokes": 3}, 2: {"painted_strokes": 1}})
    assert not report["trusted"] and np.isnan(report["iou"][1])
    assert "atom: nothing held out (only one stroke painted)" in report["note"]
    small = quality(np.array([[40, 0], [0, 5]]), ["background", "atom"])
    assert not small["trusted"] and "atom: 5 held-out pixels" in small["note"]


def test_report_lines_name_every_class_and_the_note():
    from napari_rvae.segment.validation import report_lines

    report = quality(np.array([[40, 2], [3, 5]]), ["background", "atom"])
    text = "\n".join(report_lines(report, ["background", "atom"]))
    assert "background 42 px" in text and "atom 8 px" in text
    assert "atom 0.50" in text  # IoU of atom: 5 / (8 + 7 − 5)
    assert "too small to trust" in text
