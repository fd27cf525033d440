"""`pixood-bag-eval MODEL BAG -o OUT_DIR`: replay a rosbag2 through the model and report.

Offline (default, `pixood_ros.bag.offline`) every frame goes through the node's decode and engine
as fast as the machine allows, no ROS needed; `--live` (`pixood_ros.bag.live`) instead replays
the bag into a running node over ROS 2. What is scored is decided in one place for every tool
(demo and pixood-benchmark too, `pixood_ros.bag.scoring`): the region (`--eval-region`) and the
component operating point (`--component-threshold`: SMIYC's best-F1 threshold by default, found
after the last frame, `pixood_ros.bag.best_f1`, or the node's mask threshold).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixood_ros.anomaly_modes import anomaly_mode_parent
from pixood_ros.bag import bagio, ros_names
from pixood_ros.bag.frame_loop import STAGES_BESIDE_ENGINE
from pixood_ros.bag.make_bag import DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC
from pixood_ros.bag.offline import OUTPUT_BAG_NAME, VIDEO_NAME, evaluate
from pixood_ros.bag.options import eval_options, live_options
from pixood_ros.bag.output_bag import DEFAULT_NAMESPACE, DEFAULT_OVERLAY_ALPHA
from pixood_ros.bag.results import EvalResult
from pixood_ros.bag.scoring import NO_SEMANTIC_LABELS
from pixood_ros.bag.scoring_options import add_scoring_arguments
from pixood_ros.cli import (
    OneLineParser,
    count,
    fail,
    non_negative_float,
    positive_float,
    positive_int,
    progress_parent,
    run_parsed,
    unit_interval,
)
from pixood_ros.interruption import interruptible
from pixood_ros.tables import fmt
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

PROG = "pixood-bag-eval"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        parents=[progress_parent(), anomaly_mode_parent()],
        description="Replay a rosbag2 (sqlite3 or mcap) through a PixOOD ONNX model and write a "
        "metrics report (JSON + Markdown + plots) and an output bag with the node's topics.",
    )
    _add_input_arguments(parser)
    parser.add_argument(
        "--threshold",
        type=unit_interval,
        default=DEFAULT_ANOMALY_THRESHOLD,
        help="anomaly threshold of the mask topic (score >= threshold, the node's rule), and of "
        "the component metrics with --component-threshold mask (default: %(default)s, PixOOD's "
        "calibrated scores)",
    )
    add_scoring_arguments(parser, component_option=True, protocol_option=True)
    _add_output_arguments(parser)
    parser.add_argument(
        "--max-frames", type=positive_int, metavar="N", help="evaluate the first N frames"
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        metavar="P",
        help="ONNX Runtime execution providers in order (tensorrt cuda cpu); "
        "default: best available",
    )
    parser.add_argument(
        "--threads",
        type=count,
        default=0,
        metavar="N",
        help="ONNX Runtime CPU threads; 0 = the cores this process may run on less "
        f"{STAGES_BESIDE_ENGINE}, which the decoding, writing and scoring stages keep busy, at "
        "least 1 (default: 0)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results already in OUT_DIR"
    )
    _add_live_arguments(parser)
    return parser


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        type=Path,
        help="the ONNX model file (pixood-export output); not used with --live, where the "
        "running node has its own",
    )
    parser.add_argument("bag", type=Path, help="rosbag2 directory (or a bare .mcap file)")
    parser.add_argument("-o", "--out-dir", type=Path, required=True, help="directory for results")
    parser.add_argument(
        "--topic",
        help="image topic (Image or CompressedImage); default: the only image topic in the bag",
    )
    gt = parser.add_mutually_exclusive_group()
    gt.add_argument(
        "--gt-topic",
        help=f"topic of the OOD masks (mono8: 0 normal, 1 anomaly, 255 void), paired by header "
        f"stamp; default: {DEFAULT_GT_TOPIC} when the bag has it",
    )
    gt.add_argument(
        "--gt-dir",
        type=Path,
        help="folder of OOD mask images instead, the i-th file (sorted) for the i-th frame",
    )
    gt.add_argument(
        "--no-gt", action="store_true", help="ignore ground truth in the bag (speed/outputs only)"
    )
    parser.add_argument(
        "--semantic-gt-topic",
        help=f"topic of semantic train-id labels (mono8, 255 void) for mIoU/ECE; default: "
        f"{DEFAULT_SEMANTIC_TOPIC} when the bag has it",
    )
    parser.add_argument(
        "--stamp-tolerance",
        type=non_negative_float,
        default=0.0,
        metavar="SEC",
        help="largest header-stamp difference for a label to match a frame (default: 0, exact)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overlay-alpha",
        type=unit_interval,
        default=DEFAULT_OVERLAY_ALPHA,
        help=f"opacity of the anomaly tint in the overlay topic/video "
        f"(default: {DEFAULT_OVERLAY_ALPHA}, the node's)",
    )
    parser.add_argument(
        "--video", action="store_true", help=f"also write {VIDEO_NAME} with the overlay"
    )
    parser.add_argument(
        "--output-bag",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"write {OUTPUT_BAG_NAME}/ with the node's topics for rviz playback (default: on)",
    )
    parser.add_argument(
        "--output-storage",
        choices=sorted(bagio.STORAGES),
        default="mcap",
        help="storage of the output bag (default: mcap)",
    )
    parser.add_argument(
        "--raw-outputs",
        action="store_true",
        help="write the output bag's images exactly as the node publishes them (float32 score "
        "and confidence maps, raw overlay; ~28 MB per 1920x1080 frame) instead of the compact "
        "form (zstd chunks, 16-bit PNG scores within 1/65536, JPEG overlay; ~1-2 MB)",
    )
    parser.add_argument(
        "--output-ns",
        type=ros_names.namespace,
        default=DEFAULT_NAMESPACE,
        help=f"namespace of the output topics, the node's (default: {DEFAULT_NAMESPACE})",
    )


def _add_live_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--live",
        action="store_true",
        help="replay into a running pixood node over ROS 2 at the recorded rate instead "
        "(needs rclpy); reports outputs received, drops and end-to-end latency",
    )
    parser.add_argument(
        "--node-ns",
        type=ros_names.namespace,
        default=DEFAULT_NAMESPACE,
        help="live mode: the node's namespace for its output topics "
        f"(default: {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=1.0,
        help="live mode: playback speed factor relative to the recorded rate (default: 1.0)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="live mode: record the node's outputs into OUT_DIR/live_bag and evaluate them",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="SEC",
        help="live mode: wait this long for the node and for the last outputs (default: 5)",
    )


def _print_summary(result: EvalResult, out_dir: Path) -> None:
    rep = result.report
    if rep["mode"] == "live":
        frames, lat = rep["frames"], rep["speed"]["end_to_end_latency_ms"]
        print(
            f"published {frames['published']} frames, node answered {frames['answered']} "
            f"(dropped {frames['dropped']}); latency p50 {fmt(lat['p50'], 1)} ms, "
            f"p99 {fmt(lat['p99'], 1)} ms; report in {out_dir / 'report.md'}"
        )
        return
    frames = rep["frames"]
    line = f"evaluated {frames['evaluated']}/{frames['read']} frames"
    pixel = rep["metrics"].get("pixel")
    if pixel:
        line += f": AP {fmt(pixel.get('ap'))}, AUROC {fmt(pixel.get('auroc'))}, "
        line += f"FPR95 {fmt(pixel.get('fpr95'))}"
        if NO_SEMANTIC_LABELS in rep["metrics"].get("notes", []):
            line += f"; {NO_SEMANTIC_LABELS}"
    line += f"; engine {fmt(rep['speed']['engine_fps'], 1)} fps; report in {out_dir / 'report.md'}"
    print(line)
    if result.failed_frames:
        first = result.failed_frames[0]
        print(
            f"warning: {len(result.failed_frames)} frame(s) could not be evaluated "
            f"(first: #{first['index']}: {first['reason']}); listed in report.json",
            file=sys.stderr,
        )


def _run(args: argparse.Namespace) -> int:
    options = eval_options(args)
    if args.live:
        from pixood_ros.bag.live import run_live

        result = run_live(options, live_options(args))
    else:
        result = evaluate(options)
    _print_summary(result, options.out_dir)
    if result.error:
        kind = "partial report written; " if result.report.get("partial") else ""
        return fail(PROG, f"{kind}{result.error}", result.exit_code)
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (the demo calls it in-process). Ctrl-C and SIGTERM
    while it runs stop the replay cleanly: partial report, exit 130 / 143."""
    parser = build_parser()
    return run_parsed(PROG, parser, argv, lambda args: interruptible(PROG, lambda: _run(args)))


if __name__ == "__main__":
    sys.exit(main())
