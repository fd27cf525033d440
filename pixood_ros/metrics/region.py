"""Which pixels an anomaly evaluation scores: every labelled pixel, or only the model's eval-label
classes (e.g. road + sidewalk) plus the anomalies.

A model whose eval labels are a subset of its classes answers "is this pixel drivable surface?",
so, like SMIYC's obstacle track (ROI = the drivable area), it is not penalised for calling a
building "not road". One definition for every tool (pixood-bag-eval offline and live, the demo,
pixood-benchmark; `pixood-train`'s decide stage uses the same rule): an anomaly pixel (1) stays an
anomaly, a normal pixel (0) whose semantic ground truth is one of the classes stays normal, every
other pixel becomes void (255).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixood_ros.lookup import lookup_uint8

ALL = "all"
EVAL_LABELS = "eval-labels"
AUTO = "auto"
REGIONS = (AUTO, ALL, EVAL_LABELS)
VOID = 255
_NOT_NORMAL = np.full(256, VOID, np.uint8)
_NOT_NORMAL[0] = 0


def spelling(text: str) -> str:
    """Canonical spelling (argparse `type=`, then `choices=REGIONS` checks it); the older
    `eval_labels` still works."""
    return text.strip().lower().replace("_", "-")


def region_name(text: str) -> str:
    """Canonical region name; ValueError for an unknown one."""
    name = spelling(text)
    if name not in REGIONS:
        raise ValueError(f"unknown region {text!r}; choose one of {', '.join(REGIONS)}")
    return name


def restrict_labels(
    ood: np.ndarray, semantic_gt: np.ndarray | None, classes: Sequence[int] | None
) -> np.ndarray:
    """OOD labels (0 / 1 / 255) with every non-anomalous pixel outside `classes` made void;
    `classes=None` returns the labels unchanged."""
    if classes is None:
        return ood
    if semantic_gt is None:
        raise ValueError("scoring only the eval-label region needs semantic ground truth")
    if semantic_gt.shape != ood.shape:
        raise ValueError(
            f"semantic ground truth {semantic_gt.shape} and OOD labels {ood.shape} differ in shape"
        )
    if ood.dtype == np.uint8 and semantic_gt.dtype == np.uint8:
        return _restrict_uint8(ood, semantic_gt, classes)
    inside = np.isin(semantic_gt, np.asarray(classes, dtype=np.int64))
    return np.where(ood == 1, 1, np.where(inside & (ood == 0), 0, VOID)).astype(np.uint8)


def _restrict_uint8(ood: np.ndarray, semantic_gt: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The same labels from two 256-entry lookups (uint8 maps, the bag tools' case) instead of
    float64-sized temporaries."""
    outside = np.full(256, VOID, np.uint8)
    outside[[c for c in classes if 0 <= c < 256]] = 0
    labels = lookup_uint8(outside, semantic_gt)  # 0 inside the classes, 255 outside
    labels |= lookup_uint8(_NOT_NORMAL, ood)  # void unless the pixel is labelled normal
    np.putmask(labels, ood == 1, np.uint8(1))
    return labels


@dataclass(frozen=True)
class ScoredRegion:
    """The region chosen for one evaluation and why (reports print both)."""

    name: str  # ALL or EVAL_LABELS
    classes: tuple[int, ...] | None  # None = every labelled pixel
    reason: str

    def restrict(self, ood: np.ndarray, semantic_gt: np.ndarray | None) -> np.ndarray:
        return restrict_labels(ood, semantic_gt, self.classes)

    def describe(self, class_names: Sequence[str] = ()) -> str:
        if self.classes is None:
            return "all labelled pixels"
        names = ", ".join(class_names[c] if c < len(class_names) else str(c) for c in self.classes)
        return f"{names} and anomaly pixels (the model's eval labels; SMIYC obstacle-track style)"

    def as_dict(self, class_names: Sequence[str] = ()) -> dict[str, object]:
        return {
            "name": self.name,
            "classes": list(self.classes) if self.classes is not None else None,
            "scored_pixels": self.describe(class_names),
            "reason": self.reason,
        }


def choose_region(
    requested: str,
    eval_labels: Sequence[int],
    num_classes: int,
    has_semantic_gt: bool = True,
) -> ScoredRegion:
    """Resolve `auto` / `all` / `eval-labels` for a model; ValueError when `eval-labels` is asked
    for but cannot be honoured (no semantic ground truth, or the model has no eval labels).

    auto = eval-labels when the model's eval labels are a proper subset of its classes and
    semantic ground truth is available, else all."""
    name = region_name(requested)
    labels = tuple(int(c) for c in eval_labels)
    subset = 0 < len(labels) < num_classes
    if name == ALL:
        return ScoredRegion(ALL, None, "requested (all)")
    if name == EVAL_LABELS:
        if not labels:
            raise ValueError("the eval-labels region needs a model with eval labels; it has none")
        if not has_semantic_gt:
            raise ValueError("the eval-labels region needs semantic ground truth; there is none")
        return ScoredRegion(EVAL_LABELS, labels, "requested (eval-labels)")
    if not subset:
        return ScoredRegion(
            ALL, None, f"auto: the model's eval labels cover all {num_classes} classes"
        )
    if not has_semantic_gt:
        return ScoredRegion(
            ALL, None, "auto: the model has restricted eval labels but there is no semantic "
            "ground truth to find them",
        )  # fmt: skip
    return ScoredRegion(
        EVAL_LABELS,
        labels,
        f"auto: the model's eval labels are {len(labels)} of its {num_classes} classes and "
        "semantic ground truth is available",
    )
