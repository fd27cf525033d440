"""The one-pass histograms give the pixel metrics' counts exactly (region and whole frame), the
100-bin score histogram within one fine bin, and the same errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.bag.scoring import HISTOGRAM_BINS, EvalMetrics
from pixood_ros.metrics import PixelMetricAccumulator
from pixood_ros.metrics.region import ScoredRegion

ROAD = ScoredRegion("eval-labels", [0, 1], "road and sidewalk")


def frame(seed: int, shape=(60, 80)):
    rng = np.random.default_rng(seed)
    score = rng.random(shape, dtype=np.float32)
    score[0, :4] = [0.0, 1.0, np.float32(0.995), np.nextafter(np.float32(1), np.float32(0))]
    ood = rng.choice(np.array([0, 1, 255], np.uint8), shape, p=[0.7, 0.2, 0.1])
    semantic = rng.integers(0, 19, shape).astype(np.uint8)
    return score, ood, semantic


def test_counts_equal_the_accumulators_own(tmp_path):
    metrics = EvalMetrics(0.5, 19, region=ROAD, spill_dir=tmp_path)
    region, whole = PixelMetricAccumulator(), PixelMetricAccumulator()
    for seed in range(3):
        score, ood, semantic = frame(seed)
        metrics.add_scores(score)
        metrics.add_ood(score, ood, semantic)
        region.update(score, ROAD.restrict(ood, semantic))
        whole.update(score, ood)
    assert np.array_equal(metrics.pixel.pos_counts, region.pos_counts)
    assert np.array_equal(metrics.pixel.neg_counts, region.neg_counts)
    assert np.array_equal(metrics.pixel_whole_frame.pos_counts, whole.pos_counts)
    assert np.array_equal(metrics.pixel_whole_frame.neg_counts, whole.neg_counts)
    metrics.close()


def test_score_histogram_is_the_old_one_within_a_fine_bin():
    metrics = EvalMetrics(0.5, 19)
    scores = [frame(seed)[0] for seed in range(3)]
    for score in scores:
        metrics.add_scores(score)
    flat = np.concatenate([s.ravel() for s in scores])
    old = np.bincount(np.clip((flat * HISTOGRAM_BINS).astype(int), 0, 99), minlength=100)
    assert metrics.score_hist.sum() == flat.size
    near_edge = np.abs(flat * 100 - np.round(flat * 100)) < 100 / 65536
    assert np.abs(metrics.score_hist - old).sum() <= 2 * near_edge.sum()


def test_bad_scores_and_labels_raise_as_before():
    metrics = EvalMetrics(0.5, 19)
    score, ood, _ = frame(0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.add_ood(score * 2, ood)
    bad = ood.copy()
    bad[0, 0] = 7
    with pytest.raises(ValueError):
        metrics.add_ood(score, bad)
