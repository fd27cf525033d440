"""The node's parameters: one table with defaults, descriptions and ranges, and their validation.

Declared with full descriptors so `ros2 param describe` explains every one of them, ranges are
enforced by rclpy itself, and the settings that would be unsafe to change under a running
pipeline (model, topics, QoS) are read-only: they take effect through configure, never midway.
`config/pixood.yaml` and the launch files mirror this table (a test keeps them in sync).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from pixood_ros.anomaly_modes import ANOMALY_MODES, DEFAULT_ANOMALY_MODE
from pixood_ros.cli import UserError
from pixood_ros.contract import NODE_OUTPUTS
from pixood_ros.engine.threads import intra_op_threads
from pixood_ros.image_conversion import DEFAULT_MAX_PIXELS
from pixood_ros.node.param_spec import ParamSpec
from pixood_ros.render.compressed import (
    CODECS,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_PNG_LEVEL,
    Compression,
)
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

PACKAGE = "pixood_ros"
DEFAULT_MODEL_PATH = "checkpoints/pixood_demo.onnx"
OUTPUTS = NODE_OUTPUTS
INPUT_TRANSPORTS = ("raw", "compressed")
INPUT_QOS_CHOICES = ("auto", "sensor_data", "reliable")
_INT32_MAX = 2**31 - 1


def _camera_size(side: str) -> ParamSpec:
    return ParamSpec(
        f"input_{side}",
        0,
        f"Expected camera image {side} for warm-up and a static TensorRT engine; 0 = unknown.",
        int_range=(0, 65535),
    )


def _run_time_fraction(name: str, default: float, description: str) -> ParamSpec:
    """A value in [0, 1] that may change while the node runs (read per frame)."""
    return ParamSpec(name, default, description, read_only=False, float_range=(0.0, 1.0))


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model_path",
        DEFAULT_MODEL_PATH,
        "PixOOD ONNX model file. A relative path is looked up in the working directory, then "
        "in the package share directory (where the demo model is installed).",
    ),
    ParamSpec(
        "providers",
        ["tensorrt", "cuda", "cpu"],
        "ONNX Runtime execution providers in preference order (tensorrt, cuda, cpu or full "
        "provider names); unavailable ones are skipped with a warning.",
    ),
    ParamSpec(
        "trt_cache_dir",
        "",
        "Directory for cached TensorRT engines; empty = ~/.cache/pixood_ros/tensorrt. Put it "
        "on persistent storage: building an engine takes minutes.",
    ),
    ParamSpec("trt_fp16", True, "Let TensorRT run in half precision (ignored by CUDA and CPU)."),
    ParamSpec(
        "warmup",
        True,
        "Run the model on dummy frames while configuring, so the first camera frame is not "
        "slow and a TensorRT engine is built before the node goes active.",
    ),
    _camera_size("height"),
    _camera_size("width"),
    ParamSpec(
        "intra_op_threads",
        0,
        "CPU threads ONNX Runtime may use; 0 = the cores this process may run on "
        "(os.sched_getaffinity) less one, which the publisher thread needs to render and "
        "publish a frame while the next one is in the model; at least 1.",
        int_range=(0, 1024),
    ),
    ParamSpec(
        "ort_spin_wait",
        False,
        "Let ONNX Runtime's CPU threads busy-wait for work (its own default). Off by default: "
        "spinning threads steal the cores the node needs between model calls (decode, output "
        "images, DDS); measured on 2 cores it cost 20-35 ms CPU per 1280x720 frame.",
    ),
    ParamSpec(
        "input_transport",
        "raw",
        "raw: subscribe sensor_msgs/Image on 'image'; compressed: subscribe "
        "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'.",
        choices=INPUT_TRANSPORTS,
    ),
    ParamSpec(
        "input_qos",
        "auto",
        "Input QoS: auto = follow the publishers (reliable when every publisher is reliable, "
        "else best effort; decided when the first publisher appears: large frames over best "
        "effort are mostly lost even on one machine); sensor_data = best effort (matches every "
        "camera driver and bag player); reliable = only reliable publishers.",
        choices=INPUT_QOS_CHOICES,
    ),
    ParamSpec(
        "input_queue_depth",
        1,
        "Input history depth. 1 keeps only the newest frame (the node always processes the "
        "latest frame anyway, older ones are dropped and counted).",
        int_range=(1, 100),
    ),
    ParamSpec(
        "output_queue_depth",
        2,
        "History depth of the reliable output publishers.",
        int_range=(1, 100),
    ),
    ParamSpec(
        "cameras",
        None,
        "Serve several cameras with one model: for each name N subscribe 'N/image' (or "
        "'N/image/compressed') and publish '~/N/anomaly_score' etc. Unset = one camera on "
        "'image'.",
        type_=Parameter.Type.STRING_ARRAY,
    ),
    _run_time_fraction(
        "threshold",
        DEFAULT_ANOMALY_THRESHOLD,
        "Anomaly score (of anomaly_mode) at or above which a pixel is 255 in ~/anomaly_mask "
        "(changeable at run time). PixOOD scores are calibrated: 0.995 = less typical than "
        "99.5 % of the training mass of every evaluated class (the paper's threshold); other "
        "scorers need their own.",
    ),
    ParamSpec(
        "anomaly_mode",
        DEFAULT_ANOMALY_MODE,
        "What counts as anomalous; ~/anomaly_score publishes this mode's score and "
        "~/anomaly_mask and ~/overlay follow it (changeable at run time). surface = the model's "
        "eval-label anomaly only on the drivable surface it predicts (per image row between its "
        "leftmost and rightmost road pixel; 0 elsewhere); unknown = no known class explains the "
        "pixel (1 - max over all classes); unknown_on_surface = unknown objects on that surface; "
        "eval_labels = the raw eval-label score (SMIYC obstacle track: everything that is not "
        "road scores high; for evaluation on ground-truth road). The unknown modes need a model "
        "exported with the unknown_score output (pixood-export).",
        read_only=False,
        choices=ANOMALY_MODES,
    ),
    _run_time_fraction(
        "overlay_alpha", 0.6, "Opacity of the anomaly tint in ~/overlay (changeable at run time)."
    ),
    ParamSpec("publish_anomaly_score", True, "Publish ~/anomaly_score (32FC1, 0..1)."),
    ParamSpec("publish_anomaly_mask", True, "Publish ~/anomaly_mask (mono8, 0/255)."),
    ParamSpec("publish_semantic", True, "Publish ~/semantic (mono8 class ids)."),
    ParamSpec("publish_confidence", True, "Publish ~/confidence (32FC1, 0..1)."),
    ParamSpec("publish_overlay", True, "Publish ~/overlay (bgr8 camera image with anomalies)."),
    ParamSpec(
        "publish_compressed",
        True,
        "Also offer the compressed forms on image_transport's names (sensor_msgs/"
        "CompressedImage): ~/overlay/compressed (JPEG), ~/anomaly_mask/compressed and "
        "~/semantic/compressed (PNG, lossless), for each output whose publish_* is true; each "
        "is encoded only while it has a subscriber.",
    ),
    ParamSpec(
        "jpeg_quality",
        DEFAULT_JPEG_QUALITY,
        "JPEG quality of ~/overlay/compressed (1 = smallest, 100 = best).",
        int_range=(1, 100),
    ),
    ParamSpec(
        "png_level",
        DEFAULT_PNG_LEVEL,
        "PNG (zlib) compression level of the mask and semantic compressed outputs: 0 = "
        "fastest, 9 = smallest; lossless at every level.",
        int_range=(0, 9),
    ),
    ParamSpec(
        "lazy_subscription",
        False,
        "Subscribe to the camera only while some output topic has a subscriber (saves "
        "bandwidth and compute when nobody listens).",
    ),
    ParamSpec(
        "lazy_check_period",
        0.5,
        "Seconds between checks for output subscribers when lazy_subscription is on.",
        float_range=(0.01, 60.0),
    ),
    ParamSpec(
        "diagnostics_period",
        1.0,
        "Seconds between /diagnostics messages.",
        float_range=(0.05, 60.0),
    ),
    ParamSpec(
        "drop_warn_ratio",
        0.1,
        "Camera diagnostics turn WARN when more than this fraction of the camera's frames in a "
        "diagnostics period was not served: dropped by the node (a newer frame came first) or "
        "lost before it (gaps in the header stamps).",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "max_pixels",
        DEFAULT_MAX_PIXELS,
        "Frames with more pixels than this are rejected as bad input (protects memory).",
        int_range=(1, _INT32_MAX),
    ),
    ParamSpec(
        "autostart",
        True,
        "Configure and activate right after start-up (for users without a lifecycle manager). "
        "With false the node waits in 'unconfigured' for lifecycle transitions.",
    ),
)
PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
# The parameters a running node takes over at once (fractions in [0, 1] and anomaly_mode).
RUN_TIME_PARAMETERS = tuple(p.name for p in PARAMETERS if not p.read_only)
_SPECS = {p.name: p for p in PARAMETERS}


def run_time_value_problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be taken for the run-time parameter `name`, or None if it can."""
    spec = _SPECS[name]
    if spec.choices:
        if value not in spec.choices:
            return f"{name} must be one of {', '.join(spec.choices)}"
        return None
    low, high = spec.float_range or (0.0, 1.0)
    if not isinstance(value, float) or not low <= value <= high:
        return f"{name} must be a float in [{low:g}, {high:g}]"
    return None


