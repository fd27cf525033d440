"""`pixood-bag-eval MODEL BAG -o OUT_DIR`: replay a rosbag2 through the model and report.

Offline (default) the bag is read with rosbags and every frame goes through the same decode
(`pixood_ros.image_conversion`) and engine (`pixood_ros.engine.Segmenter`) as the node, as fast
as the machine allows, no ROS needed. Ground truth (OOD masks 0/1/255, optional semantic train
ids) comes from topics in the bag, paired by header stamp, or from a folder, paired by order.
Writes report.json / report.md, PR / ROC / histogram plots, an output bag with the node's topics
for rviz, and optionally an overlay video. What is scored is decided in one place for every tool
(demo and pixood-benchmark too): the region (`--eval-region`, `pixood_ros.metrics.region`) and the
component operating point (`--component-threshold`: SMIYC's best-F1 threshold by default, found
after the last frame, `pixood_ros.bag.best_f1`, or the node's mask threshold). `--live` instead
replays the bag into a running node over ROS 2 (see `pixood_ros.bag.live`).

Damaged input never loses work: whatever was evaluated before the failure goes into a report
marked partial, then the error is printed and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros import image_conversion
from pixood_ros.bag import bagio, report
from pixood_ros.bag.bag_input import BagDamaged, BagInput
from pixood_ros.bag.bagio import BagError, BagMessage
from pixood_ros.bag.make_bag import DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC
from pixood_ros.bag.output_bag import DEFAULT_NAMESPACE, DEFAULT_OVERLAY_ALPHA, OutputBag
from pixood_ros.bag.pairing import PairingStats, pair_by_stamp
from pixood_ros.bag.scoring import (
    BEST_F1,
    COMPONENT_THRESHOLDS,
    EvalMetrics,
    add_scoring_arguments,
)
from pixood_ros.frames import SourceError, list_images, read_label
from pixood_ros.metrics import region as regions
from pixood_ros.render.outputs import render_overlay
from pixood_ros.render.video import VideoWriter
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

EXIT_USER_ERROR = 2
EXIT_RUNTIME_ERROR = 1
OUTPUT_BAG_NAME = "output_bag"
VIDEO_NAME = "overlay.mp4"


class UserError(Exception):
    """A mistake in the command line or the inputs: one line, exit code 2."""


@dataclass
class EvalOptions:
    model: Path
    bag: Path
    out_dir: Path
    topic: str | None = None
    gt_topic: str | None = None
    semantic_gt_topic: str | None = None
    gt_dir: Path | None = None
    use_gt: bool = True
    tolerance_ns: int = 0
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
    overlay_alpha: float = DEFAULT_OVERLAY_ALPHA
    video: bool = False
    output_bag: bool = True
    output_storage: str = "mcap"
    output_ns: str = DEFAULT_NAMESPACE
    max_frames: int | None = None
    track: str = "auto"
    min_pred_size: int | None = None
    min_gt_size: int | None = None
    eval_region: str = regions.AUTO
    component_threshold: str = BEST_F1
    providers: list[str] | None = None
    overwrite: bool = False
    progress: bool = True


@dataclass
class EvalResult:
    report: dict[str, Any]
    exit_code: int
    error: str | None = None
    failed_frames: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Run:
    """Counters of one run (what the report says about frames and speed)."""

    read: int = 0
    evaluated: int = 0
    without_gt: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    engine_s: float = 0.0
    wall_s: float = 0.0
    first_stamp: int | None = None
    last_stamp: int | None = None

    def fail(self, index: int, stamp_ns: int, reason: str) -> None:
        self.failed.append({"index": index, "stamp_ns": stamp_ns, "reason": reason})


class _GtFolder:
    """Ground-truth OOD masks from a folder, the i-th file for the i-th frame."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.files = list_images(folder)
        except SourceError as exc:
            raise UserError(str(exc)) from exc

    def label(self, index: int, shape: tuple[int, int]) -> np.ndarray | None:
        if index >= len(self.files):
            return None
        return read_label(self.files[index], shape, "OOD mask")


