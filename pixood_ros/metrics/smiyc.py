"""SegmentMeIfYouCan's own pixel protocol (road-anomaly-benchmark toolkit, `PixBinaryClass`),
reproduced so our figures can be set beside its leaderboard (docs/evaluation.md §3.7).

What the toolkit does, step by step, and this module with it:
1. Scores are stored as float16 (here: our submission's storage, `score_storage.to_float16`).
2. Per frame, the scored pixels are histogrammed into bins whose edges are quantiles (384 and
   385 evenly spaced levels, duplicates dropped) of the frame's *anomaly* scores; in-distribution
   scores outside the anomalies' range fall out of the histogram and are never counted.
3. All frames' bins are sorted by their lower edge, highest first, and summed into one curve;
   leading points without predictions are dropped.
4. AP = trapezoid area under precision over recall (from the first point, not from recall 0);
   FPR95 = FPR at the first point with TPR >= 0.95; the component threshold = the lower edge of
   the point of highest F1, applied with a strict `score > threshold`. The toolkit's AUROC
   stops at the lowest anomaly score (the in-distribution pixels below it never enter the
   histogram) and SMIYC publishes none, so `auroc` is NaN here.
Deviation: a frame without anomaly pixels makes the toolkit fail (no quantiles); here its bins
come from its own in-distribution scores.
"""

from __future__ import annotations

import numpy as np

from ._inputs import ArrayOrList, as_pairs, binary_labels, check_finite_scores
from .curves import DegenerateLabelsError
from .score_storage import from_storage, to_float16

#: the toolkit's `num_bins` for the percentile strategy
SMIYC_BINS = 768


def stored(scores: np.ndarray) -> np.ndarray:
    """Scores as SMIYC reads them back from our submission files (float16, as float64)."""
    return to_float16(scores).astype(np.float64)


def _edges(values: np.ndarray) -> np.ndarray:
    half = SMIYC_BINS // 2
    levels = (np.linspace(0, 1, half), np.linspace(0, 1, half + 1))
    edges = np.unique(np.concatenate([np.quantile(values, q) for q in levels]))
    if edges.size == 1:  # one distinct score: a single bin holding it
        edges = np.append(edges, np.nextafter(edges[0], np.inf))
    return edges


class SmiycPixelAccumulator:
    """Per-frame percentile histograms (a few kB per frame) and the toolkit's curve over them."""

    def __init__(self, ignore_index: int | None = 255) -> None:
        self.ignore_index = ignore_index
        self._thresholds: list[np.ndarray] = []
        self._tp: list[np.ndarray] = []
        self._fp: list[np.ndarray] = []
        self.n_pos = 0
        self.n_neg = 0

    def update(self, scores: ArrayOrList, labels: ArrayOrList) -> None:
        """Add one image (or a list); scores in [0, 1], void pixels ignored."""
        for s, lab in as_pairs(scores, labels, "scores", "labels"):
            check_finite_scores(s)
            keep, positive = binary_labels(lab.ravel(), self.ignore_index)
            values = stored(s.ravel()[keep])
            if values.size == 0:
                continue
            pos, neg = values[positive], values[~positive]
            edges = _edges(pos if pos.size else neg)
            self._tp.append(np.histogram(pos, bins=edges)[0][::-1])
            self._fp.append(np.histogram(neg, bins=edges)[0][::-1])
            self._thresholds.append(edges[::-1][1:])
            self.n_pos += int(pos.size)
            self.n_neg += int(neg.size)

    def compute(self) -> dict[str, float]:
        """``ap``, ``auroc``, ``fpr95``, ``best_f1``, ``best_f1_threshold`` (in score units; the
        stored-value threshold is ``best_f1_stored``) and the pixel counts."""
        if self.n_pos == 0 or self.n_neg == 0:
            raise DegenerateLabelsError("the SMIYC curve needs anomaly and in-distribution pixels")
        thresholds = np.concatenate(self._thresholds)
        order = np.argsort(thresholds, kind="stable")[::-1]
        tp = np.cumsum(np.concatenate(self._tp)[order]).astype(np.float64)
        fp = np.cumsum(np.concatenate(self._fp)[order]).astype(np.float64)
        thresholds = thresholds[order]
        start = int(np.argmax(tp + fp > 0))
        tp, fp, thresholds = tp[start:], fp[start:], thresholds[start:]
        precision = tp / (tp + fp)
        recall = tp / self.n_pos
        fpr = fp / self.n_neg
        reached = int(np.searchsorted(recall, 0.95))
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = 2 * precision * recall / (precision + recall)
        best = int(np.nanargmax(f1))
        return {
            "ap": _trapezoid(precision, recall),
            "auroc": float("nan"),  # see the module docstring
            "fpr95": float(fpr[reached]) if reached < fpr.size else 1.0,
            "best_f1": float(f1[best]),
            "best_f1_threshold": float(from_storage(thresholds[best])),
            "best_f1_stored": float(thresholds[best]),
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
        }


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)


def smiyc_pixel_metrics(
    scores: ArrayOrList, labels: ArrayOrList, ignore_index: int | None = 255
) -> dict[str, float]:
    """The toolkit's pixel numbers over a set of images (see the module docstring)."""
    acc = SmiycPixelAccumulator(ignore_index)
    acc.update(scores, labels)
    return acc.compute()
