"""One frame of semantic ground truth into both semantic accumulators (confusion matrix and
calibration) with a few `bincount`s over combined integer codes, instead of separate float64
passes; the accumulated numbers are bit-for-bit those of `ConfusionMatrixAccumulator.update` and
`CalibrationAccumulator.update` on the non-void pixels.

Why the sums stay identical: `CalibrationAccumulator` sums each bin's confidences in float64, in
pixel order. A float32 confidence of a bin above the first (>= 1/15 > 2**-4) is a multiple of
2**-27 below 1, so with fewer than 2**25 pixels every partial sum is exact in float64: any
order gives the same number, here an integer sum of confidence * 2**27 split in two histograms.
The first bin (tiny confidences are finer than 2**-27) is summed in pixel order as before.
Anything else (other dtypes, more than 15 calibration bins, confidences outside [0, 1]) takes the
accumulators' own path with its own errors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .semantic import CalibrationAccumulator, ConfusionMatrixAccumulator

VOID = 255
_FINE = 1 << 16  # confidence quantisation of the bin lookup (exact in float32)
_SCALE_BITS = 27  # a confidence >= 2**-4 is a multiple of 2**-27
_LO_BITS = 13
_MAX_BINS = 15
_MAX_PIXELS = 1 << 25
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
    pairs = np.bincount((g.astype(np.uint16) << 8) | p, minlength=1 << 16).reshape(256, 256)
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
    if confidence.dtype != np.float32 or not 0 < confidence.size < _MAX_PIXELS:
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
    bins = _bin_lookup(n_bins)[fine.astype(np.uint16)]
    straddling = np.flatnonzero(bins == _STRADDLES)
    bins[straddling] = _old_bins(confidence[straddling], n_bins)
    return bins


def _add_calibration(
    acc: CalibrationAccumulator, confidence: np.ndarray, g: np.ndarray, p: np.ndarray
) -> None:
    n = acc.n_bins
    group = _calibration_bins(confidence, n)
    group <<= 1
    group |= (g == p).view(np.uint8)  # 2 * bin + correct
    np.putmask(group, g == VOID, np.uint8(2 * n))  # void pixels: a group of their own
    scaled = np.multiply(confidence, np.float32(1 << _SCALE_BITS), dtype=np.float32)
    fixed = scaled.astype(np.uint32)  # exact for every bin above the first
    hi_bits = _SCALE_BITS + 1 - _LO_BITS  # confidence 1.0 needs the extra bit
    key = group.astype(np.uint32) << hi_bits
    key |= fixed >> _LO_BITS
    high = np.bincount(key, minlength=(2 * n + 1) << hi_bits).reshape(2 * n + 1, -1)
    key = group.astype(np.uint32) << _LO_BITS
    key |= fixed & ((1 << _LO_BITS) - 1)
    low = np.bincount(key, minlength=(2 * n + 1) << _LO_BITS).reshape(2 * n + 1, -1)
    per_group = high.sum(1)[: 2 * n].reshape(n, 2)
    acc.count += per_group.sum(1)
    acc.correct += per_group[:, 1]
    total = (high @ np.arange(high.shape[1], dtype=np.int64)) << _LO_BITS
    total += low @ np.arange(low.shape[1], dtype=np.int64)
    sums = total[: 2 * n].reshape(n, 2).sum(1).astype(np.float64) / float(1 << _SCALE_BITS)
    first = np.flatnonzero(group < 2)  # the first bin, in pixel order as before
    sums[0] = np.bincount(np.zeros(first.size, np.intp), weights=confidence[first], minlength=1)[0]
    acc.conf_sum += sums
