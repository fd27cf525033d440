"""One frame of semantic ground truth into both semantic accumulators (confusion matrix and
calibration) with three counts over integer codes (ground truth x prediction; calibration bin
x correct; calibration bin weighted by confidence) instead of separate float64 passes. The
accumulated numbers are bit-for-bit those of `ConfusionMatrixAccumulator.update` and
`CalibrationAccumulator.update` on the non-void pixels: the same bins (a lookup on the exact
16-bit quantised confidence, the accumulator's own float64 arithmetic where a bin edge falls
inside a quantisation step), and the same float64 sums in the same pixel order (void pixels are
summed into a bin of their own). Other dtypes or confidences outside [0, 1] take the
accumulators' own path with its own errors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pixood_ros.lookup import lookup_uint16

from .code_counts import count_codes
from .semantic import CalibrationAccumulator, ConfusionMatrixAccumulator

VOID = 255
_FINE = 1 << 16  # confidence quantisation of the bin lookup (exact in float32)
_MAX_BINS = VOID - 1  # bins and the void bin fit in uint8
_STRADDLES = 255  # lookup mark: the fine interval holds an edge of a calibration bin


def add_semantic_frame(
    confusion: ConfusionMatrixAccumulator,
    calibration: CalibrationAccumulator,
    pred: np.ndarray,
    gt: np.ndarray,
    confidence: np.ndarray,
) -> None:
    """Add one frame: the confusion matrix of (pred, gt) and the calibration of `confidence`
    against pred == gt over the pixels whose ground truth is not void (255). ValueError for class
    ids outside the model's classes (255 = void is fine) or unusable confidences."""
    if not _fast_path_applies(confusion, calibration, pred, gt, confidence):
        confusion.update(pred, gt)
        correct = pred == gt
        valid = gt != VOID
        if valid.all():
            calibration.update(confidence, correct)
        else:
            calibration.update(confidence[valid], correct[valid])
        return
    g, p = gt.ravel(), pred.ravel()
    pair_codes = g.astype(np.uint16)
    pair_codes <<= 8
    pair_codes |= p
    pairs = count_codes(pair_codes, 1 << 16).reshape(256, 256)
    _check_ids(pairs, confusion.num_classes)
    n = confusion.num_classes
    confusion.matrix += pairs[:n, :n]
    _add_calibration(calibration, confidence.ravel(), g, p)


def _fast_path_applies(
    confusion: ConfusionMatrixAccumulator,
    calibration: CalibrationAccumulator,
    pred: np.ndarray,
    gt: np.ndarray,
    confidence: np.ndarray,
) -> bool:
    shapes = pred.shape == gt.shape == confidence.shape
    if not shapes or pred.dtype != np.uint8 or gt.dtype != np.uint8:
        return False
    if confidence.dtype != np.float32 or confidence.size == 0:
        return False
    if confusion.ignore_index != VOID or confusion.num_classes > VOID:
        return False
    if calibration.n_bins > _MAX_BINS:
        return False
    return bool(confidence.min() >= 0.0) and bool(confidence.max() <= 1.0)


def _check_ids(pairs: np.ndarray, num_classes: int) -> None:
    """The errors `confusion_matrix` raises: ground truth first, then prediction."""
    rows = pairs.sum(1)
    rows[VOID] = 0
    bad_gt = np.flatnonzero(rows[num_classes:]) + num_classes
    bad_pred = np.flatnonzero(pairs[:num_classes, num_classes:].sum(0)) + num_classes
    for name, bad in (("gt", bad_gt), ("pred", bad_pred)):
        if bad.size:
            raise ValueError(
                f"{name} holds class ids outside [0, {num_classes}) that are not ignore_index: "
                f"{bad[:10].tolist()}"
            )


def _old_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """`CalibrationAccumulator`'s bin of each confidence (its float64 arithmetic)."""
    return np.minimum((confidence.astype(np.float64) * n_bins).astype(np.int64), n_bins - 1)


@lru_cache(maxsize=4)
def _bin_lookup(n_bins: int) -> np.ndarray:
    """Calibration bin of each fine interval [q, q + 1) / 65536, or _STRADDLES where the interval
    holds a bin edge (the bin function is monotone: equal bins at both ends = one bin)."""
    q = np.arange(_FINE, dtype=np.float64)
    low = (q / _FINE).astype(np.float32)
    high = np.nextafter(((q + 1) / _FINE).astype(np.float32), np.float32(0))
    high[-1] = np.float32(1.0)
    lo, hi = _old_bins(low, n_bins), _old_bins(high, n_bins)
    return np.where(lo == hi, lo, _STRADDLES).astype(np.uint8)


def _calibration_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    fine = np.multiply(confidence, np.float32(_FINE), dtype=np.float32)
    np.minimum(fine, np.float32(_FINE - 1), out=fine)
    bins = lookup_uint16(_bin_lookup(n_bins), fine.astype(np.uint16))
    straddling = np.flatnonzero(bins == _STRADDLES)
    bins[straddling] = _old_bins(confidence[straddling], n_bins)
    return bins


def _add_calibration(
    acc: CalibrationAccumulator, confidence: np.ndarray, g: np.ndarray, p: np.ndarray
) -> None:
    n = acc.n_bins
    bins = _calibration_bins(confidence, n)
    np.putmask(bins, g == VOID, np.uint8(n))  # void pixels: a bin of their own
    index = bins.astype(np.intp)  # bincount converts small integer types slowly
    sums = np.bincount(index, weights=confidence, minlength=n + 1)  # float64, pixel order
    # (bin, correct) codes, in place in `bins` while 2n + 1 fits a byte (bins is not used again)
    codes = bins.astype(np.uint16) if n > _MAX_BINS // 2 else bins
    codes <<= 1
    codes |= g == p
    counts = count_codes(codes, 2 * n + 2).reshape(n + 1, 2)
    acc.count += counts[:n].sum(1)
    acc.correct += counts[:n, 1]
    acc.conf_sum += sums[:n]
