"""Speed of PyTorch eager vs ONNX Runtime on the same model and input, at several image sizes."""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from pixood_training.export.parity import parity_image

from .environment import ort_options
from .models import export_to
from .timing import peak_rss_mb, time_call


def ort_providers(device: str) -> list[str]:
    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else []
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def benchmark_end_to_end(
    model: Any,
    sizes: list[tuple[int, int]],
    repeats: int,
    device: str = "cpu",
    onnx_path: str | Path | None = None,
    with_onnx: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """Rows per size: PyTorch and ONNX Runtime median ms / fps, plus memory peaks.

    ONNX Runtime gets ``threads`` intra-op threads, the count the caller gave PyTorch
    (environment.apply_threads), so both runtimes get the same cores.
    """
    model = model.eval().to(device)
    session = None
    temp_dir = None
    if with_onnx:
        if onnx_path is None:
            temp_dir = tempfile.TemporaryDirectory(prefix="pixood-bench-")
            onnx_path = export_to(model, Path(temp_dir.name) / "model.onnx")
        session = ort.InferenceSession(
            str(onnx_path), ort_options(threads), providers=ort_providers(device)
        )
    rows = []
    try:
        for index, (height, width) in enumerate(sizes):
            image = parity_image(height, width, seed=index)
            tensor = torch.from_numpy(image)[None].to(device)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with torch.no_grad():
                torch_timing = time_call(lambda t=tensor: model(t), repeats, device=device)
            row: dict[str, Any] = {"height": height, "width": width, "pytorch": torch_timing}
            row["pytorch"]["fps"] = 1000.0 / torch_timing["median_ms"]
            if device == "cuda":
                row["pytorch"]["cuda_max_memory_mb"] = torch.cuda.max_memory_allocated() / 1e6
            if session is not None:
                feed = {"image": image[None]}
                tracemalloc.start()
                onnx_timing = time_call(lambda f=feed: session.run(None, f), repeats)
                _, traced_peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                onnx_timing["fps"] = 1000.0 / onnx_timing["median_ms"]
                onnx_timing["python_alloc_peak_mb"] = traced_peak / 1e6
                row["onnxruntime"] = onnx_timing
                row["onnx_speedup"] = torch_timing["median_ms"] / onnx_timing["median_ms"]
                ours = session.run(["anomaly_score"], feed)[0]
                with torch.no_grad():
                    reference = model(tensor)[0].cpu().numpy()
                row["max_abs_anomaly_diff"] = float(np.abs(ours - reference).max())
            row["peak_rss_mb"] = peak_rss_mb()
            rows.append(row)
    finally:
        if temp_dir is not None:
            temp_dir.cleanup()
    return {
        "device": device,
        "onnx_providers": session.get_providers() if session is not None else None,
        "onnx_intra_op_threads": threads,
        "sizes": rows,
    }
