"""One-pass score histograms of a frame: every histogram the evaluation keeps (the scored region's
and the whole frame's anomaly / in-distribution counts, and all pixels') from one `bincount` of
the quantised scores, instead of one float64 pass per histogram.

The fine bins are `PixelMetricAccumulator`'s (65536, bin = floor(score * 65536), 1.0 in the last
bin), computed in float32 where multiplying by a power of two is exact, so the pixel metrics are
the same numbers as that accumulator's. The 100-bin histogram of all pixels is summed from the
fine bins (fine bin b goes to coarse bin floor(100 b / 65536)): a score within 1/65536 above a
multiple of 1/100 may land one coarse bin lower than floor(100 * score) would put it.
"""

from __future__ import annotations

import numpy as np

from pixood_ros.bag.output_codec import SCORE_SCALE, quantise
from pixood_ros.metrics.code_counts import count_codes

FINE_BINS = SCORE_SCALE
VOID = 255
_NEG, _POS, _VOID = 0, 1, 2  # label codes; +3 for a pixel the region leaves out


def usable(scores: np.ndarray) -> bool:
    """Every score lies in [0, 1] (no NaN): the fast path applies. Otherwise callers take the
    accumulators' own path, which clips or raises exactly as before."""
    return scores.size == 0 or (float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0)


def fine_bins(scores: np.ndarray) -> np.ndarray:
    """Each score's fine bin (uint16), as `PixelMetricAccumulator` bins it."""
    return quantise(scores)


def valid_labels(labels: np.ndarray) -> bool:
    """Labels are 0, 1 or 255 only (others make the accumulators raise their own error)."""
    if labels.dtype != np.uint8:
        return False
    return not np.any((labels > 1) & (labels != VOID))


def all_pixels(bins: np.ndarray) -> np.ndarray:
    """Fine histogram of every pixel."""
    return count_codes(bins, FINE_BINS)


def labelled(
    bins: np.ndarray, ood: np.ndarray, region_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(region anomaly, region in-distribution, whole-frame anomaly, whole-frame
    in-distribution, every pixel) fine histograms; `region_labels` is `ood` with the pixels
    outside the scored region set void (or `ood` itself)."""
    code = np.minimum(ood, _VOID)
    if region_labels is not ood:
        left_out = (region_labels == VOID) & (ood != VOID)
        code += left_out.view(np.uint8) * np.uint8(3)
    key = code.astype(np.intp) << 16  # bincount converts small integer types slowly
    key |= bins
    counts = np.bincount(key.ravel(), minlength=6 * FINE_BINS).reshape(6, FINE_BINS)
    region_pos, region_neg = counts[_POS], counts[_NEG]
    whole_pos, whole_neg = region_pos + counts[_POS + 3], region_neg + counts[_NEG + 3]
    return region_pos, region_neg, whole_pos, whole_neg, counts.sum(0)


def coarse(fine: np.ndarray, bins: int) -> np.ndarray:
    """`bins` equal-width bins summed from a fine histogram."""
    index = (np.arange(FINE_BINS, dtype=np.int64) * bins) // FINE_BINS
    return np.bincount(index, weights=fine, minlength=bins).astype(np.int64)


def clipped(scores: np.ndarray, bins: int) -> np.ndarray:
    """`bins` equal-width bins of scores outside [0, 1] too (clipped into the end bins)."""
    idx = np.clip((scores.ravel() * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(idx, minlength=bins)
