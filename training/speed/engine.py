"""The runtime engine as the ROS node runs it (`pixood_ros.engine.Segmenter`, ONNX Runtime on the
CPU, outputs written into reused buffers), opened for timing at a given thread count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixood_ros.engine import SegmentationResult, Segmenter
from pixood_training.export.parity import parity_image


def open_engine(onnx_path: Path, threads: int) -> Segmenter:
    """CPU engine with `threads` intra-op threads (the sequential executor: no inter-op pool)."""
    return Segmenter(onnx_path, providers=["cpu"], warmup=False, intra_op_threads=threads)


def engine_frame(
    segmenter: Segmenter, height: int, width: int, seed: int = 0
) -> Callable[[], None]:
    """One frame through the engine into buffers made once, as the node's steady state does."""
    frame = parity_image(height, width, seed=seed)
    out = SegmentationResult.empty(height, width)

    def run() -> None:
        segmenter(frame, out=out)

    return run
