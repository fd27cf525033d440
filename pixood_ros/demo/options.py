"""The demo's command line (`python -m pixood_ros.demo`) and its options as one value object."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE, anomaly_mode_parent
from pixood_ros.bag.scoring_options import ScoringOptions, add_scoring_arguments
from pixood_ros.cli import (
    OneLineParser,
    UserError,
    options_from,
    progress_parent,
    unit_interval,
)
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

PROG = "pixood-demo"  # how its messages start
DEFAULT_MODEL = Path("checkpoints/pixood_demo.onnx")
DEFAULT_OUT = Path("out/demo")
DEFAULT_FRAMES = 60
DEFAULT_DOMAIN_ID = 101  # the tests' domains are 1..100 (test/conftest.py)
DEFAULT_SEED = 2024  # not the training data's seed: the demo shows unseen scenes
MAX_DOMAIN_ID = 101
MAX_AUTO_RATE_HZ = 5.0
MIN_AUTO_RATE_HZ = 0.5


class DemoError(UserError):
    """Something the user can fix (bad option, missing model, occupied folder): exit 2."""


@dataclass(frozen=True)
class DemoOptions:
    model: Path = DEFAULT_MODEL
    out_dir: Path = DEFAULT_OUT
    frames: int = DEFAULT_FRAMES
    width: int = 512
    height: int = 256
    seed: int = DEFAULT_SEED
    rate: float | None = None  # None = automatic
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
    anomaly_mode: str = DEFAULT_ANOMALY_MODE
    providers: list[str] = field(default_factory=lambda: ["cuda", "cpu"])
    domain_id: int = DEFAULT_DOMAIN_ID
    node_timeout: float = 120.0
    video_fps: float = 3.0
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    progress: bool = True


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m pixood_ros.demo",
        command=PROG,
        parents=[progress_parent(), anomaly_mode_parent()],
        description="End-to-end demo: synthetic road scenes with anomalies ▶ rosbag ▶ the real "
        "pixood_node (separate process, ROS 2 on loopback) ▶ recorded outputs ▶ report, curves "
        "and an overlay video in one folder.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"PixOOD ONNX model; relative paths are also looked up in the installed package "
        f"share directory (default: {DEFAULT_MODEL}, the shipped demo model)",
    )
    parser.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder; a previous demo's results there are replaced "
        f"(default: {DEFAULT_OUT})",
    )
    _add_data_arguments(parser)
    parser.add_argument(
        "--threshold",
        type=unit_interval,
        default=DEFAULT_ANOMALY_THRESHOLD,
        help="anomaly threshold of the node's mask (and of the component metrics with "
        "--component-threshold mask) (default: %(default)s, PixOOD's calibrated scores)",
    )
    _add_node_arguments(parser)
    parser.add_argument(
        "--video-fps", type=float, default=3.0, help="frame rate of the overlay video (default: 3)"
    )
    add_scoring_arguments(parser, track_option=False, component_option=True)
    return parser


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"synthetic frames to replay (default: {DEFAULT_FRAMES})",
    )
    parser.add_argument("--width", type=int, default=512, help="frame width (default: 512)")
    parser.add_argument("--height", type=int, default=256, help="frame height (default: 256)")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the synthetic scenes (default: {DEFAULT_SEED}, unseen by training)",
    )
    parser.add_argument(
        "--rate",
        default="auto",
        help="camera rate of the bag in Hz, replayed in real time; 'auto' = a third of the speed "
        f"the model reaches in this process, within {MIN_AUTO_RATE_HZ:g}..{MAX_AUTO_RATE_HZ:g} "
        "Hz (default: auto)",
    )


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--providers",
        nargs="+",
        default=["cuda", "cpu"],
        metavar="P",
        help="ONNX Runtime execution providers for the node, in order (tensorrt cuda cpu); "
        "unavailable ones are skipped (default: cuda cpu; TensorRT would first build an engine)",
    )
    parser.add_argument(
        "--domain-id",
        type=int,
        default=DEFAULT_DOMAIN_ID,
        help=f"ROS_DOMAIN_ID of the demo's node and player, 0..{MAX_DOMAIN_ID} (default: "
        f"{DEFAULT_DOMAIN_ID}; discovery is always limited to this machine)",
    )
    parser.add_argument(
        "--node-timeout",
        type=float,
        default=120.0,
        metavar="SEC",
        help="how long the node may take to load the model and come up (default: 120)",
    )


def _rate(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise DemoError(f"--rate must be a number of Hz or 'auto', got {text!r}") from None
    if not (math.isfinite(rate) and rate > 0):
        raise DemoError(f"--rate must be positive, got {text}")
    return rate


def demo_options(args: argparse.Namespace) -> DemoOptions:
    """Validated options; DemoError (one line) for values that cannot work."""
    if args.frames < 2:
        raise DemoError(f"--frames must be at least 2, got {args.frames}")
    if not (64 <= args.width <= 4096 and 64 <= args.height <= 4096):
        raise DemoError(f"--width/--height must be in 64..4096, got {args.width}x{args.height}")
    if not 0 <= args.domain_id <= MAX_DOMAIN_ID:
        raise DemoError(f"--domain-id must be in 0..{MAX_DOMAIN_ID}, got {args.domain_id}")
    if not args.node_timeout > 0:
        raise DemoError(f"--node-timeout must be positive, got {args.node_timeout}")
    if not args.video_fps > 0:
        raise DemoError(f"--video-fps must be positive, got {args.video_fps}")
    return options_from(
        DemoOptions,
        args,
        rate=_rate(args.rate),
        providers=list(args.providers),
        scoring=ScoringOptions.from_args(args),
        progress=not args.no_progress,
    )
