"""Overlay images for the output bag's `overlay` topic and the optional overlay video.

The drawing itself belongs to `pixood_ros.visualize` (engine area, shared with pixood-infer and
the node); this module only adapts it to the evaluator and writes the video file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

OverlayFn = Callable[[np.ndarray, Any, float], np.ndarray]


def overlay_renderer(palette: list[list[int]]) -> OverlayFn | None:
    """(rgb, SegmentationResult, threshold) ▶ RGB overlay; None without pixood_ros.visualize."""
    try:
        from pixood_ros import visualize
    except ImportError:
        return None

    def render(rgb: np.ndarray, result: Any, threshold: float) -> np.ndarray:
        return visualize.overlay(
            rgb,
            result.anomaly_score,
            semantic=result.semantic,
            palette=palette,
            threshold=threshold,
        )

    return render


class OverlayVideo:
    """MP4 (mp4v) writer that opens lazily on the first frame, at the bag's recorded rate."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write video {self.path}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
