"""mIoU / per-class IoU / streaming confusion matrix and ECE on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.metrics import (
    CalibrationAccumulator,
    ConfusionMatrixAccumulator,
    confusion_matrix,
    ece,
    miou,
    per_class_iou,
)

GT = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_miou_hand_computed_with_void_and_absent_class():
    # void pixel (1,2) ignored. class 0: TP 1, FN 1 (pred 1) → 1/2
    # class 1: TP 2, FP 1 (pixel (0,1)) → 2/3; class 2: TP 1 → 1
    assert per_class_iou(PRED, GT, 3).tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert miou(PRED, GT, 3) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    # a 4th class absent from both maps is NaN and does not drag the mean down
    iou4 = per_class_iou(PRED, GT, 4)
    assert np.isnan(iou4[3]) and miou(PRED, GT, 4) == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    cm = confusion_matrix(PRED, GT, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]  # rows = ground truth


def test_streaming_confusion_matrix_pools_pixels_over_images():
    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 5, (8, 9)) for _ in range(3)]
    preds = [np.where(rng.random(g.shape) < 0.7, g, rng.integers(0, 5, g.shape)) for g in gts]
    acc = ConfusionMatrixAccumulator(5)
    for p, g in zip(preds, gts, strict=True):
        acc.update(p, g)
    assert acc.miou() == pytest.approx(miou(preds, gts, 5))
    assert acc.pixel_accuracy() == pytest.approx(
        np.mean(np.concatenate(preds) == np.concatenate(gts))
    )
    # pooled, not averaged per image
    per_image = np.mean([miou(p, g, 5) for p, g in zip(preds, gts, strict=True)])
    assert acc.miou() != pytest.approx(per_image, abs=1e-12)


def test_semantic_input_errors():
    with pytest.raises(ValueError, match="outside"):
        miou(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="outside"):
        miou(np.array([0, 1]), np.array([0, 7]), 3)
    with pytest.raises(ValueError, match="integer"):
        miou(np.array([0.0, 1.0]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="no labelled"):
        miou(np.array([0, 1]), np.array([255, 255]), 3)
    with pytest.raises(ValueError, match="shape"):
        miou(np.zeros((2, 2), int), np.zeros((2, 3), int), 3)


def test_ece_hand_computed():
    # 15 bins of width 1/15: 0.95 → bin 14, 0.55 → bin 8, 0.15 → bin 2
    # bin 14: n 2, conf .95, acc .5 → |.45|; bin 8: |.55 − 1| = .45; bin 2: |.15 − 0| = .15
    # ECE = 2/4·.45 + 1/4·.45 + 1/4·.15 = .225 + .1125 + .0375 = .375
    conf = np.array([0.95, 0.95, 0.55, 0.15])
    correct = np.array([True, False, True, False])
    assert ece(conf, correct) == pytest.approx(0.375)
    # a perfectly calibrated bin contributes nothing: conf 1.0 (last bin, closed) and correct
    assert ece(np.array([1.0, 1.0]), np.array([1, 1])) == pytest.approx(0.0)


def test_ece_streaming_matches_loop_reference():
    rng = np.random.default_rng(5)
    conf = rng.random(50_000)
    correct = rng.random(50_000) < conf**0.5
    n_bins = 10
    ref = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        sel = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if sel.any():
            ref += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    acc = CalibrationAccumulator(n_bins)
    acc.update([conf[:20_000], conf[20_000:]], [correct[:20_000], correct[20_000:]])
    assert acc.compute() == pytest.approx(ref, abs=1e-12)
    assert ece(conf, correct, n_bins) == pytest.approx(ref, abs=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ece(np.array([1.2]), np.array([True]))
