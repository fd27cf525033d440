"""Execution-provider choice for ONNX Runtime: TensorRT ▸ CUDA ▸ CPU, and TensorRT engine caching.

Kept apart from the Segmenter because it is pure policy (names, options, cache keys) that the
node, the CLI tools and the tests want to inspect without loading a model.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pixood_ros.engine.errors import ModelError

LOG = logging.getLogger("pixood_ros.engine")

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_ORDER = (TENSORRT, CUDA, CPU)

# Short names users write in parameters and on command lines.
ALIASES = {
    "tensorrt": TENSORRT,
    "trt": TENSORRT,
    "cuda": CUDA,
    "gpu": CUDA,
    "cpu": CPU,
}


def canonical_provider(name: str) -> str:
    """'trt', 'TensorRT', 'TensorrtExecutionProvider' -> 'TensorrtExecutionProvider'."""
    key = name.strip()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    for full in DEFAULT_ORDER:
        if key.lower() == full.lower():
            return full
    if key.endswith("ExecutionProvider"):
        return key  # another ONNX Runtime provider (OpenVINO, ROCm, ...), used as given
    raise ModelError(
        f"unknown execution provider {name!r}; use tensorrt, cuda, cpu or a full ONNX Runtime "
        "provider name such as CUDAExecutionProvider"
    )


# Device files an NVIDIA driver creates: desktop/server (/dev/nvidiactl, /dev/nvidia0 ...),
# Jetson (/dev/nvhost-ctrl, /dev/nvhost-ctrl-gpu, /dev/nvgpu/...), WSL 2 (/dev/dxg, the bridge to
# the Windows driver). Relative to the file-system root, for `Path.glob`.
GPU_DEVICE_FILES = (
    "dev/nvidiactl",
    "dev/nvidia[0-9]*",
    "dev/nvhost-ctrl",
    "dev/nvhost-ctrl-gpu",
    "dev/nvgpu*",
    "dev/dxg",
)


def nvidia_gpu_visible(root: str | Path = "/", platform: str = sys.platform) -> bool:
    """True when this machine exposes an NVIDIA GPU device file (cheap: loads no library).

    Only Linux has such files; on other systems this says True and ONNX Runtime's own provider
    list decides. `root` and `platform` are for tests."""
    if not platform.startswith("linux"):
        return True
    return any(any(Path(root).glob(pattern)) for pattern in GPU_DEVICE_FILES)


def usable_providers(
    available: Sequence[str], gpu_visible: bool | None = None, trt_found: bool | None = None
) -> list[str]:
    """The providers of this onnxruntime build that this machine can really run.

    onnxruntime-gpu lists the GPU providers even where no GPU or TensorRT library exists, and then
    prints a wall of load errors before falling back to CPU. So CUDA/TensorRT count only when an
    NVIDIA device file is visible (`nvidia_gpu_visible`), and TensorRT only when its library is
    found (`gpu_visible`/`trt_found` override the probes, for tests).
    """
    usable = list(available)
    if gpu_visible is None:
        gpu_visible = nvidia_gpu_visible()
    if not gpu_visible:
        return [p for p in usable if p not in (TENSORRT, CUDA)]
    if TENSORRT in usable:
        if trt_found is None:
            trt_found = tensorrt_version() is not None
        if not trt_found:
            usable.remove(TENSORRT)
    return usable


def resolve_providers(
    requested: Sequence[str] | None,
    available: Sequence[str],
    gpu_visible: bool | None = None,
    trt_found: bool | None = None,
) -> list[str]:
    """The providers to ask ONNX Runtime for, in preference order.

    Without a request: TensorRT, CUDA, CPU, as far as they are usable here (`usable_providers`).
    With one: the user's order, skipping (with a warning) providers that are not usable here.
    """
    usable = usable_providers(available, gpu_visible, trt_found)
    if requested is None or len(requested) == 0:
        return [p for p in DEFAULT_ORDER if p in usable] or usable or list(available)
    chosen: list[str] = []
    unusable: list[str] = []
    for name in requested:
        full = canonical_provider(name)
        if full not in available:
            LOG.warning("execution provider %s is not available in this onnxruntime build", full)
        elif full not in usable:
            unusable.append(full)
        elif full not in chosen:
            chosen.append(full)
    if unusable:
        LOG.warning(
            "skipping %s: no usable NVIDIA GPU or TensorRT library on this machine",
            ", ".join(unusable),
        )
    if not chosen:
        raise ModelError(
            f"none of the requested execution providers ({', '.join(requested)}) is usable; "
            f"this machine can run {', '.join(usable) or 'none'}"
        )
    return chosen


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tensorrt_version() -> str | None:
    """Version of the TensorRT library ONNX Runtime would load, or None when it is not found."""
    try:
        import tensorrt  # type: ignore[import-not-found]

        return str(tensorrt.__version__)
    except Exception:
        pass
    for lib in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so", "nvinfer_10.dll"):
        try:
            handle = ctypes.CDLL(lib)
            handle.getInferLibVersion.restype = ctypes.c_int32
            return f"lib{handle.getInferLibVersion()}"
        except (OSError, AttributeError):
            continue
    return None


def default_trt_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pixood_ros" / "tensorrt"


def trt_cache_key(
    model_sha256: str,
    input_size: tuple[int, int] | None,
    ort_version: str,
    trt_version: str | None,
    fp16: bool,
) -> str:
    """Directory name for cached engines: an engine is reused only for the same model bytes,
    input shape, precision and ONNX Runtime / TensorRT versions (a mismatch means a rebuild,
    never a crash on a stale engine)."""
    shape = f"{input_size[0]}x{input_size[1]}" if input_size else "dynamic"
    precision = "fp16" if fp16 else "fp32"
    return f"{model_sha256[:16]}-{shape}-{precision}-ort{ort_version}-trt{trt_version or 'unknown'}"


def tensorrt_options(
    cache_dir: Path, input_name: str, input_size: tuple[int, int] | None, fp16: bool
) -> dict[str, str]:
    """ONNX Runtime TensorRT provider options: fp16, engine + timing cache, fixed profile when
    the camera size is known (one static engine, no rebuild per frame size)."""
    options = {
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache_dir),
    }
    if input_size is not None:
        shape = f"{input_name}:1x{input_size[0]}x{input_size[1]}x3"
        options.update(
            trt_profile_min_shapes=shape, trt_profile_opt_shapes=shape, trt_profile_max_shapes=shape
        )
    return options


def engine_cache_is_warm(cache_dir: Path) -> bool:
    return cache_dir.is_dir() and any(cache_dir.glob("*.engine"))
