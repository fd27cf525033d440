"""Streaming metrics of one evaluation run, built from `pixood_ros.metrics` accumulators so a long
bag never needs its frames in memory (histograms and per-component numbers only).

- pixel AP / AUROC / FPR95 (+ best F1) from the binned `PixelMetricAccumulator`;
- component sIoU / PPV / mean F1 at the evaluation threshold, with the node's mask rule
  (score >= threshold, `pixood_ros.node.outputs.anomaly_mask`), so the numbers describe the
  mask a robot really gets;
- mIoU, pixel accuracy and ECE when semantic ground truth is present;
- a score histogram (all pixels, and split by label when OOD ground truth is present).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from pixood_ros.metrics import PixelMetricAccumulator
from pixood_ros.metrics.components import ComponentMetricAccumulator
from pixood_ros.metrics.curves import BinaryCurve, DegenerateLabelsError, curve_from_histograms
from pixood_ros.metrics.semantic import CalibrationAccumulator, ConfusionMatrixAccumulator

HISTOGRAM_BINS = 100


class EvalMetrics:
    """Accumulates everything the report needs, frame by frame."""

    def __init__(
        self,
        threshold: float,
        num_classes: int,
        track: str = "anomaly",
        min_pred_size: int | None = None,
        min_gt_size: int | None = None,
    ) -> None:
        self.threshold = float(threshold)
        self.num_classes = int(num_classes)
        self.pixel = PixelMetricAccumulator()
        self.components = ComponentMetricAccumulator(
            threshold=self.threshold,
            track=track,
            min_pred_size=min_pred_size,
            min_gt_size=min_gt_size,
            inclusive=True,
        )
        self.confusion = ConfusionMatrixAccumulator(self.num_classes)
        self.calibration = CalibrationAccumulator()
        self.score_hist = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.frames_with_ood_gt = 0
        self.frames_with_semantic_gt = 0

    def add_scores(self, score: np.ndarray) -> None:
        self.score_hist += _histogram(score)

    def add_ood(self, score: np.ndarray, labels: np.ndarray) -> None:
        """Raises ValueError (from pixood_ros.metrics) for labels outside 0/1/255."""
        self.pixel.update(score, labels)
        self.components.update(score, labels)
        self.frames_with_ood_gt += 1

    def add_semantic(
        self, semantic: np.ndarray, confidence: np.ndarray, labels: np.ndarray
    ) -> None:
        """Raises ValueError for class ids outside the model's classes (255 = void is fine)."""
        self.confusion.update(semantic, labels)
        valid = labels != 255
        self.calibration.update(confidence[valid], semantic[valid] == labels[valid])
        self.frames_with_semantic_gt += 1

    def pixel_curve(self) -> BinaryCurve | None:
        if self.frames_with_ood_gt == 0:
            return None
        edges = np.arange(self.pixel.bins, dtype=np.float64) / self.pixel.bins
        return curve_from_histograms(self.pixel.pos_counts, self.pixel.neg_counts, edges)

    def label_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """(anomaly, in-distribution) pixel counts in HISTOGRAM_BINS equal score bins."""
        group = self.pixel.bins // HISTOGRAM_BINS
        pos = self.pixel.pos_counts[: group * HISTOGRAM_BINS].reshape(HISTOGRAM_BINS, -1).sum(1)
        neg = self.pixel.neg_counts[: group * HISTOGRAM_BINS].reshape(HISTOGRAM_BINS, -1).sum(1)
        pos[-1] += self.pixel.pos_counts[group * HISTOGRAM_BINS :].sum()
        neg[-1] += self.pixel.neg_counts[group * HISTOGRAM_BINS :].sum()
        return pos, neg

    def summary(self, class_names: list[str]) -> dict[str, object]:
        """JSON-ready metrics; a metric that is undefined (e.g. no anomaly pixel) is null with
        the reason under `notes`."""
        out: dict[str, object] = {"threshold": self.threshold, "notes": []}
        notes: list[str] = out["notes"]  # type: ignore[assignment]
        if self.frames_with_ood_gt:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    pixel = self.pixel.compute(on_degenerate="nan")
                except DegenerateLabelsError as exc:
                    pixel = {}
                    notes.append(f"pixel metrics: {exc}")
            for key, value in pixel.items():
                if isinstance(value, float) and math.isnan(value):
                    notes.append(f"pixel {key} undefined: the labels lack anomaly or normal pixels")
            out["pixel"] = _clean(pixel)
            out["pixel"]["frames"] = self.frames_with_ood_gt  # type: ignore[index]
            out["components"] = _clean(self.components.compute())
            out["components"]["frames"] = self.frames_with_ood_gt  # type: ignore[index]
        if self.frames_with_semantic_gt:
            iou = self.confusion.iou()
            semantic: dict[str, object] = {"frames": self.frames_with_semantic_gt}
            if np.all(np.isnan(iou)):
                notes.append("semantic metrics undefined: all semantic labels are void")
            else:
                semantic["miou"] = self.confusion.miou()
                semantic["pixel_accuracy"] = self.confusion.pixel_accuracy()
                semantic["ece"] = self.calibration.compute()
                semantic["per_class_iou"] = {
                    name: _finite_or_none(v)
                    for name, v in zip(class_names, iou.tolist(), strict=True)
                }
            out["semantic"] = semantic
        return out


def _histogram(score: np.ndarray) -> np.ndarray:
    idx = np.clip((score.ravel() * HISTOGRAM_BINS).astype(np.int64), 0, HISTOGRAM_BINS - 1)
    return np.bincount(idx, minlength=HISTOGRAM_BINS)


def _finite_or_none(value: float) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
    )


def _clean(values: dict) -> dict:
    return {
        k: (
            _finite_or_none(v)
            if isinstance(v, float)
            else int(v)
            if isinstance(v, np.integer)
            else v
        )
        for k, v in values.items()
    }
