"""The inference engine: one exported model file behind a small, thread-safe call.

`Segmenter(model_path)(rgb)` -> `SegmentationResult` (anomaly score, semantic map, confidence at the
input size; the unknown score too when the model file has it, see `pixood_ros.anomaly_modes`).
The parts: `segmenter` (the call, I/O binding, warm-up), `metadata` (what the model
file says about itself), `providers` (TensorRT ▸ CUDA ▸ CPU choice, TensorRT engine cache),
`threads` (CPU threads beside the caller's other busy threads) and `errors`. No PyTorch here:
this runs on robots.
"""

from __future__ import annotations

from pixood_ros.engine.errors import InputError, ModelError
from pixood_ros.engine.metadata import ModelInfo
from pixood_ros.engine.segmenter import SegmentationResult, Segmenter

__all__ = ["InputError", "ModelError", "ModelInfo", "SegmentationResult", "Segmenter"]