def _decode_labels(msg: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """A mono8 label image of the frame's size, else ValueError with the reason."""
    if getattr(msg, "encoding", None) not in ("mono8", "8UC1"):
        raise ValueError(f"{what} has encoding {getattr(msg, 'encoding', '?')}, expected mono8")
    labels = image_conversion.image_to_array(msg)
    if labels.shape != shape:
        raise ValueError(
            f"{what} is {labels.shape[1]}x{labels.shape[0]} but the frame is {shape[1]}x{shape[0]}"
        )
    return labels


def _check_label_topic(bag: BagInput, topic: str, option: str) -> None:
    types = bag.topic_types()
    if topic not in types:
        raise BagError(f"{option} {topic} is not in the bag (topics: {', '.join(sorted(types))})")
    if types[topic] != bagio.IMAGE_TYPE:
        raise BagError(
            f"{option} {topic} has type {types[topic]}, expected a mono8 {bagio.IMAGE_TYPE}"
        )


def _resolve_gt_topics(bag: BagInput, options: EvalOptions) -> tuple[str | None, str | None]:
    """Explicit topics must exist; without them the default topic names are used if present."""
    if not options.use_gt:
        return None, None
    types = bag.topic_types()
    ood = options.gt_topic
    if ood is not None:
        _check_label_topic(bag, ood, "--gt-topic")
    elif options.gt_dir is None and types.get(DEFAULT_GT_TOPIC) == bagio.IMAGE_TYPE:
        ood = DEFAULT_GT_TOPIC
    semantic = options.semantic_gt_topic
    if semantic is not None:
        _check_label_topic(bag, semantic, "--semantic-gt-topic")
    elif types.get(DEFAULT_SEMANTIC_TOPIC) == bagio.IMAGE_TYPE:
        semantic = DEFAULT_SEMANTIC_TOPIC
    return ood, semantic


def _prepare_out_dir(options: EvalOptions) -> None:
    out = options.out_dir
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    produced = [out / "report.json", out / OUTPUT_BAG_NAME, out / VIDEO_NAME]
    existing = [p for p in produced if p.exists()]
    if existing and not options.overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace the results)")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _load_engine(options: EvalOptions) -> Any:
    from pixood_ros.engine import ModelError, Segmenter

    try:
        return Segmenter(options.model, providers=options.providers)
    except ModelError as exc:
        raise UserError(f"cannot use model: {exc}") from exc


def evaluate(options: EvalOptions) -> EvalResult:
    """Run the offline evaluation; raises UserError / BagError for problems found up front."""
    if not 0.0 <= options.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {options.threshold}")
    if not 0.0 <= options.overlay_alpha <= 1.0:
        raise UserError(f"--overlay-alpha must be in [0, 1], got {options.overlay_alpha}")
    if options.max_frames is not None and options.max_frames <= 0:
        raise UserError(f"--max-frames must be positive, got {options.max_frames}")
    if not options.model.is_file():
        raise UserError(f"model not found: {options.model}")
    gt_folder = _GtFolder(options.gt_dir) if options.gt_dir is not None else None
    bag = BagInput(options.bag)
    try:
        ood_topic, semantic_topic = _resolve_gt_topics(bag, options)
        label_topics = {DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC, ood_topic, semantic_topic}
        topic = bag.choose_image_topic(options.topic, label_topics - {None})
        engine = _load_engine(options)
        region = choose_region(options, engine.info, semantic_topic is not None)
        _prepare_out_dir(options)
        with make_metrics(options, region, len(engine.info.class_names)) as metrics:
            return _evaluate_frames(
                options, bag, topic, ood_topic, semantic_topic, gt_folder, engine, metrics
            )
    finally:
        bag.close()


def choose_region(options: EvalOptions, info: Any, has_semantic_gt: bool) -> regions.ScoredRegion:
    """The scored region for this model and these ground-truth topics (user error if the
    requested one is impossible)."""
    try:
        return regions.choose_region(
            options.eval_region, info.eval_labels, len(info.class_names), has_semantic_gt
        )
    except ValueError as exc:
        raise UserError(f"--eval-region: {exc}") from exc


def make_metrics(
    options: EvalOptions, region: regions.ScoredRegion, num_classes: int
) -> EvalMetrics:
    """The metrics of one run, as every bag tool (offline, live, demo) configures them."""
    return EvalMetrics(
        options.threshold,
        num_classes=num_classes,
        track=options.track,
        min_pred_size=options.min_pred_size,
        min_gt_size=options.min_gt_size,
        component_threshold=options.component_threshold,
        region=region,
        spill_dir=options.out_dir,
    )


