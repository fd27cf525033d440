"""Component-level anomaly metrics of SegmentMeIfYouCan (docs/evaluation.md §3.3): sIoU per ground-
truth component, PPV per predicted component, and F1 averaged over sIoU/PPV thresholds.

Why component metrics: pixel AP rewards large objects; a robot cares whether each obstacle is
found as an object and whether each alarm is real. Rules reproduced from the benchmark:
8-connected components; predictions inside void are cleared before labelling; predicted
components smaller than `min_pred_size` are deleted; ground-truth components smaller than
`min_gt_size` become void; everything is then counted inside the remaining region of interest.
Counts are summed over frames before F1 is formed; sIoU and PPV are averaged per component.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ._inputs import ArrayOrList, as_pairs, binary_labels, check_finite_scores
from .pixel import pixel_metrics

#: (min predicted component size, min ground-truth component size) per SMIYC track.
TRACK_SIZE_FILTERS: dict[str, tuple[int, int]] = {"anomaly": (500, 100), "obstacle": (50, 10)}
#: τ ∈ {0.25, 0.30, …, 0.75}
SIOU_THRESHOLDS: np.ndarray = np.linspace(0.25, 0.75, 11)


@dataclass
class FrameComponents:
    """Per-component results of one image (inside the region of interest)."""

    siou: np.ndarray  # one value per ground-truth component
    ppv: np.ndarray  # one value per predicted component
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components: (count incl. background, label image, areas)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    return n, labels, stats[:, cv2.CC_STAT_AREA].astype(np.int64)


def frame_components(
    pred_mask: np.ndarray,
    labels: np.ndarray,
    *,
    min_pred_size: int = 0,
    min_gt_size: int = 0,
    ignore_index: int = 255,
) -> FrameComponents:
    """sIoU of every GT component and PPV of every predicted component of one image.

    pred_mask: HxW bool (predicted anomaly); labels: HxW with 0 / 1 / `ignore_index`.
    sIoU(k) = |k ∩ P̂(k)| / (|P̂(k)| + |k| − |k ∩ P̂(k)| − |P̂(k) ∩ A(k)|), with P̂(k) the
    predicted components touching k and A(k) the other GT components; this simplifies to
    |k ∩ P̂(k)| / (|k| + |P̂(k) ∩ background|), which is what is computed.
    PPV(j) = |j ∩ GT anomaly| / |j|.
    """
    pred_mask = np.asarray(pred_mask)
    labels = np.asarray(labels)
    if pred_mask.ndim != 2 or pred_mask.shape != labels.shape:
        raise ValueError(
            f"component metrics need 2-D images of equal shape; got prediction {pred_mask.shape} "
            f"and labels {labels.shape}"
        )
    keep, _ = binary_labels(labels, ignore_index)
    anomaly_gt = keep & (labels == 1)
    pred = pred_mask.astype(bool) & keep

    n_pred, pred_cc, pred_area = _components(pred)
    if min_pred_size > 0:
        small = np.flatnonzero(pred_area < min_pred_size)
        small = small[small > 0]
        if small.size:
            pred_cc = np.where(np.isin(pred_cc, small), 0, pred_cc)
    n_gt, gt_cc, gt_area = _components(anomaly_gt)
    roi = keep.copy()
    if min_gt_size > 0:
        tiny = np.flatnonzero(gt_area < min_gt_size)
        tiny = tiny[tiny > 0]
        if tiny.size:
            roi &= ~np.isin(gt_cc, tiny)

    g = gt_cc[roi].astype(np.int64)
    p = pred_cc[roi].astype(np.int64)
    # sparse contingency table between GT components (rows) and predicted components (cols)
    codes, counts = np.unique(g * n_pred + p, return_counts=True)
    gi, pj = codes // n_pred, codes % n_pred
    pred_size = np.bincount(pj, weights=counts, minlength=n_pred)
    gt_size = np.bincount(gi, weights=counts, minlength=n_gt)
    pred_on_gt = np.bincount(pj[gi > 0], weights=counts[gi > 0], minlength=n_pred)
    pred_on_background = pred_size - pred_on_gt

    touching = (gi > 0) & (pj > 0)
    inter = np.bincount(gi[touching], weights=counts[touching], minlength=n_gt)
    extra = np.bincount(gi[touching], weights=pred_on_background[pj[touching]], minlength=n_gt)

    gt_ids = np.flatnonzero(gt_size > 0)
    gt_ids = gt_ids[gt_ids > 0]
    pred_ids = np.flatnonzero(pred_size > 0)
    pred_ids = pred_ids[pred_ids > 0]
    siou = inter[gt_ids] / (gt_size[gt_ids] + extra[gt_ids])
    ppv = pred_on_gt[pred_ids] / pred_size[pred_ids]
    return FrameComponents(
        siou=siou,
        ppv=ppv,
        gt_sizes=gt_size[gt_ids].astype(np.int64),
        pred_sizes=pred_size[pred_ids].astype(np.int64),
    )


@dataclass
class ComponentMetricAccumulator:
    """Collects per-frame components and forms the data-set-level SMIYC numbers.

    `threshold`: predicted anomaly = score > threshold (strict, as the benchmark), or
    score >= threshold with ``inclusive=True`` (matches `pixel_metrics`' best_f1_threshold).
    """

    threshold: float
    track: str = "anomaly"
    min_pred_size: int | None = None
    min_gt_size: int | None = None
    ignore_index: int = 255
    inclusive: bool = False
    siou_thresholds: np.ndarray = field(default_factory=lambda: SIOU_THRESHOLDS.copy())
    frames: list[FrameComponents] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.track not in TRACK_SIZE_FILTERS:
            raise ValueError(f"track must be one of {sorted(TRACK_SIZE_FILTERS)}: {self.track!r}")
        pred_default, gt_default = TRACK_SIZE_FILTERS[self.track]
        self.min_pred_size = pred_default if self.min_pred_size is None else int(self.min_pred_size)
        self.min_gt_size = gt_default if self.min_gt_size is None else int(self.min_gt_size)
        if not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number, got {self.threshold}")

    def update(self, scores: ArrayOrList, labels: ArrayOrList) -> None:
        """Add one HxW score map (or a list / NxHxW stack of them) with its labels."""
        for s, lab in _images(scores, labels):
            check_finite_scores(s)
            mask = s >= self.threshold if self.inclusive else s > self.threshold
            self.update_mask(mask, lab)

    def update_mask(self, pred_mask: np.ndarray, labels: np.ndarray) -> None:
        """Add one already-thresholded HxW prediction mask."""
        self.frames.append(
            frame_components(
                pred_mask,
                labels,
                min_pred_size=self.min_pred_size,
                min_gt_size=self.min_gt_size,
                ignore_index=self.ignore_index,
            )
        )

    def compute(self) -> dict[str, float]:
        """``siou`` (mean over GT components), ``ppv`` (mean over predicted components),
        ``f1_mean`` and per-τ ``tp_XX`` / ``fn_XX`` / ``fp_XX`` / ``f1_XX`` (XX = round(100τ)).
        Means over zero components and F1 with 2TP+FN+FP = 0 are NaN."""
        siou = np.concatenate([f.siou for f in self.frames]) if self.frames else np.zeros(0)
        ppv = np.concatenate([f.ppv for f in self.frames]) if self.frames else np.zeros(0)
        out: dict[str, float] = {
            "siou": float(siou.mean()) if siou.size else float("nan"),
            "ppv": float(ppv.mean()) if ppv.size else float("nan"),
            "n_gt_components": int(siou.size),
            "n_pred_components": int(ppv.size),
            "threshold": float(self.threshold),
        }
        f1s = []
        for tau in self.siou_thresholds:
            tp = int(np.count_nonzero(siou >= tau))
            fn = int(siou.size - tp)
            fp = int(np.count_nonzero(ppv < tau))
            denom = 2 * tp + fn + fp
            f1 = 2 * tp / denom if denom else float("nan")
            key = int(round(tau * 100))
            out.update({f"tp_{key}": tp, f"fn_{key}": fn, f"fp_{key}": fp, f"f1_{key}": f1})
            f1s.append(f1)
        out["f1_mean"] = float(np.mean(f1s))
        return out


def _images(scores: ArrayOrList, labels: ArrayOrList):
    """Yield (HxW scores, HxW labels); an NxHxW array is a stack of N images."""
    for s, lab in as_pairs(scores, labels, "scores", "labels"):
        if s.ndim == 3:
            yield from zip(s, lab, strict=True)
        elif s.ndim == 2:
            yield s, lab
        else:
            raise ValueError(f"component metrics need HxW images or NxHxW stacks, not {s.shape}")


def component_metrics(
    scores: ArrayOrList,
    labels: ArrayOrList,
    threshold: float | None = None,
    *,
    track: str = "anomaly",
    min_pred_size: int | None = None,
    min_gt_size: int | None = None,
    ignore_index: int = 255,
) -> dict[str, float]:
    """SMIYC component metrics (sIoU, PPV, mean F1) over a set of images.

    threshold: predicted anomaly = score > threshold. None picks the benchmark's operating
    point, the data-set best-F1 threshold of the pixel curve (then score >= that threshold).
    track: "anomaly" (size filters 500 / 100 px) or "obstacle" (50 / 10 px); explicit
    `min_pred_size` / `min_gt_size` override the track's values (use 0 to disable them for
    small images).
    """
    inclusive = False
    if threshold is None:
        threshold = pixel_metrics(scores, labels, ignore_index)["best_f1_threshold"]
        inclusive = True
    acc = ComponentMetricAccumulator(
        threshold=float(threshold),
        track=track,
        min_pred_size=min_pred_size,
        min_gt_size=min_gt_size,
        ignore_index=ignore_index,
        inclusive=inclusive,
    )
    acc.update(scores, labels)
    return acc.compute()
