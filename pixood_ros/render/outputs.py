"""Turn one segmentation result into the node's output images (all at input resolution).

Every message carries the input header (stamp and frame_id), so message_filters, rviz2 and
bag evaluation can pair outputs with the camera frame they belong to.

This runs once per frame in the node's worker thread, between two model calls, so it is
written for speed (see `OutputImages`): the mask (`pictures.anomaly_mask`) is a comparison viewed
as bytes, the overlay (`overlay.render_overlay`: the camera image, flagged pixels coloured by
score) touches only the rows holding flagged pixels, and the node reuses its messages and
scratch buffers, because on a VM every fresh multi-megabyte array costs thousands of page faults
(~10 ms per 1280x720 frame here). Unit tests check both against their plain numpy formulas.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixood_ros.engine import SegmentationResult
from pixood_ros.image_conversion import array_to_image, image_message_layout
from pixood_ros.render.compressed import Compression, compressed_message
from pixood_ros.render.overlay import OverlayScratch, overlay_scratch, render_overlay
from pixood_ros.render.pictures import anomaly_mask

__all__ = ["ENCODINGS", "OutputImages", "anomaly_mask", "build_output_images", "render_overlay"]

# Output name -> encoding published (docs/architecture.md §5).
ENCODINGS = {
    "anomaly_score": "32FC1",
    "anomaly_mask": "mono8",
    "semantic": "mono8",
    "confidence": "32FC1",
    "overlay": "bgr8",
}


def build_output_images(
    outputs: tuple[str, ...] | list[str],
    rgb: np.ndarray | None,
    result: Any,
    header: Any,
    threshold: float,
    overlay_alpha: float,
    msg_type: type | None = None,
    overlay: np.ndarray | None = None,
) -> dict[str, Any]:
    """Image messages for the requested `outputs` (names of `ENCODINGS`), freshly allocated (for
    offline tools; the node reuses its messages through `OutputImages`). `overlay` is the BGR
    overlay when the caller has rendered it already (e.g. for a video); else it is rendered
    from `rgb`."""

    def overlay_pixels() -> np.ndarray:
        if overlay is not None:
            return overlay
        return render_overlay(rgb, result.anomaly_score, overlay_alpha, threshold)

    pictures = {
        "anomaly_score": lambda: result.anomaly_score,
        "anomaly_mask": lambda: anomaly_mask(result.anomaly_score, threshold),
        "semantic": lambda: result.semantic,
        "confidence": lambda: result.confidence,
        "overlay": overlay_pixels,
    }
    messages: dict[str, Any] = {}
    for name in outputs:
        if name not in pictures:
            raise ValueError(f"unknown output {name!r}; known: {list(ENCODINGS)}")
        pixels = pictures[name]()
        messages[name] = array_to_image(pixels, ENCODINGS[name], header, msg_type=msg_type)
    return messages


class OutputImages:
    """One camera's output messages, reused frame after frame (the node's fast path).

    rclpy copies a message into its C form inside `publish()`, so once that returned the same
    Python message can carry the next frame. Each output message owns one `data` buffer sized
    for the frame; `engine_buffers()` hands the anomaly score, semantic and confidence
    buffers to `Segmenter(rgb, out=...)`, so ONNX Runtime writes its results straight into the
    messages, and the mask and overlay are rendered into theirs: no per-frame copy or
    allocation of pixels. Not thread-safe: one frame's results are in one instance at a time
    (the node keeps a few per camera, so inference fills one while another is published).
    """

    def __init__(self, msg_type: type | None = None, compressed_type: type | None = None) -> None:
        self._msg_type = msg_type
        self._compressed_type = compressed_type
        self._rendered: dict[str, tuple[float, float]] = {}  # name -> (threshold, alpha)
        self._size: tuple[int, int] | None = None
        self._messages: dict[str, Any] = {}
        self._pixels: dict[str, np.ndarray] = {}
        self._scratch: OverlayScratch | None = None
        self._engine: SegmentationResult | None = None

    def engine_buffers(self, height: int, width: int) -> SegmentationResult:
        """Buffers for the engine's results of a `height` x `width` frame (views of messages);
        taking them starts a new frame (the mask and overlay are rendered again)."""
        if self._size != (height, width):
            self._allocate(height, width)
        self._rendered.clear()
        assert self._engine is not None
        return self._engine

    def _allocate(self, height: int, width: int) -> None:
        self._messages.clear()
        self._pixels.clear()
        for name, encoding in ENCODINGS.items():
            message, pixels = image_message_layout(height, width, encoding, self._msg_type)
            self._messages[name], self._pixels[name] = message, pixels
        self._scratch = overlay_scratch(height, width)
        self._engine = SegmentationResult(
            anomaly_score=self._pixels["anomaly_score"],
            semantic=self._pixels["semantic"],
            confidence=self._pixels["confidence"],
        )
        self._size = (height, width)

    def pixels(
        self, name: str, rgb: np.ndarray, threshold: float, overlay_alpha: float
    ) -> np.ndarray:
        """The pixels of output `name` for the frame in `engine_buffers`, the mask and overlay
        rendered on first use with these settings (a raw and a compressed subscriber share one
        rendering)."""
        if self._size is None or name not in self._messages:
            raise ValueError(f"unknown output {name!r} or no frame yet; known: {list(ENCODINGS)}")
        pixels = self._pixels[name]
        if self._rendered.get(name) == (threshold, overlay_alpha):
            return pixels
        if name == "anomaly_mask":
            anomaly_mask(self._pixels["anomaly_score"], threshold, out=pixels)
        elif name == "overlay":
            render_overlay(
                rgb,
                self._pixels["anomaly_score"],
                overlay_alpha,
                threshold,
                out=pixels,
                scratch=self._scratch,
            )
        self._rendered[name] = (threshold, overlay_alpha)
        return pixels

    def message(
        self, name: str, rgb: np.ndarray, header: Any, threshold: float, overlay_alpha: float
    ) -> Any:
        """The message of output `name` for the frame whose results are in `engine_buffers`."""
        self.pixels(name, rgb, threshold, overlay_alpha)
        message = self._messages[name]
        message.header = header
        return message

    def compressed(
        self,
        name: str,
        rgb: np.ndarray,
        header: Any,
        threshold: float,
        overlay_alpha: float,
        compression: Compression,
    ) -> Any:
        """The CompressedImage of output `name` (one of `CODECS`) for the current frame."""
        pixels = self.pixels(name, rgb, threshold, overlay_alpha)
        return compressed_message(
            name, ENCODINGS[name], pixels, header, compression, self._compressed_type
        )
