"""The optional overlay video of an evaluation: the node's `~/overlay` image
(`pixood_ros.render.outputs.render_overlay`) for every frame, at the bag's recorded rate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pixood_ros.render.outputs import render_overlay


class OverlayVideo:
    """MP4 (mp4v) writer that opens on the first frame (the size is known only then)."""

    def __init__(self, path: Path, fps: float, alpha: float) -> None:
        self.path = path
        self.fps = fps
        self.alpha = alpha
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray, anomaly_score: np.ndarray) -> None:
        bgr = render_overlay(rgb, anomaly_score, self.alpha)
        if self._writer is None:
            height, width = bgr.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write video {self.path}")
        self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
