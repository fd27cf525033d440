"""The conditions every `pixood-bench` figure is measured under: one thread count for PyTorch and
ONNX Runtime alike, and a description of the machine and library versions for the report.

Why one count: with each library's default threads on a busy machine, PyTorch's OpenMP workers
wait for descheduled peers at every parallel op, which once showed up as a 6-7x "ONNX Runtime
speed-up" that had nothing to do with ONNX Runtime. Same threads on both sides, stated in every
table header and in the JSON.
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import onnxruntime as ort
import torch

DEFAULT_THREADS = 1


def apply_threads(threads: int) -> dict[str, Any]:
    """PyTorch intra-op = `threads`, inter-op = 1 (as far as the process still allows); returns
    the settings both runtimes get (`ort_options` gives ONNX Runtime the same)."""
    torch.set_num_threads(threads)
    # only settable before the process's first inter-op work: later calls keep what is set
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return thread_settings(threads)


def thread_settings(threads: int) -> dict[str, Any]:
    """What each runtime really runs with, read back from PyTorch; ORT's from its options."""
    return {
        "requested": threads,
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        "ort_intra_op": threads,
        "ort_inter_op": 1,
    }


def ort_options(threads: int) -> ort.SessionOptions:
    """Session options with `threads` intra-op threads, one inter-op thread, sequential."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def machine() -> dict[str, Any]:
    """CPU count, platform and library versions: what a reader needs to compare two reports."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def threads_label(settings: dict[str, Any]) -> str:
    """The phrase every table header carries."""
    return (
        f"threads: PyTorch {settings['torch_intra_op']} intra-op, "
        f"ONNX Runtime {settings['ort_intra_op']} intra-op / {settings['ort_inter_op']} inter-op"
    )