def _evaluate_frames(
    options: EvalOptions,
    bag: BagInput,
    topic: str,
    ood_topic: str | None,
    semantic_topic: str | None,
    gt_folder: _GtFolder | None,
    engine: Any,
    metrics: EvalMetrics,
) -> EvalResult:
    from pixood_ros.engine import InputError

    label_topics = [t for t in (ood_topic, semantic_topic) if t]
    pairing = PairingStats()
    counts = bag.message_counts()
    total = counts.get(topic, 0)
    if options.max_frames is not None:
        total = min(total, options.max_frames)
    out_bag = None
    if options.output_bag:
        out_bag = OutputBag(
            options.out_dir / OUTPUT_BAG_NAME,
            options.output_storage,
            options.output_ns,
            topic,
            bag.topic_types()[topic],
        )
    video = None
    if options.video:
        video = VideoWriter(options.out_dir / VIDEO_NAME, _recorded_rate(bag, topic))
    run = _Run()
    error: str | None = None
    exit_code = 0
    interrupted = bag.salvaged
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", desc="evaluate", disable=not options.progress)
    frames = _limited(
        pair_by_stamp(
            bag.messages([topic, *label_topics]),
            topic,
            label_topics,
            options.tolerance_ns,
            stats=pairing,
        ),
        options.max_frames,
    )
    try:
        for frame, labels in frames:
            index = run.read
            run.read += 1
            bar.update()
            run.first_stamp = frame.stamp_ns if run.first_stamp is None else run.first_stamp
            run.last_stamp = frame.stamp_ns
            try:
                rgb = image_conversion.message_to_rgb(frame.msg)
            except image_conversion.BadImage as exc:
                run.fail(index, frame.stamp_ns, f"undecodable frame ({exc})")
                continue
            t0 = time.perf_counter()
            try:
                result = engine(rgb)
            except InputError as exc:
                run.fail(index, frame.stamp_ns, f"engine refused the frame ({exc})")
                continue
            elapsed = time.perf_counter() - t0
            run.engine_s += elapsed
            run.latencies_ms.append(elapsed * 1e3)
            score = result.anomaly_score
            if out_bag is not None:
                out_bag.write(
                    frame.bag_time_ns,
                    frame.msg,
                    rgb,
                    result,
                    options.threshold,
                    options.overlay_alpha,
                )
            if video is not None:
                bgr = render_overlay(rgb, score, options.overlay_alpha)
                video.write(bgr[..., ::-1])
            metrics.add_scores(score)
            ok = _score_frame(
                metrics, run, index, frame, labels, ood_topic, semantic_topic, gt_folder, result
            )
            if ok:
                run.evaluated += 1
    except BagDamaged as exc:
        error, exit_code, interrupted = str(exc), EXIT_USER_ERROR, True
    except Exception as exc:  # engine crash, disk full, ...: keep what we have
        error = f"evaluation stopped at frame {run.read}: {bagio.one_line(exc)}"
        exit_code, interrupted = EXIT_RUNTIME_ERROR, True
    finally:
        bar.close()
        run.wall_s = time.perf_counter() - start
        if out_bag is not None:
            out_bag.close()
        if video is not None:
            video.close()
    if error is None and bag.salvaged:
        error, exit_code = f"bag could not be opened normally ({bag.open_error})", EXIT_USER_ERROR
    if error is None:
        error, exit_code = _judge(run, ood_topic or gt_folder, metrics)
    rep = _build_report(
        options,
        bag,
        topic,
        ood_topic,
        semantic_topic,
        engine,
        metrics,
        run,
        pairing,
        error=error,
        partial=interrupted,
    )
    rep["outputs"] = {}
    if out_bag is not None:
        rep["outputs"]["output_bag"] = str(out_bag.path)
        rep["outputs"]["output_topics"] = out_bag.topics
    if video is not None:
        rep["outputs"]["overlay_video"] = str(video.path)
    rep["plots"] = report.write_plots(metrics, options.out_dir)
    report.write_json(rep, options.out_dir)
    report.write_markdown(rep, options.out_dir)
    return EvalResult(rep, exit_code, error, run.failed)


def _recorded_rate(bag: BagInput, topic: str) -> float:
    """Frames per second of the image topic from the bag's counts and duration (video speed)."""
    duration_s = bag.duration_ns() / 1e9
    count = bag.message_counts().get(topic, 0)
    return (count - 1) / duration_s if count > 1 and duration_s > 0 else 10.0


def _limited(pairs: Iterator, limit: int | None) -> Iterator:
    for count, item in enumerate(pairs):
        if limit is not None and count >= limit:
            return
        yield item