class SettingsError(UserError, ValueError):
    """A parameter value that makes configuring impossible; the message is one line."""


@dataclass(frozen=True)
class Settings:
    """Validated parameter values, read once per configure."""

    model_path: Path
    providers: tuple[str, ...]
    trt_cache_dir: str | None
    trt_fp16: bool
    warmup: bool
    input_size: tuple[int, int] | None
    intra_op_threads: int  # resolved: never 0 (see `threads`)
    ort_spin_wait: bool
    input_transport: str
    input_qos: str
    input_queue_depth: int
    output_queue_depth: int
    cameras: tuple[str, ...]
    threshold: float
    anomaly_mode: str
    overlay_alpha: float
    outputs: tuple[str, ...]
    compressed_outputs: tuple[str, ...]  # outputs also offered on <topic>/compressed
    compression: Compression
    lazy_subscription: bool
    lazy_check_period: float
    diagnostics_period: float
    drop_warn_ratio: float
    max_pixels: int


def model_search_paths(model_path: str) -> list[Path]:
    """Where a model path is looked for: as given, then in the package share directories."""
    path = Path(model_path).expanduser()
    if path.is_absolute():
        return [path]
    candidates = [Path.cwd() / path]
    try:
        from ament_index_python.packages import (
            get_package_share_directory,
        )

        candidates.append(Path(get_package_share_directory(PACKAGE)) / path)
    except Exception:
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / path)
    candidates.append(Path(__file__).resolve().parents[2] / path)  # source checkout
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def resolve_model_path(model_path: str) -> Path:
    """The first existing file among `model_search_paths`, else SettingsError naming them."""
    if not model_path.strip():
        raise SettingsError("parameter model_path is empty; set it to a PixOOD .onnx file")
    candidates = model_search_paths(model_path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise SettingsError(f"model file {model_path!r} not found (looked at: {tried})")


def _valid_camera_name(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("/"))


def read_settings(node: Any) -> Settings:
    """Read and cross-check the parameters of `node` (each alone was checked when it was
    declared, see `declaration`); raises SettingsError on the first problem."""

    def value(name: str) -> Any:
        try:
            return node.get_parameter(name).value
        except ParameterUninitializedException:
            return None  # declared by type only (e.g. cameras) and not set by the user

    cameras = tuple(value("cameras") or ())
    for name in cameras:
        if not _valid_camera_name(name):
            raise SettingsError(
                f"camera name {name!r} in parameter cameras is not a valid topic name part"
            )
    if len(set(cameras)) != len(cameras):
        raise SettingsError(f"parameter cameras has duplicates: {list(cameras)}")
    providers = tuple(str(p) for p in (value("providers") or ()))
    outputs = tuple(name for name in OUTPUTS if value(f"publish_{name}"))
    if not outputs:
        raise SettingsError("all publish_* parameters are false: the node would publish nothing")
    height, width = int(value("input_height")), int(value("input_width"))
    if (height == 0) != (width == 0):
        raise SettingsError("set both input_height and input_width, or neither")
    trt_cache_dir = str(value("trt_cache_dir")).strip() or None
    return Settings(
        model_path=resolve_model_path(str(value("model_path"))),
        providers=providers,
        trt_cache_dir=trt_cache_dir,
        trt_fp16=bool(value("trt_fp16")),
        warmup=bool(value("warmup")),
        input_size=(height, width) if height else None,
        intra_op_threads=intra_op_threads(int(value("intra_op_threads"))),
        ort_spin_wait=bool(value("ort_spin_wait")),
        input_transport=str(value("input_transport")),
        input_qos=str(value("input_qos")),
        input_queue_depth=int(value("input_queue_depth")),
        output_queue_depth=int(value("output_queue_depth")),
        cameras=cameras,
        threshold=float(value("threshold")),
        anomaly_mode=str(value("anomaly_mode")),
        overlay_alpha=float(value("overlay_alpha")),
        outputs=outputs,
        compressed_outputs=tuple(n for n in outputs if n in CODECS)
        if value("publish_compressed")
        else (),
        compression=Compression(int(value("jpeg_quality")), int(value("png_level"))),
        lazy_subscription=bool(value("lazy_subscription")),
        lazy_check_period=float(value("lazy_check_period")),
        diagnostics_period=float(value("diagnostics_period")),
        drop_warn_ratio=float(value("drop_warn_ratio")),
        max_pixels=int(value("max_pixels")),
    )


def describe_parameters() -> str:
    """Human-readable parameter list for `pixood_node --help`."""
    lines = []
    for spec in PARAMETERS:
        default = "unset" if spec.default is None else repr(spec.default)
        extra = []
        if spec.float_range:
            extra.append(f"range {spec.float_range[0]}..{spec.float_range[1]}")
        if spec.int_range:
            extra.append(f"range {spec.int_range[0]}..{spec.int_range[1]}")
        if spec.choices:
            extra.append("one of " + "|".join(spec.choices))
        extra.append("read-only" if spec.read_only else "dynamic")
        lines.append(f"  {spec.name} (default {default}; {', '.join(extra)})")
        lines.append(f"      {spec.description}")
    return "\n".join(lines)
