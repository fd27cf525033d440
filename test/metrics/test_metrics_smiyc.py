"""SMIYC's protocol beside our exact one (docs/evaluation.md §3.7), and the float16 storage map
that keeps score rankings (§3.6)."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.metrics import pixel_metrics
from pixood_ros.metrics.protocols import anomaly_metrics
from pixood_ros.metrics.score_storage import from_storage, to_float16, to_storage
from pixood_ros.metrics.smiyc import smiyc_pixel_metrics


def calibrated_maps(seed: int = 0, frames: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Score maps like a calibrated PixOOD's: 1 − s log-uniform, anomalies within 5e-4 of 1."""
    rng = np.random.default_rng(seed)
    scores, labels = [], []
    for _ in range(frames):
        lab = np.zeros((60, 80), np.uint8)
        lab[20:40, 30:50] = 1
        lab[:2] = 255
        gap = 10 ** rng.uniform(-5.0, 0.0, lab.shape)  # 1 − s of in-distribution pixels
        gap[lab == 1] = 10 ** rng.uniform(-7.0, -3.3, int((lab == 1).sum()))
        scores.append((1.0 - gap).astype(np.float32))
        labels.append(lab)
    return scores, labels


def test_storage_map_keeps_order_where_plain_float16_ties():
    s = np.float32(1.0) - np.array([4e-4, 3e-4, 2e-4, 1e-4, 5e-5, 1e-6], np.float32)
    assert len(np.unique(s.astype(np.float16))) <= 2  # plain float16: one or two values
    stored = to_float16(s)
    assert np.all(np.diff(stored.astype(np.float64)) > 0)  # every score keeps its rank
    assert to_float16(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert np.allclose(from_storage(to_storage(s)), s, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_storage(np.array([1.5]))


def test_float16_storage_costs_ap_only_without_the_map():
    scores, labels = calibrated_maps()
    exact = pixel_metrics(scores, labels)["ap"]
    plain = pixel_metrics([s.astype(np.float16).astype(np.float32) for s in scores], labels)["ap"]
    mapped = pixel_metrics([to_float16(s).astype(np.float32) for s in scores], labels)["ap"]
    assert exact - plain > 0.02
    assert abs(exact - mapped) < 1e-3


def test_binned_protocol_differs_from_exact_as_documented():
    """Scores on four levels: the SMIYC curve interpolates between its bins (trapezoid AP), has
    no AUROC, and its strict `>` at the best-F1 level drops the pixels sitting on it, which our
    `>=` keeps: there the anomaly components are found by exact and missed by smiyc."""
    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:15] = 1
    lab[25:35, 25:35] = 1
    score = np.full(lab.shape, 0.1, np.float32)
    score[lab == 1] = 0.9
    score[0:3, 20:40] = 0.9  # in-distribution pixels tied with the anomalies
    score[36:40, 0:10] = 0.5
    exact_pixel, exact_comp = anomaly_metrics([score], [lab], "exact", min_pred_size=0,
                                              min_gt_size=0)  # fmt: skip
    smiyc_pixel, smiyc_comp = anomaly_metrics([score], [lab], "smiyc", min_pred_size=0,
                                              min_gt_size=0)  # fmt: skip
    assert exact_pixel["ap"] == pytest.approx(200 / 260)  # one step: precision 200/260, recall 1
    assert smiyc_pixel["ap"] != pytest.approx(exact_pixel["ap"], abs=1e-3)
    assert np.isnan(smiyc_pixel["auroc"]) and not np.isnan(exact_pixel["auroc"])
    assert exact_comp["tp_50"] == 2 and exact_comp["f1_mean"] > 0.5
    assert smiyc_comp["tp_50"] == 0 and smiyc_comp["f1_mean"] == 0.0
    assert smiyc_comp["threshold"] == pytest.approx(exact_comp["threshold"], abs=1e-3)


def test_smiyc_fpr95_and_ap_follow_the_toolkit_curve():
    """On well-separated continuous scores both protocols agree closely (the bins then resolve
    the curve), and the binned numbers are stable under the storage map's float16."""
    scores, labels = calibrated_maps(seed=1)
    exact = pixel_metrics(scores, labels)
    binned = smiyc_pixel_metrics(scores, labels)
    assert binned["ap"] == pytest.approx(exact["ap"], abs=0.02)
    assert binned["fpr95"] == pytest.approx(exact["fpr95"], abs=0.02)
    assert binned["n_pos"] == exact["n_pos"] and binned["n_neg"] == exact["n_neg"]
