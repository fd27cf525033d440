"""Runtime inference engine: one PixOOD ONNX model behind a small, thread-safe call.

`Segmenter(model_path)(rgb)` returns the anomaly score, semantic map and confidence at the input
resolution. Everything model-specific (class names, palette, eval labels) comes from the model
file's metadata, validated on load so a wrong file fails at start-up with one clear line, not
with a shape error deep inside a ROS callback. Execution providers are tried in the order
TensorRT ▸ CUDA ▸ CPU and the one ONNX Runtime really uses is reported (silent CPU fallback is
the classic "why is it 5 Hz" bug). No torch here: this runs on robots.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pixood_ros.cli import one_line
from pixood_ros.contract import MODEL_INPUT, MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT
from pixood_ros.engine.errors import InputError, ModelError
from pixood_ros.engine.metadata import ModelInfo, parse_model_info
from pixood_ros.engine.providers import (
    CUDA,
    TENSORRT,
    default_trt_cache_root,
    engine_cache_is_warm,
    file_sha256,
    resolve_providers,
    tensorrt_options,
    tensorrt_version,
    trt_cache_key,
)

__all__ = ["SegmentationResult", "Segmenter"]

LOG = logging.getLogger("pixood_ros.engine")

# ONNX type strings ONNX Runtime reports, per output; docs/architecture.md §3 allows int64 class
# ids too.
OUTPUT_TYPES = {
    "anomaly_score": ("tensor(float)",),
    "semantic": ("tensor(uint8)", "tensor(int64)"),
    "confidence": ("tensor(float)",),
    UNKNOWN_SCORE_OUTPUT: ("tensor(float)",),
}
DEFAULT_WARMUP_SIZE = (480, 640)
WARMUP_RUNS = 2


@dataclass
class SegmentationResult:
    """Per-pixel outputs at input resolution (HxW). `anomaly_score` is the model's raw
    eval-label score; `pixood_ros.anomaly_modes.anomaly_map` turns a result into the score of
    the chosen anomaly mode."""

    anomaly_score: np.ndarray  # float32 in [0, 1], 1 = anomalous
    semantic: np.ndarray  # uint8 class ids
    confidence: np.ndarray  # float32 in [0, 1]
    # float32 in [0, 1]: 1 - max over all classes; None when the model file lacks the output
    unknown_score: np.ndarray | None = None

    @classmethod
    def empty(cls, height: int, width: int, unknown_score: bool = False) -> SegmentationResult:
        """Preallocated buffers for `Segmenter.__call__(rgb, out=...)` (with `unknown_score`:
        a buffer for that output too)."""
        return cls(
            anomaly_score=np.empty((height, width), np.float32),
            semantic=np.empty((height, width), np.uint8),
            confidence=np.empty((height, width), np.float32),
            unknown_score=np.empty((height, width), np.float32) if unknown_score else None,
        )


def _describe(args: Sequence[ort.NodeArg]) -> str:
    return ", ".join(f"{a.name}: {a.type} {list(a.shape)}" for a in args) or "none"


def _validate_io(session: ort.InferenceSession, where: str) -> tuple[str, ...]:
    """Reject ONNX files whose interface is not the PixOOD model-file contract; returns the
    outputs to read (the contract's, then `unknown_score` when the file has it)."""
    inputs = session.get_inputs()
    image = next((a for a in inputs if a.name == MODEL_INPUT), None)
    shape_ok = (
        image is not None
        and len(image.shape) == 4
        and (image.shape[0] == 1 or not isinstance(image.shape[0], int))
        and image.shape[3] == 3
    )
    if len(inputs) != 1 or image is None or image.type != "tensor(uint8)" or not shape_ok:
        raise ModelError(
            f"{where}: not a PixOOD model, expected one input 'image' uint8 [1, H, W, 3], "
            f"found {_describe(inputs)}"
        )
    outputs = {a.name: a for a in session.get_outputs()}
    present = (*MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT) if UNKNOWN_SCORE_OUTPUT in outputs else ()
    for name in present or MODEL_OUTPUTS:
        arg = outputs.get(name)
        if arg is None or arg.type not in OUTPUT_TYPES[name] or len(arg.shape) != 3:
            expected = " or ".join(t[7:-1] for t in OUTPUT_TYPES[name])
            raise ModelError(
                f"{where}: not a PixOOD model, expected output '{name}' {expected} [1, H, W], "
                f"found outputs {_describe(session.get_outputs())}"
            )
    return present or MODEL_OUTPUTS


class Segmenter:
    """A loaded PixOOD model. Call it with an HxWx3 uint8 RGB image.

    Parameters
    - model_path: the ONNX model file (docs/architecture.md §3).
    - providers: execution providers in preference order (full ONNX Runtime names or the
      aliases tensorrt / cuda / cpu); None = TensorRT ▸ CUDA ▸ CPU, as far as available.
    - trt_cache_dir: where TensorRT engines are cached (default ~/.cache/pixood_ros/tensorrt);
      a sub-directory per model hash, input size, precision and ORT/TRT versions.
    - warmup: run the model on dummy frames now, so the first real frame is not slow (and a
      TensorRT engine is built at start-up, not in the middle of a drive).
    - input_size: (H, W) of the camera when known: warm-up uses it and TensorRT builds one
      static engine for it.
    - trt_fp16: let TensorRT run in half precision.
    - intra_op_threads: CPU threads ONNX Runtime may use (0 = its default, all cores).
    - spin_wait: let ONNX Runtime's CPU threads busy-wait for work between and after
      operators (its default). Turn it off when other threads of the program need the cores
      between model calls (the ROS node: decode, output images, DDS).
    """

    def __init__(
        self,
        model_path: str | Path,
        providers: Sequence[str] | None = None,
        trt_cache_dir: str | Path | None = None,
        warmup: bool = True,
        input_size: tuple[int, int] | None = None,
        trt_fp16: bool = True,
        intra_op_threads: int = 0,
        spin_wait: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        where = self.model_path.name or str(self.model_path)
        if not self.model_path.exists():
            raise ModelError(f"model file not found: {self.model_path}")
        if not self.model_path.is_file():
            raise ModelError(f"model path is not a file: {self.model_path}")
        if input_size is not None and (len(input_size) != 2 or min(input_size) < 1):
            raise ModelError(f"input_size must be (height, width) > 0, got {input_size!r}")
        self.input_size = tuple(int(v) for v in input_size) if input_size else None

        chosen = resolve_providers(providers, ort.get_available_providers())
        self.trt_cache_dir: Path | None = None
        if TENSORRT in chosen:
            self.trt_cache_dir = self._trt_cache_dir(trt_cache_dir, trt_fp16)
        self._session = self._open_session(chosen, trt_fp16, intra_op_threads, spin_wait, where)
        self.intra_op_threads = intra_op_threads  # as asked: 0 = ONNX Runtime's default
        self._outputs = _validate_io(self._session, where)
        self.info: ModelInfo = parse_model_info(
            self._session.get_modelmeta().custom_metadata_map,
            where,
            has_unknown_score=UNKNOWN_SCORE_OUTPUT in self._outputs,
        )
        self._semantic_is_uint8 = {o.name: o.type for o in self._session.get_outputs()}[
            "semantic"
        ] == "tensor(uint8)"
        self.active_provider: str = self._session.get_providers()[0]
        self._lock = threading.Lock()
        self._binding = self._session.io_binding()
        self._input_buffer: np.ndarray | None = None
        LOG.info(
            "loaded %s (scorer %s, %d classes, format v%s) on %s",
            where,
            self.info.scorer,
            self.info.num_classes,
            self.info.format_version,
            self.active_provider,
        )
        if self.active_provider != TENSORRT and self.trt_cache_dir is not None:
            _remove_if_empty(self.trt_cache_dir)
            self.trt_cache_dir = None
        if self.active_provider != chosen[0]:
            LOG.warning(
                "execution provider %s was requested but ONNX Runtime runs on %s "
                "(missing GPU, driver or libraries?)",
                chosen[0],
                self.active_provider,
            )
        self.warmup_seconds: float | None = None
        if warmup:
            self.warmup()

    def _trt_cache_dir(self, root: str | Path | None, fp16: bool) -> Path:
        key = trt_cache_key(
            file_sha256(self.model_path), self.input_size, ort.__version__, tensorrt_version(), fp16
        )
        cache_dir = Path(root) if root is not None else default_trt_cache_root()
        cache_dir = cache_dir / key
        cache_dir.mkdir(parents=True, exist_ok=True)
        return cache_dir

    def _open_session(
        self,
        chosen: Sequence[str],
        trt_fp16: bool,
        intra_op_threads: int,
        spin_wait: bool,
        where: str,
    ) -> ort.InferenceSession:
        """The ONNX Runtime session on the `chosen` providers (TensorRT with its options)."""
        if TENSORRT in chosen or CUDA in chosen:
            _preload_gpu_libraries()
        entries: list[str | tuple[str, dict[str, str]]] = [
            (name, tensorrt_options(self.trt_cache_dir, MODEL_INPUT, self.input_size, trt_fp16))
            if name == TENSORRT and self.trt_cache_dir is not None
            else name
            for name in chosen
        ]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        if not spin_wait:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=entries
            )
        except Exception as exc:  # ORT raises its own pybind exception types
            raise ModelError(f"{where}: cannot load as an ONNX model ({one_line(exc)})") from None

    def warmup(self, size: tuple[int, int] | None = None, runs: int = WARMUP_RUNS) -> float:
        """Run dummy frames through the model; returns the seconds it took (engine build incl.)."""
        if self.active_provider == TENSORRT and size is None and self.input_size is None:
            LOG.info(
                "TensorRT engine will be built for the size of the first frame (pass input_size "
                "to build it at start-up)"
            )
            return 0.0
        height, width = size or self.input_size or DEFAULT_WARMUP_SIZE
        if self.active_provider == TENSORRT and self.trt_cache_dir is not None:
            if engine_cache_is_warm(self.trt_cache_dir):
                LOG.info("loading cached TensorRT engine from %s", self.trt_cache_dir)
            else:
                LOG.warning(
                    "building TensorRT engine for %dx%d into %s; the first build can take "
                    "several minutes",
                    height,
                    width,
                    self.trt_cache_dir,
                )
        frame = np.zeros((height, width, 3), np.uint8)
        start = time.perf_counter()
        for _ in range(max(1, runs)):
            self(frame)
        self.warmup_seconds = time.perf_counter() - start
        LOG.info("warm-up at %dx%d took %.2f s", height, width, self.warmup_seconds)
        return self.warmup_seconds

    def __call__(
        self, rgb: np.ndarray, out: SegmentationResult | None = None
    ) -> SegmentationResult:
        """Segment one HxWx3 uint8 RGB image.

        With `out` (see `SegmentationResult.empty`) the outputs are written into those buffers,
        so a steady stream of frames allocates nothing; otherwise fresh arrays are returned.
        `unknown_score` is filled when the model file has it (and `out` has a buffer for it).
        """
        if not isinstance(rgb, np.ndarray):
            raise InputError(f"expected a numpy array, got {type(rgb).__name__}")
        if rgb.dtype != np.uint8:
            raise InputError(f"expected a uint8 image, got dtype {rgb.dtype}")
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(f"expected an HxWx3 RGB image, got shape {tuple(rgb.shape)}")
        height, width = rgb.shape[:2]
        if height < 1 or width < 1:
            raise InputError(f"expected a non-empty image, got shape {tuple(rgb.shape)}")
        if out is not None:
            for name in self._bound_outputs(out):
                buffer = getattr(out, name)
                if buffer.shape != (height, width) or not buffer.flags.c_contiguous:
                    raise InputError(
                        f"output buffer '{name}' has shape {buffer.shape} "
                        f"(must be C-contiguous {height}x{width})"
                    )

        with self._lock:
            batch = self._contiguous_batch(rgb)
            try:
                if out is None:
                    values = self._session.run(list(self._outputs), {MODEL_INPUT: batch})
                    result = SegmentationResult(*(v[0] for v in values))
                    if result.semantic.dtype != np.uint8:
                        result.semantic = result.semantic.astype(np.uint8)
                else:
                    self._run_into(batch, out)
                    result = out
            except Exception as exc:  # ORT runtime failure (e.g. out of GPU memory)
                raise ModelError(
                    f"inference failed on a {height}x{width} image: {one_line(exc)}"
                ) from None
        for name in self._bound_outputs(result):
            shape = getattr(result, name).shape
            if shape != (height, width):
                raise ModelError(
                    f"model output '{name}' has shape {shape} for a {height}x{width} input; "
                    "outputs must be at input resolution"
                )
        return result

    def _bound_outputs(self, result: SegmentationResult) -> tuple[str, ...]:
        """The outputs this call fills: the model's, less `unknown_score` without a buffer."""
        if result.unknown_score is None:
            return MODEL_OUTPUTS
        return self._outputs

    def _contiguous_batch(self, rgb: np.ndarray) -> np.ndarray:
        """[1,H,W,3] view of the image; copies only when the caller's array is not contiguous
        (e.g. a BGR→RGB `[..., ::-1]` view), and then into a buffer reused across frames."""
        if rgb.flags.c_contiguous:
            return rgb[None]
        if self._input_buffer is None or self._input_buffer.shape[1:3] != rgb.shape[:2]:
            self._input_buffer = np.empty((1, *rgb.shape), np.uint8)
        np.copyto(self._input_buffer[0], rgb)
        return self._input_buffer

    def _run_into(self, batch: np.ndarray, out: SegmentationResult) -> None:
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input(MODEL_INPUT, batch)
        for name in self._bound_outputs(out):
            buffer = getattr(out, name)
            if name == "semantic" and not self._semantic_is_uint8:
                binding.bind_output(name, "cpu")
                continue
            binding.bind_output(
                name,
                "cpu",
                0,
                buffer.dtype,
                (1, *buffer.shape),
                buffer.ctypes.data,
            )
        self._session.run_with_iobinding(binding)
        if not self._semantic_is_uint8:
            index = MODEL_OUTPUTS.index("semantic")
            semantic = binding.get_outputs()[index].numpy()
            np.copyto(out.semantic, semantic[0], casting="unsafe")


def _remove_if_empty(directory: Path) -> None:
    # Not empty (engines from an earlier run) or already gone: keep it.
    with contextlib.suppress(OSError):
        directory.rmdir()


def _preload_gpu_libraries() -> None:
    """Let ONNX Runtime find CUDA/cuDNN shipped as pip wheels (nvidia-*), when present.

    Called only when a GPU provider was chosen, which `resolve_providers` allows only where an
    NVIDIA device file is visible: elsewhere the preload would only print loader errors."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception as exc:  # missing wheels are fine: ORT then searches the system paths
        LOG.debug("onnxruntime.preload_dlls failed: %s", exc)
