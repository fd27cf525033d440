"""SMIYC component metrics on constructed masks (perfect hit, miss, split detection, false
positive, partial overlap, one prediction over two objects), void and size-filter rules, and a
brute-force cross-check of the sIoU / PPV formulas."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label as sk_label

from pixood_ros.metrics import component_metrics, frame_components
from pixood_ros.metrics.components import ComponentMetricAccumulator


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """40x60 labels + prediction: A hit perfectly, B missed, C split in two, D half covered,
    one false-positive blob on the background."""
    labels = np.zeros((40, 60), np.uint8)
    pred = np.zeros((40, 60), bool)
    labels[5:11, 5:11] = 1  # A, 36 px
    pred[5:11, 5:11] = True
    labels[5:11, 30:36] = 1  # B, 36 px, missed
    labels[25:31, 5:17] = 1  # C, 72 px, predicted as cols 5..9 and 11..16 (gap at col 10)
    pred[25:31, 5:10] = True  # 30 px
    pred[25:31, 11:17] = True  # 36 px
    labels[18:22, 45:49] = 1  # D, 16 px
    pred[18:22, 45:54] = True  # 36 px: 16 on D + 20 on background
    pred[30:34, 40:44] = True  # false positive, 16 px on background
    return labels, pred


def test_constructed_scene_hand_computed():
    labels, pred = _scene()
    frame = frame_components(pred, labels)
    # sIoU: A = 36/36; B = 0; C = 66/72 (gap column missed); D = 16/(16 + 20) = 4/9
    assert sorted(frame.siou.tolist()) == pytest.approx(sorted([1.0, 0.0, 66 / 72, 16 / 36]))
    # PPV: A 1, C-left 1, C-right 1, D-pred 16/36, false positive 0
    assert sorted(frame.ppv.tolist()) == pytest.approx(sorted([1, 1, 1, 16 / 36, 0]))

    acc = ComponentMetricAccumulator(threshold=0.5, min_pred_size=0, min_gt_size=0)
    acc.update(pred.astype(np.float32), labels)
    m = acc.compute()
    assert m["siou"] == pytest.approx((1 + 0 + 66 / 72 + 16 / 36) / 4)
    assert m["ppv"] == pytest.approx((3 + 16 / 36) / 5)
    assert (m["n_gt_components"], m["n_pred_components"]) == (4, 5)
    # τ ∈ {0.25, .30, .35, .40}: TP = A, C, D = 3; FN = B; FP = blob → F1 = 6/(6+1+1) = 0.75
    assert (m["tp_25"], m["fn_25"], m["fp_25"], m["f1_25"]) == (3, 1, 1, pytest.approx(0.75))
    # τ >= 0.45 (7 values): D fails (4/9 < τ) and its prediction becomes FP too:
    # TP = 2, FN = 2, FP = 2 → F1 = 4/8
    assert (m["tp_50"], m["fn_50"], m["fp_50"], m["f1_50"]) == (2, 2, 2, pytest.approx(0.5))
    assert m["f1_75"] == pytest.approx(0.5)
    assert m["f1_mean"] == pytest.approx((4 * 0.75 + 7 * 0.5) / 11)


def test_one_prediction_over_two_objects_is_not_penalised_for_the_other_object():
    labels = np.zeros((10, 20), np.uint8)
    labels[2:6, 2:6] = 1  # E, 16 px
    labels[2:6, 8:12] = 1  # F, 16 px (2-column gap of background at cols 6..7)
    pred = np.zeros_like(labels, bool)
    pred[2:6, 2:12] = True  # 40 px: E + F + 8 background
    frame = frame_components(pred, labels)
    # sIoU(E) = 16 / (40 + 16 − 16 − 16 [F's pixels]) = 16/24 (plain IoU would be 16/40)
    assert frame.siou.tolist() == pytest.approx([2 / 3, 2 / 3])
    assert frame.ppv.tolist() == pytest.approx([32 / 40])


def test_void_clears_predictions_and_leaves_the_region_of_interest():
    labels, pred = _scene()
    labels[:, 56:] = 255
    pred[0:8, 55:60] = True  # blob mostly in void: only its column 55 (8 px) stays
    pred[35:40, 57:60] = True  # entirely in void: disappears
    frame = frame_components(pred, labels)
    assert len(frame.ppv) == 6  # the 5 of the scene + the clipped blob
    assert sorted(frame.pred_sizes.tolist())[:2] == [8, 16]


def test_size_filters_follow_the_track_rules():
    labels = np.zeros((60, 80), np.uint8)
    labels[5:8, 5:8] = 1  # 9 px GT: below the obstacle track's 10 px → becomes void
    labels[20:40, 20:40] = 1  # 400 px GT
    pred = np.zeros_like(labels, bool)
    pred[5:8, 5:8] = True  # prediction over the tiny object: leaves the ROI with it
    pred[20:40, 20:40] = True
    pred[50:55, 60:70] = True  # 50 px false positive: kept at >= 50 px ...
    pred[50:52, 0:4] = True  # ... 8 px false positive: deleted (< 50 px)
    m = component_metrics(pred.astype(float), labels, threshold=0.5, track="obstacle")
    assert (m["n_gt_components"], m["n_pred_components"]) == (1, 2)
    assert (m["tp_50"], m["fn_50"], m["fp_50"]) == (1, 0, 1)
    # the anomaly track deletes both predictions below 500 px and keeps only the 400 px GT;
    # the 400 px prediction is below 500 px too, so the object is missed
    m = component_metrics(pred.astype(float), labels, threshold=0.5, track="anomaly")
    assert (m["n_gt_components"], m["n_pred_components"], m["siou"]) == (1, 0, 0.0)
    assert np.isnan(m["ppv"])


def test_threshold_is_strict_and_default_uses_best_f1_point():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:5, 2:5] = 1
    scores = np.where(labels == 1, 0.7, 0.1)
    strict = component_metrics(scores, labels, threshold=0.7, min_pred_size=0, min_gt_size=0)
    assert strict["n_pred_components"] == 0  # score == threshold is not predicted (SMIYC)
    best = component_metrics(scores, labels, min_pred_size=0, min_gt_size=0)
    assert best["threshold"] == 0.7 and best["siou"] == 1.0 and best["f1_mean"] == 1.0


def test_stack_and_list_inputs_and_errors():
    labels, pred = _scene()
    stack_s = np.stack([pred, pred]).astype(float)
    stack_l = np.stack([labels, labels])
    kw = dict(threshold=0.5, min_pred_size=0, min_gt_size=0)
    m_stack = component_metrics(stack_s, stack_l, **kw)
    m_list = component_metrics(list(stack_s), list(stack_l), **kw)
    assert m_stack == m_list and m_stack["n_gt_components"] == 8
    with pytest.raises(ValueError, match="HxW"):
        component_metrics(np.zeros(10), np.zeros(10, int), threshold=0.5)
    with pytest.raises(ValueError, match="track"):
        component_metrics(stack_s, stack_l, threshold=0.5, track="lost")
    with pytest.raises(ValueError, match="labels must be"):
        frame_components(pred, labels + 3)


def _reference(pred: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Brute force straight from the formula (no size filters): sets per component."""
    roi = labels != 255
    gt_cc = sk_label(labels == 1, connectivity=2)
    pred_cc = sk_label(pred & roi, connectivity=2)
    siou = []
    for k in range(1, gt_cc.max() + 1):
        comp = gt_cc == k
        touching = np.unique(pred_cc[comp & (pred_cc > 0)])
        p_hat = np.isin(pred_cc, touching) & (pred_cc > 0)
        others = (gt_cc > 0) & ~comp
        inter = np.sum(comp & p_hat)
        union = p_hat.sum() + comp.sum() - inter - np.sum(p_hat & others)
        siou.append(inter / union)
    ppv = [
        np.sum((pred_cc == j) & (gt_cc > 0)) / np.sum(pred_cc == j)
        for j in range(1, pred_cc.max() + 1)
    ]
    return sorted(siou), sorted(ppv)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_formula_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros((48, 64), np.uint8)
    pred = np.zeros((48, 64), bool)
    for _ in range(6):
        y, x, h, w = (
            rng.integers(0, 40),
            rng.integers(0, 56),
            rng.integers(2, 9),
            rng.integers(2, 9),
        )
        labels[y : y + h, x : x + w] = 1
    for _ in range(7):
        y, x, h, w = (
            rng.integers(0, 40),
            rng.integers(0, 56),
            rng.integers(2, 12),
            rng.integers(2, 12),
        )
        pred[y : y + h, x : x + w] = True
    labels[rng.random(labels.shape) < 0.03] = 255
    frame = frame_components(pred, labels)
    siou, ppv = _reference(pred, labels)
    assert sorted(frame.siou.tolist()) == pytest.approx(siou)
    assert sorted(frame.ppv.tolist()) == pytest.approx(ppv)
