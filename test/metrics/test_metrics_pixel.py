"""Pixel-level metrics: hand-computed cases, agreement with scikit-learn (heavy ties), void
handling, input checks, and the streaming accumulators against the exact computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from pixood_ros.metrics import (
    DegenerateLabelsError,
    ExactPixelMetricAccumulator,
    PixelMetricAccumulator,
    pixel_metrics,
)


def test_hand_computed_case_without_ties():
    # sorted by score: 0.9(+) 0.8(-) 0.7(+) 0.6(+) 0.5(-) 0.4(-); P = 3, N = 3
    scores = np.array([0.8, 0.9, 0.5, 0.7, 0.4, 0.6])
    labels = np.array([0, 1, 0, 1, 0, 1])
    m = pixel_metrics(scores, labels)
    # AP = ΔR·P summed: 1/3·1 + 0·1/2 + 1/3·2/3 + 1/3·3/4 = 12/36 + 8/36 + 9/36 = 29/36
    assert m["ap"] == pytest.approx(29 / 36, abs=1e-12)
    # AUROC = pairs (pos > neg) / (P·N): 0.9 beats 3, 0.7 beats 2, 0.6 beats 2 → 7/9
    assert m["auroc"] == pytest.approx(7 / 9, abs=1e-12)
    # TPR first reaches 1 (>= 0.95) at threshold 0.6 where FP = 1 (0.8) → FPR = 1/3
    assert m["fpr95"] == pytest.approx(1 / 3, abs=1e-12)
    assert m["fpr95_tpr"] == 1.0 and m["fpr95_threshold"] == 0.6
    # F1 = 2TP/(TP+FP+P): best at 0.6 with TP 3, FP 1 → 6/7
    assert m["best_f1"] == pytest.approx(6 / 7) and m["best_f1_threshold"] == 0.6
    assert (m["n_pos"], m["n_neg"]) == (3, 3)


def test_hand_computed_case_with_ties_grouped():
    # 0.8(+) | 0.5(+) 0.5(-) 0.5(-) | 0.2(+); P = 3, N = 2; the tied run is ONE curve point
    scores = np.array([0.5, 0.8, 0.5, 0.2, 0.5])
    labels = np.array([0, 1, 1, 1, 0])
    m = pixel_metrics(scores, labels)
    # points (R, P): (1/3, 1), (2/3, 2/4), (1, 3/5) → AP = 1/3 + 1/3·1/2 + 1/3·3/5 = 21/30
    assert m["ap"] == pytest.approx(0.7, abs=1e-12)
    # pairs: 0.8 beats 2 negatives, 0.5 ties 2 (2·½), 0.2 beats 0 → 3/6
    assert m["auroc"] == pytest.approx(0.5, abs=1e-12)
    # TPR = 2/3 < 0.95 at the tie, 1 at 0.2 where FP = 2 → FPR = 1
    assert m["fpr95"] == 1.0


def test_fpr95_exactly_at_95_percent_tpr_counts():
    # 20 positives: 19 at 0.9, 1 at 0.1; 100 negatives: 5 at 0.95, 95 at 0.05.
    # At threshold 0.9: TPR = 19/20 = 0.95 exactly (counts as reached), FP = 5 → FPR = 0.05
    scores = np.r_[np.full(19, 0.9), 0.1, np.full(5, 0.95), np.full(95, 0.05)]
    labels = np.r_[np.ones(20, int), np.zeros(100, int)]
    m = pixel_metrics(scores, labels)
    assert m["fpr95"] == pytest.approx(0.05, abs=1e-12)
    assert m["fpr95_tpr"] == pytest.approx(0.95) and m["fpr95_threshold"] == 0.9


def test_void_pixels_are_ignored():
    scores = np.array([0.8, 0.9, 0.5, 0.7, 0.4, 0.6])
    labels = np.array([0, 1, 0, 1, 0, 1], dtype=np.uint8)
    # void pixels with extreme scores would change every metric if they were counted
    with_void_scores = np.r_[scores, [1.0, 0.0, 0.95]]
    with_void_labels = np.r_[labels, [255, 255, 255]].astype(np.uint8)
    assert pixel_metrics(with_void_scores, with_void_labels) == pixel_metrics(scores, labels)
    # a different ignore value is honoured too
    other = np.where(with_void_labels == 255, 7, with_void_labels)
    assert pixel_metrics(with_void_scores, other, ignore_index=7) == pixel_metrics(scores, labels)


@pytest.mark.parametrize("levels", [2, 5, 50, None])
@pytest.mark.parametrize("n", [7, 1000, 20000])
def test_matches_sklearn_with_heavy_ties(levels, n):
    rng = np.random.default_rng(n + (levels or 0))
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    labels[:2] = [0, 1]  # both classes present
    noise = rng.random(n) if levels is None else rng.integers(0, levels, n) / levels
    scores = 0.5 * labels * rng.random(n) + noise  # informative but overlapping
    m = pixel_metrics(scores, labels)
    assert m["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    k = int(np.argmax(tpr >= 0.95))
    assert m["fpr95"] == pytest.approx(fpr[k], abs=1e-12)
    assert m["fpr95_threshold"] == pytest.approx(thr[k])


def test_float32_and_integer_scores_match_sklearn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 5000)
    for scores in (rng.random(5000).astype(np.float32), rng.integers(0, 30, 5000)):
        m = pixel_metrics(scores, labels)
        assert m["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
        assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)


def test_list_of_images_equals_concatenation_any_shape():
    rng = np.random.default_rng(1)
    shapes = [(4, 5), (3, 7), (2, 2, 3)]
    scores = [rng.random(s) for s in shapes]
    labels = [rng.choice([0, 1, 255], size=s) for s in shapes]
    flat_s = np.concatenate([s.ravel() for s in scores])
    flat_l = np.concatenate([lab.ravel() for lab in labels])
    assert pixel_metrics(scores, labels) == pixel_metrics(flat_s, flat_l)


def test_input_errors_are_clear():
    s, lab = np.zeros((4, 4)), np.zeros((4, 4), int)
    lab[0, 0] = 1
    with pytest.raises(ValueError, match="shape"):
        pixel_metrics(s, lab[:3])
    with pytest.raises(ValueError, match="image 1"):
        pixel_metrics([s, s], [lab, lab[:2]])
    with pytest.raises(ValueError, match="2 images"):
        pixel_metrics([s, s], [lab])
    with pytest.raises(ValueError, match="both"):
        pixel_metrics([s], lab)
    with pytest.raises(ValueError, match="found \\[2\\]"):
        pixel_metrics(s, np.full((4, 4), 2))
    with pytest.raises(ValueError, match="NaN"):
        pixel_metrics(np.full((4, 4), np.nan), lab)
    with pytest.raises(ValueError, match="void"):
        pixel_metrics(s, np.full((4, 4), 255))


def test_degenerate_labels_raise_or_give_nan():
    s = np.linspace(0, 1, 10)
    with pytest.raises(DegenerateLabelsError, match="no positive"):
        pixel_metrics(s, np.zeros(10, int))
    with pytest.raises(ValueError, match="no negative"):
        pixel_metrics(s, np.ones(10, int))
    with pytest.warns(RuntimeWarning, match="undefined"):
        m = pixel_metrics(s, np.ones(10, int), on_degenerate="nan")
    # all pixels anomalous: precision is 1 everywhere so AP = 1; rates over negatives are NaN
    assert m["ap"] == 1.0 and np.isnan(m["auroc"]) and np.isnan(m["fpr95"])


def _informative_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.1).astype(np.uint8)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0.0, 1.0)
    labels[rng.random(n) < 0.05] = 255
    return scores, labels


def test_streaming_within_1e3_of_exact_on_a_million_pixels():
    scores, labels = _informative_pixels(1_000_000, 0)
    exact = pixel_metrics(scores, labels)
    acc = PixelMetricAccumulator()
    for chunk_s, chunk_l in zip(np.array_split(scores, 7), np.array_split(labels, 7), strict=True):
        acc.update(chunk_s.reshape(1, -1), chunk_l.reshape(1, -1))
    binned = acc.compute()
    assert acc.n_pixels == exact["n_pos"] + exact["n_neg"]
    for key in ("ap", "auroc", "fpr95"):
        assert binned[key] == pytest.approx(exact[key], abs=1e-3)
    assert 0.5 < exact["auroc"] < 0.99  # a non-trivial case


def test_streaming_with_few_bins_is_the_exact_metric_of_quantised_scores():
    scores, labels = _informative_pixels(20_000, 1)
    acc = PixelMetricAccumulator(bins=16)
    acc.update(scores, labels)
    quantised = np.minimum(np.floor(scores * 16), 15) / 16
    expected = pixel_metrics(quantised, labels)
    got = acc.compute()
    for key in ("ap", "auroc", "fpr95", "fpr95_threshold"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12)


def test_streaming_merge_and_range_check():
    scores, labels = _informative_pixels(10_000, 2)
    a, b, whole = (PixelMetricAccumulator(bins=1000) for _ in range(3))
    a.update(scores[:4000], labels[:4000])
    b.update(scores[4000:], labels[4000:])
    whole.update(scores, labels)
    a.merge(b)
    assert a.compute() == whole.compute()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        a.update(np.array([0.5, 1.5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="bins"):
        a.merge(PixelMetricAccumulator(bins=10))


def test_exact_accumulator_equals_pixel_metrics():
    scores, labels = _informative_pixels(30_000, 4)
    acc = ExactPixelMetricAccumulator()
    acc.update([scores[:10_000], scores[10_000:]], [labels[:10_000], labels[10_000:]])
    assert acc.compute() == pixel_metrics(scores, labels)
    acc.reset()
    with pytest.raises(ValueError, match="no images"):
        acc.compute()
