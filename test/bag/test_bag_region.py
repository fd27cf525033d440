"""The scoring region (one rule for bag-eval, demo and benchmark) and the streaming best-F1
component threshold: hand-made frames, checked against pixood_ros.metrics on all frames at once."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.bag import histogram
from pixood_ros.bag.best_f1 import ScoreSpill
from pixood_ros.bag.scoring import EvalMetrics
from pixood_ros.metrics import PixelMetricAccumulator, component_metrics, pixel_metrics
from pixood_ros.metrics.components import ComponentMetricAccumulator
from pixood_ros.metrics.region import ScoredRegion, choose_region, restrict_labels

V = 255


def test_region_keeps_exactly_the_eval_label_pixels_and_the_anomalies():
    ood = np.array([[0, 0, 1, V], [0, 1, 0, 0]], np.uint8)
    semantic = np.array([[0, 5, 5, 1], [2, 0, 1, V]], np.uint8)
    restricted = restrict_labels(ood, semantic, (0, 1))
    # normal road/sidewalk stays 0, anomalies stay 1 wherever they are (also on class 5),
    # normal pixels of other classes, unlabelled semantics and OOD void become void
    assert restricted.tolist() == [[0, V, 1, V], [V, 1, 0, V]]
    assert restricted.dtype == np.uint8
    assert restrict_labels(ood, semantic, None) is ood
    with pytest.raises(ValueError, match="needs semantic ground truth"):
        restrict_labels(ood, None, (0, 1))
    with pytest.raises(ValueError, match="differ in shape"):
        restrict_labels(ood, semantic[:, :2], (0, 1))


def test_uint8_maps_give_the_labels_of_wider_integer_maps():
    rng = np.random.default_rng(2)
    ood = rng.choice(np.array([0, 1, 2, V], np.uint8), (40, 50))
    semantic = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    for classes in ((0, 1), (3, 300, -1), ()):
        wide = restrict_labels(ood.astype(np.int64), semantic.astype(np.int64), classes)
        np.testing.assert_array_equal(restrict_labels(ood, semantic, classes), wide)


def test_region_choice_says_what_and_why():
    road = choose_region("auto", (0, 1), 19, has_semantic_gt=True)
    assert road.name == "eval-labels" and road.classes == (0, 1)
    assert road.reason.startswith("auto:") and "2 of its 19 classes" in road.reason
    assert "road, sidewalk and anomaly pixels" in road.describe(["road", "sidewalk"])
    every = choose_region("auto", range(19), 19, has_semantic_gt=True)
    assert every.classes is None and "cover all 19 classes" in every.reason
    blind = choose_region("auto", (0, 1), 19, has_semantic_gt=False)
    assert blind.classes is None and "no semantic ground truth" in blind.reason
    assert choose_region("eval_labels", (0, 1), 19).name == "eval-labels"  # old spelling
    assert choose_region("all", (0, 1), 19).classes is None
    with pytest.raises(ValueError, match="needs semantic ground truth"):
        choose_region("eval-labels", (0, 1), 19, has_semantic_gt=False)
    with pytest.raises(ValueError, match="unknown region"):
        choose_region("road", (0, 1), 19)


def _frames(kind: str, count: int = 4, seed: int = 0):
    """Scores with hard cases for a binned search: k/255 levels (ties, exact bin edges),
    free float32 values, and values crowded into one histogram bin."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        labels = np.zeros((24, 32), np.uint8)
        labels[3 + i : 12 + i, 4 + 2 * i : 14 + 2 * i] = 1
        labels[-2:] = V
        labels[0, :5] = 1  # a thin anomaly that the scores miss
        if kind == "levels":
            scores = rng.integers(0, 200, labels.shape) / 255
            scores[labels == 1] = rng.integers(90, 256, int((labels == 1).sum())) / 255
        elif kind == "floats":
            scores = rng.beta(2, 5, labels.shape)
            scores[labels == 1] = rng.beta(5, 2, int((labels == 1).sum()))
        else:  # one crowded bin: every score within 1/65536 of 0.5
            scores = 0.5 + rng.random(labels.shape) * 1e-5
            scores[labels == 1] += 4e-6
        frames.append((scores.astype(np.float32), labels))
    return frames


def _at(threshold, scores, labels):
    """Component metrics of the full-precision scores with score >= threshold."""
    acc = ComponentMetricAccumulator(
        threshold=threshold, min_pred_size=0, min_gt_size=0, inclusive=True
    )
    acc.update(scores, labels)
    return acc.compute()


