"""Inference overlapped with publishing: two threads joined by a bounded hand-over.

Rendering the overlay and handing 12 MB of outputs per 1280x720 frame to DDS took a third of a
frame while the model waited. Now the inference thread only decodes the newest frame from the
camera mailbox and runs the model into one of the camera's output sets, and hands the result
over; the publisher thread computes the anomaly mode's score, renders and publishes while the
next frame is already in the model (ONNX Runtime releases the GIL while it runs).

The hand-over is itself a latest-frame mailbox: one slot per camera, so memory cannot grow. When
publishing falls behind, a result still waiting is replaced by the newer one and discarded (its
output set goes back to the camera, the frame counts as a drop), just as the camera mailbox
drops frames the model had no time for. One publisher thread keeps the outputs of a frame
together and the frames of a camera in order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixood_ros.node.channels import OutputSet
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.worker import FrameWorker


@dataclass
class FrameResult:
    """One frame's model results (in `outputs`) on their way to the publisher thread."""

    outputs: OutputSet
    mode: str  # the anomaly mode when the frame went into the model
    rgb: np.ndarray  # the decoded camera image, for the overlay
    header: Any  # the camera frame's header, put on every output
    received: float  # time.monotonic() when the frame arrived


Infer = Callable[[Hashable, Any], FrameResult | None]
Deliver = Callable[[Hashable, FrameResult], None]


class FramePipeline:
    """camera mailbox -> inference thread -> hand-over (one slot per camera) -> publisher thread.

    `infer(key, frame)` returns the frame's result or None (bad frame, failed inference);
    `publish(key, result)` publishes it; `discard(key, result)` gets every result that will
    not be published (replaced in the hand-over, or waiting when the pipeline stops). Both
    callbacks must return the result's output set to its camera.
    """

    def __init__(
        self, inbox: LatestFrameMailbox, infer: Infer, publish: Deliver, discard: Deliver
    ) -> None:
        self._infer, self._discard = infer, discard
        self._handover = LatestFrameMailbox()
        self._inference = FrameWorker(inbox, self._infer_and_hand_over, "pixood_inference")
        self._publisher = FrameWorker(self._handover, publish, "pixood_publisher")

    def _infer_and_hand_over(self, key: Hashable, frame: Any) -> None:
        result = self._infer(key, frame)
        if result is None:
            return
        replaced = self._handover.swap(key, result)
        if replaced is not None:
            self._discard(key, replaced)

    def start(self) -> None:
        self._publisher.start()
        self._inference.start()

    def stop(self) -> None:
        """Finish the frame in the model and the one being published; frames waiting for the
        model are dropped, results waiting for the publisher discarded."""
        self._inference.stop()
        for key, result in self._publisher.stop():
            self._discard(key, result)

    def waiting_results(self) -> int:
        """Results handed over and not yet taken by the publisher (at most one per camera)."""
        return self._handover.pending()
