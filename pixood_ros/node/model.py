"""The model the node serves: the engine built from the node's parameters, and whether it can
serve an anomaly mode (checked at configure and when `anomaly_mode` changes at run time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixood_ros.anomaly_modes import AnomalyModeError, check_mode
from pixood_ros.engine import Segmenter
from pixood_ros.node.parameters import Settings

SegmenterFactory = Callable[[Settings], Any]


def mode_problem(mode: str, segmenter: Any, settings: Settings) -> str | None:
    """Why the loaded model cannot serve anomaly `mode` (one line naming the fix), or None."""
    try:
        check_mode(mode, segmenter.info.anomaly_modes, settings.model_path.name)
    except AnomalyModeError as error:
        return str(error)
    return None


def default_segmenter_factory(settings: Settings) -> Segmenter:
    """The real engine, configured from the node's parameters."""
    return Segmenter(
        settings.model_path,
        providers=list(settings.providers) or None,
        trt_cache_dir=settings.trt_cache_dir,
        warmup=settings.warmup,
        input_size=settings.input_size,
        trt_fp16=settings.trt_fp16,
        intra_op_threads=settings.intra_op_threads,
        spin_wait=settings.ort_spin_wait,
    )
