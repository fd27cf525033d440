"""The per-pixel confidence written to `_conf.png`: how sure we are of the predicted class.

BRAVO scores one number per pixel twice: as confidence that the semantic prediction is right
(semantic metrics) and, reversed, as doubt that the pixel is in-distribution (OOD metrics).
Two rules are offered:

- ``scorer``: the model's own `confidence` output (PixOOD: the calibrated per-class score of
  the predicted class; baselines: their score), quantised to 16 bit.
- ``internimage``: the rule of the BRAVO 2024 winner InternImage-OOD (docs/evaluation.md §1.4): the
  pixels its detector flags as OOD get the confidence 0.0001 (level 6 of 65535), all others
  keep theirs. Here the detector is the model's anomaly score (flag = score ≥ threshold)
  instead of their per-class KMeans, and their bugs are fixed: the rule runs on every image at
  its own size (theirs resized to 2048x1024 and ran only on the OOD subsets, using knowledge of
  the subset a deployed system does not have), and it only ever lowers a confidence (a flagged
  pixel already below 0.0001 keeps its lower value instead of being raised). Their extra
  candidate gate "confidence < 0.5" only limited the KMeans work and is not applied: the
  anomaly score already is the OOD decision.
"""

from __future__ import annotations

import numpy as np

from pixood_ros.bravo.files import confidence_to_uint16
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

SCORER = "scorer"
INTERNIMAGE = "internimage"
CONFIDENCE_MODES = (SCORER, INTERNIMAGE)
#: InternImage-OOD's confidence for flagged pixels, and the uint16 level it wrote (int(), not round)
INTERNIMAGE_OOD_CONFIDENCE = 0.0001
INTERNIMAGE_OOD_LEVEL = int(INTERNIMAGE_OOD_CONFIDENCE * 65535)
#: model outputs may overshoot [0, 1] by float rounding (e.g. 1 - x); more than this is a bug
_TOLERANCE = 1e-5


def scorer_levels(confidence: np.ndarray) -> np.ndarray:
    """The model's float confidence in [0, 1] as uint16 levels round(c · 65535)."""
    confidence = np.asarray(confidence, dtype=np.float32)
    if not np.all(np.isfinite(confidence)):
        raise ValueError("the model's confidence output holds NaN or infinite values")
    if confidence.size and (confidence.min() < -_TOLERANCE or confidence.max() > 1.0 + _TOLERANCE):
        raise ValueError(
            "the model's confidence output leaves [0, 1] "
            f"({float(confidence.min()):.4g}..{float(confidence.max()):.4g})"
        )
    return confidence_to_uint16(np.clip(confidence, 0.0, 1.0))


def ood_flags(anomaly_score: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels the model calls out-of-distribution."""
    return np.asarray(anomaly_score) >= threshold


def internimage_levels(
    levels: np.ndarray, anomaly_score: np.ndarray, threshold: float
) -> np.ndarray:
    """InternImage-OOD's update: flagged pixels drop to level 6 (never raised), others kept."""
    levels = np.asarray(levels)
    if levels.dtype != np.uint16:
        raise ValueError(f"confidence levels must be uint16, got {levels.dtype}")
    flagged = ood_flags(anomaly_score, threshold)
    if flagged.shape != levels.shape:
        raise ValueError(f"anomaly score {flagged.shape} and confidence {levels.shape} differ")
    out = levels.copy()
    out[flagged] = np.minimum(out[flagged], INTERNIMAGE_OOD_LEVEL)
    return out


def confidence_levels(
    mode: str,
    confidence: np.ndarray,
    anomaly_score: np.ndarray,
    ood_threshold: float = DEFAULT_ANOMALY_THRESHOLD,
) -> np.ndarray:
    """uint16 `_conf.png` content for one image under the chosen rule."""
    levels = scorer_levels(confidence)
    if mode == SCORER:
        return levels
    if mode == INTERNIMAGE:
        return internimage_levels(levels, anomaly_score, ood_threshold)
    raise ValueError(f"unknown confidence rule {mode!r}; choose {' or '.join(CONFIDENCE_MODES)}")
