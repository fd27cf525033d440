"""Evaluation metrics for pixel-level anomaly detection and semantic segmentation (numpy +
OpenCV only, so robots and CI can evaluate without PyTorch).

- pixel level (exact / streaming): `pixel_metrics`, `PixelMetricAccumulator`,
  `ExactPixelMetricAccumulator`
- component level (SMIYC): `component_metrics`, `ComponentMetricAccumulator`, `frame_components`
- semantic: `miou`, `per_class_iou`, `confusion_matrix`, `ConfusionMatrixAccumulator`, `ece`,
  `CalibrationAccumulator`
- BRAVO challenge: `pixood_ros.metrics.bravo` (metrics, sampling, aggregation); the submission
  files and their evaluation live in `pixood_ros.bravo`
"""

from __future__ import annotations

from . import bravo
from .components import (
    SIOU_THRESHOLDS,
    TRACK_SIZE_FILTERS,
    ComponentMetricAccumulator,
    FrameComponents,
    component_metrics,
    frame_components,
)
from .curves import BinaryCurve, DegenerateLabelsError
from .pixel import ExactPixelMetricAccumulator, PixelMetricAccumulator, pixel_metrics
from .semantic import (
    CalibrationAccumulator,
    ConfusionMatrixAccumulator,
    confusion_matrix,
    ece,
    iou_from_confusion,
    miou,
    per_class_iou,
)

__all__ = [
    "SIOU_THRESHOLDS",
    "TRACK_SIZE_FILTERS",
    "BinaryCurve",
    "CalibrationAccumulator",
    "ComponentMetricAccumulator",
    "ConfusionMatrixAccumulator",
    "DegenerateLabelsError",
    "ExactPixelMetricAccumulator",
    "FrameComponents",
    "PixelMetricAccumulator",
    "bravo",
    "component_metrics",
    "confusion_matrix",
    "ece",
    "frame_components",
    "iou_from_confusion",
    "miou",
    "per_class_iou",
    "pixel_metrics",
]