def _score_frame(
    metrics: EvalMetrics,
    run: _Run,
    index: int,
    frame: BagMessage,
    labels: dict[str, BagMessage | None],
    ood_topic: str | None,
    semantic_topic: str | None,
    gt_folder: _GtFolder | None,
    result: Any,
) -> bool:
    """Add the frame's ground truth to the metrics; False (and a listed reason) if it cannot."""
    shape = result.anomaly_score.shape
    try:
        sem = None
        if semantic_topic is not None and labels.get(semantic_topic) is not None:
            sem = _decode_labels(labels[semantic_topic].msg, shape, "semantic ground truth")
        if ood_topic is not None or gt_folder is not None:
            if gt_folder is not None:
                ood = gt_folder.label(index, shape)
            else:
                msg = labels.get(ood_topic)
                ood = _decode_labels(msg.msg, shape, "OOD ground truth") if msg else None
            if ood is None:
                run.without_gt.append(index)
            else:
                metrics.add_ood(result.anomaly_score, ood, sem)
        if sem is not None:
            metrics.add_semantic(result.semantic, result.confidence, sem)
    except (ValueError, SourceError, image_conversion.BadImage) as exc:
        run.fail(index, frame.stamp_ns, f"ground truth unusable ({bagio.one_line(exc)})")
        return False
    return True


def _judge(run: _Run, has_gt: object, metrics: EvalMetrics) -> tuple[str | None, int]:
    """A finished run still fails when nothing could be evaluated against the ground truth."""
    if run.read == 0:
        return "no frame could be evaluated: the image topic has no messages", EXIT_USER_ERROR
    if run.evaluated == 0:
        first = run.failed[0]["reason"] if run.failed else "unknown reason"
        return f"no frame could be evaluated; first problem: {first}", EXIT_USER_ERROR
    if has_gt and metrics.frames_with_ood_gt == 0:
        return "no frame could be evaluated: no ground truth matched any frame", EXIT_USER_ERROR
    return None, 0


def _build_report(
    options: EvalOptions,
    bag: BagInput,
    topic: str,
    ood_topic: str | None,
    semantic_topic: str | None,
    engine: Any,
    metrics: EvalMetrics,
    run: _Run,
    pairing: PairingStats,
    *,
    error: str | None,
    partial: bool,
) -> dict[str, Any]:
    info = engine.info
    gt_sources = []
    if options.gt_dir is not None:
        gt_sources.append(f"OOD masks from folder {options.gt_dir} (by order)")
    if ood_topic:
        gt_sources.append(f"OOD masks on {ood_topic}")
    if semantic_topic:
        gt_sources.append(f"semantic labels on {semantic_topic}")
    if run.first_stamp is not None and run.last_stamp is not None and run.read > 1:
        recorded_rate = (run.read - 1) / max((run.last_stamp - run.first_stamp) / 1e9, 1e-9)
    else:
        recorded_rate = None
    return {
        "tool": "pixood-bag-eval",
        "mode": "offline",
        "partial": partial,
        "error": error,
        "model": {
            "path": str(options.model),
            "scorer": info.scorer,
            "config_hash": info.config_hash,
            "classes": len(info.class_names),
            "provider": engine.active_provider,
        },
        "input": {
            "bag": str(options.bag),
            "storage": bag.storage,
            "salvaged": bag.salvaged,
            "topic": topic,
            "msgtype": bag.topic_types()[topic],
            "ground_truth": "; ".join(gt_sources),
            "stamp_tolerance_ns": options.tolerance_ns,
            "recorded_rate_hz": recorded_rate,
        },
        "frames": {
            "read": run.read,
            "evaluated": run.evaluated,
            "failed": len(run.failed),
            "without_gt": len(run.without_gt),
            "without_gt_indices": run.without_gt[: report.MAX_LISTED_FRAMES],
            "unmatched_gt_messages": dict(pairing.unmatched_labels),
        },
        "speed": {
            "engine_fps": len(run.latencies_ms) / run.engine_s if run.engine_s > 0 else None,
            "end_to_end_fps": run.read / run.wall_s if run.wall_s > 0 else None,
            "engine_latency_ms": report.latency_summary(run.latencies_ms),
            "wall_s": run.wall_s,
        },
        "metrics": metrics.summary(list(info.class_names)),
        "failed_frames": run.failed,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixood-bag-eval",
        description="Replay a rosbag2 (sqlite3 or mcap) through a PixOOD ONNX model and write a "
        "metrics report (JSON + Markdown + plots) and an output bag with the node's topics.",
    )
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
        type=float,
        default=0.0,
        metavar="SEC",
        help="largest header-stamp difference for a label to match a frame (default: 0, exact)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_ANOMALY_THRESHOLD,
        help="anomaly threshold of the mask topic (score >= threshold, the node's rule), and of "
        "the component metrics with --component-threshold mask (default: %(default)s, PixOOD's "
        "calibrated scores)",
    )
    parser.add_argument(
        "--overlay-alpha",
        type=float,
        default=DEFAULT_OVERLAY_ALPHA,
        help=f"opacity of the anomaly tint in the overlay topic/video "
        f"(default: {DEFAULT_OVERLAY_ALPHA}, the node's)",
    )
    parser.add_argument(
        "--component-threshold",
        choices=COMPONENT_THRESHOLDS,
        default=BEST_F1,
        help="threshold of the component metrics (sIoU/PPV/F1): best-f1 = the data set's exact "
        "best-F1 pixel threshold as SMIYC does, found after the last frame with a second pass "
        "over a temporary score file in OUT_DIR (5 bytes per pixel, removed at the end); mask = "
        "--threshold, the node's mask (default: best-f1)",
    )
    add_scoring_arguments(parser)
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
        "--output-ns",
        default=DEFAULT_NAMESPACE,
        help=f"namespace of the output topics, the node's (default: {DEFAULT_NAMESPACE})",
    )
    parser.add_argument("--max-frames", type=int, metavar="N", help="evaluate the first N frames")
    parser.add_argument(
        "--providers",
        nargs="+",
        metavar="P",
        help="ONNX Runtime execution providers in order (tensorrt cuda cpu); "
        "default: best available",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results already in OUT_DIR"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="replay into a running pixood node over ROS 2 at the recorded rate instead "
        "(needs rclpy); reports outputs received, drops and end-to-end latency",
    )
    parser.add_argument(
        "--node-ns",
        default=DEFAULT_NAMESPACE,
        help="live mode: the node's namespace for its output topics "
        f"(default: {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--rate",
        type=float,
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
        type=float,
        default=5.0,
        metavar="SEC",
        help="live mode: wait this long for the node and for the last outputs (default: 5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    return EvalOptions(
        model=args.model,
        bag=args.bag,
        out_dir=args.out_dir,
        topic=args.topic,
        gt_topic=args.gt_topic,
        semantic_gt_topic=args.semantic_gt_topic,
        gt_dir=args.gt_dir,
        use_gt=not args.no_gt,
        tolerance_ns=round(args.stamp_tolerance * 1e9),
        threshold=args.threshold,
        overlay_alpha=args.overlay_alpha,
        video=args.video,
        output_bag=args.output_bag,
        output_storage=args.output_storage,
        output_ns=args.output_ns,
        max_frames=args.max_frames,
        track=args.track,
        min_pred_size=args.min_pred_size,
        min_gt_size=args.min_gt_size,
        eval_region=args.eval_region,
        component_threshold=args.component_threshold,
        providers=args.providers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )


