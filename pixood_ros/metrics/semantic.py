"""Semantic-segmentation metrics: confusion matrix / IoU / mIoU and expected calibration error.

mIoU skips classes absent from both ground truth and prediction (nanmean), as Cityscapes and
BRAVO do. ECE uses equal-width confidence bins [k/B, (k+1)/B) (the last bin includes 1.0) and
weighs each bin's |mean confidence − accuracy| by its share of pixels.
"""

from __future__ import annotations

import numpy as np

from ._inputs import ArrayOrList, as_pairs, flatten_pairs


def _as_int(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {values.dtype}")
    return values.astype(np.int64, copy=False)


def confusion_matrix(
    pred: ArrayOrList, gt: ArrayOrList, num_classes: int, ignore_index: int | None = 255
) -> np.ndarray:
    """num_classes x num_classes int64 counts, rows = ground truth, columns = prediction.

    Pixels whose ground truth is `ignore_index` are skipped; any other id outside
    [0, num_classes) in either map raises ValueError (it would corrupt the matrix silently).
    """
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    flat_pred, flat_gt = flatten_pairs(pred, gt, "pred", "gt")
    flat_pred, flat_gt = _as_int("pred", flat_pred), _as_int("gt", flat_gt)
    keep = flat_gt != ignore_index if ignore_index is not None else np.ones(flat_gt.shape, bool)
    g, p = flat_gt[keep], flat_pred[keep]
    for name, values in (("gt", g), ("pred", p)):
        bad = (values < 0) | (values >= num_classes)
        if np.any(bad):
            raise ValueError(
                f"{name} holds class ids outside [0, {num_classes}) that are not ignore_index: "
                f"{np.unique(values[bad])[:10].tolist()}"
            )
    return np.bincount(g * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); NaN for classes absent from both maps."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def _mean_iou(iou: np.ndarray) -> float:
    if np.all(np.isnan(iou)):
        raise ValueError("mIoU is undefined: no labelled (non-void) pixels")
    return float(np.nanmean(iou))


def per_class_iou(
    pred: ArrayOrList, gt: ArrayOrList, num_classes: int, ignore_index: int | None = 255
) -> np.ndarray:
    """IoU of every class (NaN where a class occurs in neither map)."""
    return iou_from_confusion(confusion_matrix(pred, gt, num_classes, ignore_index))


def miou(
    pred: ArrayOrList, gt: ArrayOrList, num_classes: int, ignore_index: int | None = 255
) -> float:
    """Mean IoU over the classes present in ground truth or prediction, pooled over all pixels."""
    return _mean_iou(per_class_iou(pred, gt, num_classes, ignore_index))


class ConfusionMatrixAccumulator:
    """Streaming confusion matrix: update per image, read IoU / mIoU / accuracy at the end."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.matrix[:] = 0

    def update(self, pred: ArrayOrList, gt: ArrayOrList) -> None:
        self.matrix += confusion_matrix(pred, gt, self.num_classes, self.ignore_index)

    def iou(self) -> np.ndarray:
        return iou_from_confusion(self.matrix)

    def miou(self) -> float:
        return _mean_iou(self.iou())

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        if total == 0:
            raise ValueError("pixel accuracy is undefined: no labelled (non-void) pixels")
        return float(np.trace(self.matrix) / total)


def _check_confidence(conf: np.ndarray) -> np.ndarray:
    if conf.dtype == bool or not np.issubdtype(conf.dtype, np.number):
        raise ValueError(f"confidence must be numeric, got dtype {conf.dtype}")
    conf = conf.astype(np.float64, copy=False)
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidence values must be finite and lie in [0, 1]")
    return conf


class CalibrationAccumulator:
    """Streaming ECE: per-bin pixel count, summed confidence and number of correct pixels."""

    def __init__(self, n_bins: int = 15) -> None:
        if int(n_bins) < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = int(n_bins)
        self.count = np.zeros(self.n_bins, dtype=np.int64)
        self.conf_sum = np.zeros(self.n_bins, dtype=np.float64)
        self.correct = np.zeros(self.n_bins, dtype=np.int64)

    def update(self, confidence: ArrayOrList, correct: ArrayOrList) -> None:
        for c, ok in as_pairs(confidence, correct, "confidence", "correct"):
            c = _check_confidence(c.ravel())
            ok = ok.ravel().astype(bool)
            idx = np.minimum((c * self.n_bins).astype(np.int64), self.n_bins - 1)
            self.count += np.bincount(idx, minlength=self.n_bins)
            self.conf_sum += np.bincount(idx, weights=c, minlength=self.n_bins)
            self.correct += np.bincount(idx[ok], minlength=self.n_bins)

    def compute(self) -> float:
        total = self.count.sum()
        if total == 0:
            raise ValueError("ECE is undefined: no pixels were added")
        used = self.count > 0
        n = self.count[used]
        gap = np.abs(self.conf_sum[used] / n - self.correct[used] / n)
        return float(np.sum(n / total * gap))


def ece(confidence: ArrayOrList, correct: ArrayOrList, n_bins: int = 15) -> float:
    """Expected calibration error of confidences in [0, 1] against boolean correctness."""
    acc = CalibrationAccumulator(n_bins)
    acc.update(confidence, correct)
    return acc.compute()
