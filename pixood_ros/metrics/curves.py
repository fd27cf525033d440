"""Threshold curves and the numbers read off them (AP, AUROC, FPR at 95 % TPR, best F1).

Every pixel metric in this package, exact or binned, builds one `BinaryCurve` (one point per
distinct score, ties grouped, highest score first) and reads the metrics off it here, so the
exact, streaming and BRAVO paths cannot drift apart. Definitions follow docs/evaluation.md §3.2/§3.4
and §2.3: AP is the sklearn-style step sum Σ(Rₖ − Rₖ₋₁)·Pₖ, AUROC the trapezoid from (0, 0),
FPR95 the FPR at the first point whose TPR ≥ 0.95 (no interpolation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

OnDegenerate = Literal["raise", "nan"]


class DegenerateLabelsError(ValueError):
    """The labels hold no positives or no negatives, so a rate-based metric is undefined."""


@dataclass(frozen=True)
class BinaryCurve:
    """Cumulative counts at each distinct threshold, highest threshold first.

    A pixel counts as predicted positive at point k when its score is >= thresholds[k].
    """

    thresholds: np.ndarray
    tp: np.ndarray  # int64, non-decreasing, ends at n_pos
    fp: np.ndarray  # int64, non-decreasing, ends at n_neg
    n_pos: int
    n_neg: int


def curve_from_scores(scores: np.ndarray, positive: np.ndarray) -> BinaryCurve:
    """Exact curve from 1-D scores and boolean labels (ties grouped at distinct scores)."""
    order = np.argsort(scores, kind="stable")[::-1]
    sorted_scores = scores[order]
    sorted_pos = positive[order]
    # last index of every run of equal scores = one curve point
    ends = np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1])
    if sorted_scores.size:
        ends = np.append(ends, sorted_scores.size - 1)
    tp = np.cumsum(sorted_pos, dtype=np.int64)[ends]
    fp = (ends + 1) - tp
    n_pos = int(tp[-1]) if tp.size else 0
    n_neg = int(fp[-1]) if fp.size else 0
    return BinaryCurve(sorted_scores[ends], tp, fp.astype(np.int64), n_pos, n_neg)


def curve_from_histograms(
    pos_counts: np.ndarray, neg_counts: np.ndarray, thresholds: np.ndarray
) -> BinaryCurve:
    """Curve from per-level counts given in ascending level order (levels with no pixels are
    dropped: they would add duplicate points that change no metric)."""
    pos_counts = np.asarray(pos_counts, dtype=np.int64).ravel()
    neg_counts = np.asarray(neg_counts, dtype=np.int64).ravel()
    thresholds = np.asarray(thresholds).ravel()
    if not (pos_counts.size == neg_counts.size == thresholds.size):
        raise ValueError("pos_counts, neg_counts and thresholds must have the same length")
    if np.any(pos_counts < 0) or np.any(neg_counts < 0):
        raise ValueError("counts must be non-negative")
    used = (pos_counts + neg_counts) > 0
    pos, neg, thr = pos_counts[used][::-1], neg_counts[used][::-1], thresholds[used][::-1]
    tp = np.cumsum(pos)
    fp = np.cumsum(neg)
    n_pos = int(tp[-1]) if tp.size else 0
    n_neg = int(fp[-1]) if fp.size else 0
    return BinaryCurve(thr, tp, fp, n_pos, n_neg)


def _undefined(name: str, reason: str, on_degenerate: OnDegenerate) -> float:
    if on_degenerate == "raise":
        raise DegenerateLabelsError(f"{name} is undefined: {reason}")
    warnings.warn(f"{name} is undefined ({reason}); returning NaN", RuntimeWarning, stacklevel=3)
    return float("nan")


def average_precision(curve: BinaryCurve, on_degenerate: OnDegenerate = "raise") -> float:
    """Σ (Rₖ − Rₖ₋₁)·Pₖ from R₀ = 0; equals sklearn.metrics.average_precision_score."""
    if curve.n_pos == 0:
        return _undefined("AP", "no positive (anomaly) pixels", on_degenerate)
    recall = curve.tp / curve.n_pos
    precision = curve.tp / (curve.tp + curve.fp)  # every point holds >= 1 pixel, never 0/0
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def auroc(curve: BinaryCurve, on_degenerate: OnDegenerate = "raise") -> float:
    """Trapezoid area under (FPR, TPR) starting at (0, 0); equals sklearn roc_auc_score."""
    if curve.n_pos == 0 or curve.n_neg == 0:
        missing = "positive (anomaly)" if curve.n_pos == 0 else "negative (in-distribution)"
        return _undefined("AUROC", f"no {missing} pixels", on_degenerate)
    tpr = np.concatenate([[0.0], curve.tp / curve.n_pos])
    fpr = np.concatenate([[0.0], curve.fp / curve.n_neg])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def fpr_at_tpr(
    curve: BinaryCurve, tpr_level: float = 0.95, on_degenerate: OnDegenerate = "raise"
) -> tuple[float, float, float]:
    """(FPR, TPR, threshold) at the first curve point with TPR >= tpr_level, no interpolation.

    Compared in integers (tp >= level·P) for the usual 0.95 so that e.g. 19/20 counts as 95 %.
    """
    if curve.n_pos == 0 or curve.n_neg == 0:
        missing = "positive (anomaly)" if curve.n_pos == 0 else "negative (in-distribution)"
        nan = _undefined(f"FPR@{tpr_level:.0%}TPR", f"no {missing} pixels", on_degenerate)
        return nan, nan, nan
    if tpr_level <= 0.0:
        return 0.0, 0.0, float("inf")  # the prepended (0, 0) point
    if tpr_level == 0.95:
        reached = 20 * curve.tp >= 19 * curve.n_pos
    else:
        reached = curve.tp / curve.n_pos >= tpr_level
    k = int(np.argmax(reached))  # TPR reaches 1 at the last point, so some point qualifies
    return (
        float(curve.fp[k] / curve.n_neg),
        float(curve.tp[k] / curve.n_pos),
        float(curve.thresholds[k]),
    )


def best_f1(curve: BinaryCurve, on_degenerate: OnDegenerate = "raise") -> tuple[float, float]:
    """(max F1, its threshold) over curve points; F1 = 2TP / (2TP + FP + FN)."""
    if curve.n_pos == 0:
        nan = _undefined("best F1", "no positive (anomaly) pixels", on_degenerate)
        return nan, nan
    f1 = 2 * curve.tp / (curve.tp + curve.fp + curve.n_pos)
    k = int(np.argmax(f1))
    return float(f1[k]), float(curve.thresholds[k])


def summarize_curve(curve: BinaryCurve, on_degenerate: OnDegenerate = "raise") -> dict[str, float]:
    """All pixel-level numbers of one curve, in the dict layout `pixel_metrics` returns."""
    if on_degenerate not in ("raise", "nan"):
        raise ValueError(f"on_degenerate must be 'raise' or 'nan', got {on_degenerate!r}")
    if curve.n_pos + curve.n_neg == 0:
        raise DegenerateLabelsError("no labelled pixels (all are void or the input is empty)")
    fpr95, tpr95, thr95 = fpr_at_tpr(curve, 0.95, on_degenerate)
    f1, f1_thr = best_f1(curve, on_degenerate)
    return {
        "ap": average_precision(curve, on_degenerate),
        "auroc": auroc(curve, on_degenerate),
        "fpr95": fpr95,
        "fpr95_tpr": tpr95,
        "fpr95_threshold": thr95,
        "best_f1": f1,
        "best_f1_threshold": f1_thr,
        "n_pos": curve.n_pos,
        "n_neg": curve.n_neg,
    }
