"""GPU throughput of random-weight DINOv2 PixOOD models (no download): frames per second of PyTorch
(fp16 autocast) and, when installed, ONNX Runtime's CUDA and TensorRT providers, at network-sized
inputs, with the share of the FLOP bound reached (training/speed/flops.py: analytic matrix FLOPs
over the device's dense fp16 tensor peak). Short by design: warm-up plus a few timed frames.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch

from pixood_ros.cli import one_line
from pixood_ros.engine.providers import usable_providers
from pixood_training.export.parity import parity_image

from .environment import ort_options
from .flops import model_flops
from .models import export_to, random_model
from .timing import time_call

DEFAULT_ARCHS = ("vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2")
DEFAULT_SIZES = ("518x1036", "1078x1918")
ORT_GPU_PROVIDERS = (
    ("ONNX Runtime CUDA", "CUDAExecutionProvider", {}),
    ("ONNX Runtime TensorRT fp16", "TensorrtExecutionProvider", {"trt_fp16_enable": "True"}),
)


def throughput(
    timing: dict[str, float], flops: dict[str, Any], peak: float | None
) -> dict[str, Any]:
    """Frames per second, achieved TFLOP/s and share of the peak for one timed row."""
    fps = 1000.0 / timing["median_ms"]
    achieved = flops["total"] * fps / 1e12
    return {
        **timing,
        "fps": fps,
        "achieved_tflops": achieved,
        "flop_bound_share": None if peak is None else achieved / peak,
    }


@torch.no_grad()
def torch_row(
    model: Any, size: tuple[int, int], device: str, dtype: torch.dtype, repeats: int
) -> dict[str, Any]:
    """PyTorch under autocast to `dtype` on `device`, the model already there."""
    image = torch.from_numpy(parity_image(*size, seed=0))[None].to(device)

    def run() -> Any:
        with torch.autocast(device_type=device, dtype=dtype):
            return model(image)

    return time_call(run, repeats, warmup=3, device=device)


def provider_status(provider: str) -> str | None:
    """Why `provider` cannot run here ('not installed', 'not usable here'), None when it can."""
    available = ort.get_available_providers()
    if provider not in available:
        return "not installed"
    if provider not in usable_providers(available):
        return "not usable here (no NVIDIA device or TensorRT library)"
    return None


def ort_rows(
    model: Any, size: tuple[int, int], threads: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """Each ONNX Runtime GPU provider's timing, or why there is none ('not installed')."""
    status = {label: provider_status(provider) for label, provider, _ in ORT_GPU_PROVIDERS}
    rows: dict[str, dict[str, Any]] = {
        label: {"status": why} for label, why in status.items() if why is not None
    }
    wanted = [entry for entry in ORT_GPU_PROVIDERS if status[entry[0]] is None]
    if not wanted:
        return rows
    image = parity_image(*size, seed=0)[None]
    with tempfile.TemporaryDirectory(prefix="pixood-bench-gpu-") as workdir:
        path = export_to(model, Path(workdir) / "model.onnx")
        for label, provider, options in wanted:
            try:
                session = ort.InferenceSession(
                    str(path), ort_options(threads), providers=[(provider, options)]
                )
                used = session.get_providers()[0]
                if used != provider:  # ONNX Runtime falls back silently
                    rows[label] = {"status": f"failed: fell back to {used}"}
                    continue
                timing = time_call(lambda s=session: s.run(None, {"image": image}), repeats, 3)
                rows[label] = {"status": "measured", "provider": used, **timing}
            except Exception as exc:  # a provider's libraries can be listed yet fail to load
                rows[label] = {"status": f"failed: {one_line(exc)}"}
    return rows


def gpu_table(
    archs: list[str],
    sizes: list[tuple[int, int]],
    repeats: int,
    peak: float | None,
    threads: int,
    device: str = "cuda",
    dtype: torch.dtype = torch.float16,
) -> list[dict[str, Any]]:
    """One row per (architecture, size, runtime). Each size is the network input itself (the
    model's long side is set to it), so no resize hides in the figure."""
    rows = []
    for arch in archs:
        model = random_model(arch, network_long_side=max(sizes[0])).to(device)
        for size in sizes:
            model.network_long_side = max(size)
            flops = model_flops(model, *size)
            base = {"arch": arch, "height": size[0], "width": size[1], "flops": flops}
            timing = torch_row(model, size, device, dtype, repeats)
            label = f"PyTorch {device} {str(dtype).removeprefix('torch.')} autocast"
            rows.append({**base, "runtime": label, "status": "measured",
                         **throughput(timing, flops, peak)})  # fmt: skip
            ort_results = ort_rows(model, size, threads, repeats) if device == "cuda" else {}
            for runtime, result in ort_results.items():
                measured = result["status"] == "measured"
                figures = throughput(result, flops, peak) if measured else result
                rows.append({**base, "runtime": runtime, **figures})
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows
