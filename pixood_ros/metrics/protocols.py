"""Which protocol turns score maps into the anomaly table's numbers (docs/evaluation.md §3.7):

- `exact` (default): exact pixel curve over all scored pixels at float32 (`pixel_metrics`),
  components at its best-F1 threshold with `score >= threshold`;
- `smiyc`: the SMIYC toolkit's float16 storage, per-frame percentile bins and trapezoid areas
  (`smiyc`), components at its binned best-F1 threshold with `score > threshold`.
"""

from __future__ import annotations

import numpy as np

from ._inputs import ArrayOrList, as_pairs
from .components import ComponentMetricAccumulator
from .pixel import pixel_metrics
from .smiyc import smiyc_pixel_metrics, stored

PROTOCOLS = ("exact", "smiyc")
DEFAULT_PROTOCOL = "exact"


def anomaly_metrics(
    scores: ArrayOrList,
    labels: ArrayOrList,
    protocol: str = DEFAULT_PROTOCOL,
    *,
    track: str = "anomaly",
    min_pred_size: int | None = None,
    min_gt_size: int | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """(pixel metrics, component metrics) of per-image score maps under `protocol`; the
    component threshold is reported in score units either way."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    smiyc = protocol == "smiyc"
    pixel = smiyc_pixel_metrics(scores, labels) if smiyc else pixel_metrics(scores, labels)
    acc = ComponentMetricAccumulator(
        threshold=pixel["best_f1_stored"] if smiyc else pixel["best_f1_threshold"],
        track=track,
        min_pred_size=min_pred_size,
        min_gt_size=min_gt_size,
        inclusive=not smiyc,
    )
    for s, lab in as_pairs(scores, labels, "scores", "labels"):
        acc.update(stored(s) if smiyc else np.asarray(s), lab)
    components = acc.compute()
    components["threshold"] = pixel["best_f1_threshold"]
    return pixel, components