@pytest.mark.parametrize("kind", ["levels", "floats", "crowded"])
def test_best_f1_components_are_those_of_the_full_precision_scores(tmp_path, kind):
    frames = _frames(kind)
    scores = [s for s, _ in frames]
    labels = [lab for _, lab in frames]
    with EvalMetrics(0.5, num_classes=19, min_pred_size=0, min_gt_size=0, spill_dir=tmp_path) as m:
        for s, lab in frames:
            m.add_ood(s, lab)
        got = m.summary([])["components"]
    binned = PixelMetricAccumulator()
    binned.update(scores, labels)
    threshold = binned.compute()["best_f1_threshold"]  # the binned curve's best-F1 edge
    assert got["component_threshold"]["value"] == threshold
    assert threshold * 65536 == int(threshold * 65536)
    # the stored 16-bit bins pass exactly the pixels the float32 scores pass at that edge
    expected = _at(threshold, scores, labels)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=0, nan_ok=True), key
    assert got["component_threshold"]["rule"] == "best-f1"
    # within 1/65536 of the exact threshold: bin edges at a finer grid than the scores' levels
    # find the same F1; a single crowded bin is the case where they cannot
    exact = pixel_metrics(scores, labels)
    if kind != "crowded":
        assert abs(exact["best_f1_threshold"] - threshold) < 1 / 65536
        assert _at(exact["best_f1_threshold"], scores, labels)["f1_mean"] == got["f1_mean"]
    assert not list(tmp_path.iterdir()), "the temporary score file is removed"


def test_best_f1_threshold_inside_a_region(tmp_path):
    frames = _frames("floats", seed=3)
    rng = np.random.default_rng(1)
    semantic = [rng.integers(0, 4, lab.shape).astype(np.uint8) for _, lab in frames]
    region = ScoredRegion("eval-labels", (0, 1), "test")
    metrics = EvalMetrics(0.5, 19, min_pred_size=0, min_gt_size=0, region=region)
    for (s, lab), sem in zip(frames, semantic, strict=True):
        metrics.add_ood(s, lab, sem)
    got = metrics.summary([])
    metrics.close()
    masked = [
        restrict_labels(lab, sem, (0, 1)) for (_, lab), sem in zip(frames, semantic, strict=True)
    ]
    threshold = got["components"]["component_threshold"]["value"]
    expected = component_metrics(
        [s for s, _ in frames], masked, None, min_pred_size=0, min_gt_size=0
    )
    assert abs(threshold - expected["threshold"]) < 1 / 65536
    assert got["components"]["f1_mean"] == _at(threshold, [s for s, _ in frames], masked)["f1_mean"]
    assert got["pixel"]["n_neg"] == sum(int((m == 0).sum()) for m in masked)
    assert got["region"]["name"] == "eval-labels"


def test_without_anomalies_best_f1_components_are_undefined_with_a_note(tmp_path):
    with EvalMetrics(0.5, 19, spill_dir=tmp_path) as metrics:
        metrics.add_ood(np.full((8, 8), 0.3, np.float32), np.zeros((8, 8), np.uint8))
        summary = metrics.summary([])
    assert summary["components"]["component_threshold"]["value"] is None
    assert "siou" not in summary["components"]
    assert any("best-F1 needs anomaly pixels" in note for note in summary["notes"])


def test_spill_returns_the_labelled_pixels_bins_and_stays_small(tmp_path):
    spill = ScoreSpill(tmp_path)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        ramp = np.linspace(0, 1, 300 * 400, dtype=np.float32).reshape(300, 400)
        labels = rng.choice(np.array([0, 1, V], np.uint8), ramp.shape, p=[0.5, 0.1, 0.4])
        frames.append((histogram.fine_bins(ramp ** (i + 1)), labels))
        spill.append(*frames[-1])
    # 5 bytes per pixel before; smooth score maps delta-code to well under 1 byte
    assert spill.bytes_written < 0.5 * sum(lab.size for _, lab in frames)
    for (bins, lab), (kept, lab2) in zip(frames, spill.frames(), strict=True):
        np.testing.assert_array_equal(lab, lab2)
        np.testing.assert_array_equal(bins[lab != V], kept)
    spill.close()
    assert not list(tmp_path.iterdir())
