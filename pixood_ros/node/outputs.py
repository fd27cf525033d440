"""Turn one segmentation result into the node's output images (all at input resolution).

Every message carries the input header (stamp and frame_id), so message_filters, rviz2 and
bag evaluation can pair outputs with the camera frame they belong to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixood_ros.image_conversion import array_to_image

ANOMALY_TINT_RGB = np.array([255.0, 0.0, 0.0], dtype=np.float32)

# Output name -> encoding published (DESIGN.md §5).
ENCODINGS = {
    "anomaly_score": "32FC1",
    "anomaly_mask": "mono8",
    "semantic": "mono8",
    "confidence": "32FC1",
    "overlay": "bgr8",
}


def anomaly_mask(anomaly_score: np.ndarray, threshold: float) -> np.ndarray:
    """0/255 mono8 mask: 255 where the score is at or above `threshold`."""
    return np.where(anomaly_score >= np.float32(threshold), np.uint8(255), np.uint8(0))


def render_overlay(rgb: np.ndarray, anomaly_score: np.ndarray, alpha: float) -> np.ndarray:
    """BGR camera image tinted red in proportion to the anomaly score (for rviz)."""
    weight = (np.float32(alpha) * np.clip(anomaly_score, 0.0, 1.0))[:, :, None]
    tinted = rgb.astype(np.float32) * (1.0 - weight) + ANOMALY_TINT_RGB * weight
    return np.ascontiguousarray(np.rint(tinted).astype(np.uint8)[:, :, ::-1])


def build_output_images(
    outputs: tuple[str, ...] | list[str],
    rgb: np.ndarray,
    result: Any,
    header: Any,
    threshold: float,
    overlay_alpha: float,
    msg_type: type | None = None,
) -> dict[str, Any]:
    """Image messages for the requested `outputs` (names of `ENCODINGS`)."""
    messages: dict[str, Any] = {}
    for name in outputs:
        if name == "anomaly_score":
            pixels = result.anomaly_score
        elif name == "anomaly_mask":
            pixels = anomaly_mask(result.anomaly_score, threshold)
        elif name == "semantic":
            pixels = result.semantic
        elif name == "confidence":
            pixels = result.confidence
        elif name == "overlay":
            pixels = render_overlay(rgb, result.anomaly_score, overlay_alpha)
        else:
            raise ValueError(f"unknown output {name!r}; known: {list(ENCODINGS)}")
        messages[name] = array_to_image(pixels, ENCODINGS[name], header, msg_type=msg_type)
    return messages