def _print_summary(result: EvalResult, out_dir: Path) -> None:
    rep = result.report
    if rep["mode"] == "live":
        frames, lat = rep["frames"], rep["speed"]["end_to_end_latency_ms"]
        print(
            f"published {frames['published']} frames, node answered {frames['answered']} "
            f"(dropped {frames['dropped']}); latency p50 {report._fmt(lat['p50'], 1)} ms, "
            f"p99 {report._fmt(lat['p99'], 1)} ms; report in {out_dir / 'report.md'}"
        )
        return
    frames = rep["frames"]
    line = f"evaluated {frames['evaluated']}/{frames['read']} frames"
    pixel = rep["metrics"].get("pixel")
    if pixel:
        line += f": AP {report._fmt(pixel.get('ap'))}, AUROC {report._fmt(pixel.get('auroc'))}, "
        line += f"FPR95 {report._fmt(pixel.get('fpr95'))}"
    fps = rep["speed"]["engine_fps"]
    line += f"; engine {report._fmt(fps, 1)} fps; report in {out_dir / 'report.md'}"
    print(line)
    if result.failed_frames:
        first = result.failed_frames[0]
        print(
            f"warning: {len(result.failed_frames)} frame(s) could not be evaluated "
            f"(first: #{first['index']}: {first['reason']}); listed in report.json",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.stamp_tolerance < 0:
        print("pixood-bag-eval: error: --stamp-tolerance must be >= 0", file=sys.stderr)
        return EXIT_USER_ERROR
    options = options_from_args(args)
    try:
        if args.live:
            from pixood_ros.bag.live import LiveOptions, run_live

            result = run_live(
                options,
                LiveOptions(
                    node_ns=args.node_ns, rate=args.rate, record=args.record, timeout=args.timeout
                ),
            )
        else:
            result = evaluate(options)
    except (UserError, BagError) as exc:
        print(f"pixood-bag-eval: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    _print_summary(result, options.out_dir)
    if result.error:
        kind = "partial report written; " if result.report.get("partial") else ""
        print(f"pixood-bag-eval: error: {kind}{result.error}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
