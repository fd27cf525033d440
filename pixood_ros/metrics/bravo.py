"""BRAVO challenge metrics, computed the way the official toolkit does
(docs/evaluation.md §2.3–2.4), so that a local run on our own data predicts the leaderboard numbers.

Per subset: mIoU from a 19x19 confusion matrix over all non-void, valid pixels; curve metrics
on up to 100 000 sampled non-void pixels per image (seed 1), pooled in 65536-level histograms of
the uint16 confidence. Semantic group (suffix ``_valid``): mIoU, ECE (15 bins), AUROC, FPR@95,
AUPR-success and AUPR-error of "prediction correct" vs confidence. OOD group (suffix ``_ood``):
AUROC, AUPRC and FPR@95 of "pixel invalid" vs 65535 − confidence. The BRAVO Index is the
harmonic mean of the harmonic means of the two groups (smaller-is-better metrics enter as 1 − x).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .curves import auroc, average_precision, curve_from_histograms, fpr_at_tpr
from .semantic import confusion_matrix, iou_from_confusion

NUM_CLASSES = 19
CONF_LEVELS = 65536
SAMPLES_PER_IMAGE = 100_000
SAMPLING_SEED = 1
ECE_BINS = 15


@dataclass(frozen=True)
class SubsetSpec:
    """Which data and which metric groups make up one BRAVO subset."""

    split: str  # top folder bravo_<split>
    path_filter: str | None  # extra substring the image path must hold (ACDC conditions)
    semantic: bool
    ood: bool


SUBSETS: dict[str, SubsetSpec] = {
    "ACDCfog": SubsetSpec("ACDC", "/fog/", True, False),
    "ACDCrain": SubsetSpec("ACDC", "/rain/", True, False),
    "ACDCnight": SubsetSpec("ACDC", "/night/", True, False),
    "ACDCsnow": SubsetSpec("ACDC", "/snow/", True, False),
    "synrain": SubsetSpec("synrain", None, True, False),
    "SMIYC": SubsetSpec("SMIYC", None, False, True),
    "synobjs": SubsetSpec("synobjs", None, True, True),
    "synflare": SubsetSpec("synflare", None, True, False),
    "outofcontext": SubsetSpec("outofcontext", None, True, False),
}


def sample_indices(
    gt: np.ndarray, samples: int = SAMPLES_PER_IMAGE, seed: int = SAMPLING_SEED
) -> np.ndarray:
    """Sorted flat (row-major) indices of the pixels whose curve metrics count.

    All non-void (gt != 255) pixels when there are at most `samples`; otherwise `samples` of
    them drawn without replacement by NumPy's legacy generator seeded with `seed` for every
    image, exactly as the toolkit's `np.random.seed(1); np.random.choice(...)`.
    """
    non_void = np.flatnonzero(np.asarray(gt).ravel() != 255)
    if non_void.size > samples:
        non_void = np.sort(np.random.RandomState(seed).choice(non_void, samples, replace=False))
    return non_void


def _as_levels(conf: np.ndarray) -> np.ndarray:
    conf = np.asarray(conf)
    if conf.dtype != np.uint16:
        raise ValueError(f"BRAVO confidence must be uint16 (0..65535), got dtype {conf.dtype}")
    return conf.astype(np.int64)


def level_histograms(levels: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of positive and negative samples at each of the 65536 score levels."""
    levels = np.asarray(levels, dtype=np.int64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    pos = np.bincount(levels[positive], minlength=CONF_LEVELS)
    neg = np.bincount(levels[~positive], minlength=CONF_LEVELS)
    return pos, neg


def curve_metrics(pos_counts: np.ndarray, neg_counts: np.ndarray) -> dict[str, float]:
    """AUROC, FPR@95 and AUPRC of positives scored by level (higher level = more positive),
    plus AUPRC of the negatives scored by the reversed level (AUPR-error)."""
    levels = np.arange(pos_counts.size)
    curve = curve_from_histograms(pos_counts, neg_counts, levels)
    reversed_curve = curve_from_histograms(neg_counts[::-1], pos_counts[::-1], levels)
    return {
        "auroc": auroc(curve),
        "fpr95": fpr_at_tpr(curve, 0.95)[0],
        "auprc": average_precision(curve),
        "auprc_negative": average_precision(reversed_curve),
    }


def bravo_ece(correct_counts: np.ndarray, total_counts: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE from per-level counts: the 65536 levels are grouped into `bins` runs with boundaries
    round(linspace(0, 65536, bins + 1)); each run's confidence is the count-weighted mean level
    confidence (i + 0.5) / 65536."""
    total = np.asarray(total_counts, dtype=np.float64)
    correct = np.asarray(correct_counts, dtype=np.float64)
    n = total.sum()
    if n == 0:
        raise ValueError("ECE is undefined: no samples")
    starts = np.round(np.linspace(0, total.size, bins + 1)).astype(np.int64)[:-1]
    conf_values = (np.arange(total.size, dtype=np.float64) + 0.5) / total.size
    t = np.add.reduceat(total, starts)
    c = np.add.reduceat(correct, starts)
    w = np.add.reduceat(total * conf_values, starts)
    used = t > 0
    return float(np.sum(t[used] / n * np.abs(w[used] / t[used] - c[used] / t[used])))


class BravoSubsetAccumulator:
    """Accumulates one BRAVO subset image by image and computes its metric dict.

    update(gt, pred, conf, invalid): gt = trainIds with 255 void (for SMIYC the
    `_labels_semantic_fake` map), pred = uint8 trainIds 0..18, conf = uint16 confidence,
    invalid = the invalid / OOD mask (non-zero = invalid), all HxW at the image's size.
    """

    def __init__(self, semantic: bool = True, ood: bool = False, num_classes: int = NUM_CLASSES):
        if not (semantic or ood):
            raise ValueError("a BRAVO subset needs semantic metrics, OOD metrics or both")
        self.semantic, self.ood, self.num_classes = semantic, ood, num_classes
        self.cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.sem_pos = np.zeros(CONF_LEVELS, dtype=np.int64)  # correct, by conf level
        self.sem_neg = np.zeros(CONF_LEVELS, dtype=np.int64)
        self.ood_pos = np.zeros(CONF_LEVELS, dtype=np.int64)  # invalid, by 65535 - conf
        self.ood_neg = np.zeros(CONF_LEVELS, dtype=np.int64)
        self.n_images = 0

    @classmethod
    def for_subset(cls, name: str) -> BravoSubsetAccumulator:
        if name not in SUBSETS:
            raise ValueError(f"unknown BRAVO subset {name!r}; known: {', '.join(SUBSETS)}")
        spec = SUBSETS[name]
        return cls(semantic=spec.semantic, ood=spec.ood)

    def update(
        self,
        gt: np.ndarray,
        pred: np.ndarray,
        conf: np.ndarray,
        invalid: np.ndarray,
        sample: np.ndarray | None = None,
    ) -> None:
        """Add one image; `sample` = flat indices of sampled pixels (default `sample_indices`)."""
        gt, pred, invalid = np.asarray(gt), np.asarray(pred), np.asarray(invalid)
        levels = _as_levels(conf)
        shapes = {"gt": gt.shape, "pred": pred.shape, "conf": levels.shape}
        shapes["invalid"] = invalid.shape
        if len(set(shapes.values())) != 1 or gt.ndim != 2:
            raise ValueError(f"BRAVO inputs must be HxW maps of one shape, got {shapes}")
        if pred.size and (int(pred.min()) < 0 or int(pred.max()) >= self.num_classes):
            raise ValueError(
                f"pred holds ids outside 0..{self.num_classes - 1} "
                f"(range {int(pred.min())}..{int(pred.max())})"
            )
        gt, pred = gt.ravel(), pred.ravel()
        valid = invalid.ravel() == 0
        levels = levels.ravel()
        if sample is None:
            sample = sample_indices(gt)
        if self.semantic:
            full = (gt != 255) & valid
            self.cm += confusion_matrix(pred[full], gt[full], self.num_classes, ignore_index=None)
            s_valid = sample[valid[sample]]
            pos, neg = level_histograms(levels[s_valid], pred[s_valid] == gt[s_valid])
            self.sem_pos += pos
            self.sem_neg += neg
        if self.ood:
            doubt = CONF_LEVELS - 1 - levels[sample]
            pos, neg = level_histograms(doubt, ~valid[sample])
            self.ood_pos += pos
            self.ood_neg += neg
        self.n_images += 1

    def compute(self) -> dict[str, float | list[float]]:
        """Keys as the toolkit: miou_valid, iou_valid (list), ece_valid, auroc_valid,
        auprc_success_valid, auprc_error_valid, fpr95_valid; auroc_ood, auprc_ood, fpr95_ood."""
        if self.n_images == 0:
            raise ValueError("no images were added to the BRAVO subset")
        out: dict[str, float | list[float]] = {}
        if self.semantic:
            iou = iou_from_confusion(self.cm)
            sem = curve_metrics(self.sem_pos, self.sem_neg)
            out.update(
                miou_valid=float(np.nanmean(iou)),
                iou_valid=iou.tolist(),
                ece_valid=bravo_ece(self.sem_pos, self.sem_pos + self.sem_neg),
                auroc_valid=sem["auroc"],
                auprc_success_valid=sem["auprc"],
                auprc_error_valid=sem["auprc_negative"],
                fpr95_valid=sem["fpr95"],
            )
        if self.ood:
            ood = curve_metrics(self.ood_pos, self.ood_neg)
            out.update(auroc_ood=ood["auroc"], auprc_ood=ood["auprc"], fpr95_ood=ood["fpr95"])
        return out


def harmonic_mean(values: Iterable[float]) -> float:
    """Harmonic mean; any zero makes it zero (a metric at 0 sinks the index, as in BRAVO)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("harmonic mean of no values")
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"harmonic mean needs non-negative numbers, got {arr.tolist()}")
    if np.any(arr == 0):
        return 0.0
    return float(arr.size / np.sum(1.0 / arr))


def bravo_index(semantic_hmean: float, ood_hmean: float) -> float:
    """BRAVO Index = harmonic mean of the semantic and OOD harmonic means."""
    return harmonic_mean([semantic_hmean, ood_hmean])


def _aggregated(key: str, value: float) -> float:
    return 1.0 - value if ("_ece_" in key or "_fpr95_" in key) else value


def summarize(
    results: Mapping[str, object], subsets: Iterable[str] | None = None
) -> dict[str, float]:
    """Aggregate ``{subset}_{metric}`` scalars into semantic_hmean (all keys ending ``_valid``),
    ood_hmean (all keys ending ``_ood``), bravo_index, and each subset's own hmean (reported
    only, not part of the index). ECE and FPR95 enter as 1 − value. `subsets` names the
    subsets that get their own hmean (default: the BRAVO subsets; other data sets evaluated
    the BRAVO way, e.g. pixood-synth splits, pass their own names)."""
    scalars = {
        k: _aggregated(k, float(v))
        for k, v in results.items()
        if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
    }
    semantic = [v for k, v in scalars.items() if k.endswith("_valid")]
    ood = [v for k, v in scalars.items() if k.endswith("_ood")]
    if not semantic or not ood:
        raise ValueError("summarize needs both semantic (*_valid) and OOD (*_ood) metrics")
    out = {"semantic_hmean": harmonic_mean(semantic), "ood_hmean": harmonic_mean(ood)}
    out["bravo_index"] = bravo_index(out["semantic_hmean"], out["ood_hmean"])
    for subset in SUBSETS if subsets is None else subsets:
        own = [
            v
            for k, v in scalars.items()
            if k.startswith(f"{subset}_") and (k.endswith("_valid") or k.endswith("_ood"))
        ]
        if own:
            out[f"{subset}_hmean"] = harmonic_mean(own)
    return out
