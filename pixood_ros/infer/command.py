"""`pixood-infer MODEL INPUT -o OUT_DIR`: run a PixOOD model over images or a video, offline.

INPUT is an image folder, one image file or a video file (`pixood_ros.frames`). Per frame it
writes the anomaly score of `--anomaly-mode` (`pixood_ros.anomaly_modes`; 16-bit PNG, value =
round(score * 65535), and/or float32 NPY), the mask at `--threshold`, the semantic map in the
model's palette, and optionally a camera | heat map | mask video; plus `summary.json`, which with
`--gt-dir` (OOD masks) also holds every mode's whole-frame figures. No ROS needed: this is the
quickest way to look at what a model does.

A failed write (full disk, read-only folder), Ctrl-C or SIGTERM stops the run with one line and a
non-zero exit code (1; 130 for Ctrl-C, 143 for SIGTERM); summary.json then says `"partial": true`
and lists only the frames whose files were all written.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros import durable, interruption
from pixood_ros.anomaly_modes import (
    DEFAULT_ANOMALY_MODE,
    WholeFrameFigures,
    anomaly_map,
    anomaly_mode_parent,
    check_mode,
    describe_figures,
)
from pixood_ros.cli import (
    EXIT_FAILED,
    OneLineParser,
    UserError,
    fail,
    one_line,
    options_from,
    positive_float,
    positive_int,
    run_parsed,
    threshold_parent,
)
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.frames import Source, SourceError, folder_or_video_source, input_source
from pixood_ros.infer.files import NAMING, FrameFiles, output_names
from pixood_ros.render.pictures import side_by_side
from pixood_ros.render.video import VideoWriter
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

PROG = "pixood-infer"
DEFAULT_FPS = 10.0
MIN_VIDEO_WIDTH = 16
MAX_VIDEO_FPS = 1000.0  # MPEG-4 time bases end near 65535; no camera comes close to this
SUMMARY = "summary.json"


@dataclass(frozen=True)
class InferOptions:
    """What `run` does; field names are the command's option names."""

    model: Path
    input: Path
    output: Path
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
    anomaly_mode: str = DEFAULT_ANOMALY_MODE
    gt_dir: Path | None = None
    save: str = "png"
    video: bool = False
    fps: float | None = None
    max_width: int = 1920
    limit: int | None = None
    providers: list[str] | None = None
    trt_cache_dir: Path | None = None
    quiet: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Run a PixOOD ONNX model over an image folder, one image or a video and "
        "write anomaly scores, masks, semantic maps and an overlay video. " + NAMING,
        parents=[threshold_parent(DEFAULT_ANOMALY_THRESHOLD), anomaly_mode_parent()],
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file (from pixood-export)")
    parser.add_argument("input", type=Path, help="image folder, image file or video file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--gt-dir",
        type=Path,
        default=None,
        help="OOD masks (0 in-distribution, 1 anomaly, 255 void) named like the images: "
        "summary.json then gives every mode's whole-frame figures at --threshold",
    )
    parser.add_argument(
        "--save",
        choices=("png", "npy", "both", "none"),
        default="png",
        help="anomaly score format: 16-bit PNG (score*65535), float32 NPY, both, or none "
        "(default png); masks and semantic maps are always PNG unless 'none'",
    )
    parser.add_argument(
        "--video",
        action="store_true",
        help="write overlay.mp4: the node's overlay with semantic inset | heat map | mask, with a "
        "colour bar and the class legend",
    )
    parser.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help=f"frame rate of the overlay video (default: the input video's, else {DEFAULT_FPS:g})",
    )
    parser.add_argument(
        "--max-width",
        type=positive_int,
        default=1920,
        help="maximum width of the overlay video frames (default 1920)",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="process at most this many frames"
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=None,
        help="ONNX Runtime execution providers in order (tensorrt cuda cpu; default: all "
        "available in that order)",
    )
    parser.add_argument(
        "--trt-cache-dir", type=Path, default=None, help="TensorRT engine cache directory"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _check(options: InferOptions) -> None:
    if options.fps is not None and options.fps > MAX_VIDEO_FPS:
        raise UserError(f"--fps must be at most {MAX_VIDEO_FPS:g}, got {options.fps:g}")
    if options.max_width < MIN_VIDEO_WIDTH:
        raise UserError(f"--max-width must be at least {MIN_VIDEO_WIDTH}, got {options.max_width}")
    if options.output.exists() and not options.output.is_dir():
        raise UserError(f"output exists and is not a directory: {options.output}")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _frame_summary(name: str, score: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "height": int(score.shape[0]),
        "width": int(score.shape[1]),
        "mean_score": _finite(float(score.mean())),
        "max_score": _finite(float(score.max())),
        "anomalous_fraction": float((score >= threshold).mean()),
    }


@dataclass
class _Progress:
    """What a run has done so far: the frames whose files are all written, the skipped inputs."""

    per_frame: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    infer_seconds: float = 0.0
    video_path: Path | None = None
    video_codec: str | None = None
    figures: WholeFrameFigures | None = None


def _stop_reason(cause: BaseException) -> str:
    return interruption.describe(cause) if isinstance(cause, KeyboardInterrupt) else one_line(cause)


class InferStopped(Exception):
    """The run stopped early (a failed write, Ctrl-C); the partial summary is written where the
    disk still allows it (`summary_path`, None when it could not be)."""

    def __init__(self, cause: BaseException, frames: int, summary_path: Path | None) -> None:
        where = f"partial summary in {summary_path}" if summary_path else f"{SUMMARY} not written"
        reason = _stop_reason(cause)
        super().__init__(f"{reason}; stopped after {frames} complete frame(s), {where}")
        interrupted = isinstance(cause, KeyboardInterrupt)
        self.exit_code = interruption.exit_code(cause) if interrupted else EXIT_FAILED


def _process(
    source: Source,
    names: Callable[[str], str],
    segmenter: Segmenter,
    files: FrameFiles,
    options: InferOptions,
    progress: _Progress,
) -> None:
    """Segment and write every frame, recording each one in `progress` once its files exist."""
    native = source.native_rate if (source.native_rate or 0) <= MAX_VIDEO_FPS else None
    fps = options.fps or native or DEFAULT_FPS
    video = VideoWriter(options.output / "overlay.mp4", fps) if options.video else None
    total = (
        source.count if options.limit is None else min(source.count or options.limit, options.limit)
    )
    frames = tqdm(
        itertools.islice(source.frames, options.limit),
        total=total,
        unit="frame",
        disable=options.quiet,
    )
    info = segmenter.info
    palette, eval_labels, class_names = info.palette, info.eval_labels, info.class_names
    try:
        for frame in frames:
            name = names(frame.name)
            start = time.perf_counter()
            result = segmenter(frame.rgb)
            progress.infer_seconds += time.perf_counter() - start
            score = anomaly_map(result, options.anomaly_mode, eval_labels)
            with interruption.deferred():  # a signal waits until the frame is recorded
                files.write(name, result, score)
                if video is not None:
                    video.write(
                        side_by_side(frame.rgb, score, result.semantic, palette,
                                     options.threshold, options.max_width,
                                     class_names=class_names, ood_gt=frame.ood)
                    )  # fmt: skip
                if progress.figures is not None and frame.ood is not None:
                    progress.figures.add(result, frame.ood)
                progress.per_frame.append(_frame_summary(name, score, options.threshold))
    finally:
        frames.close()
        if video is not None:
            progress.video_path = video.close()
            progress.video_codec = video.codec


def _summary(options: InferOptions, provider: str, progress: _Progress) -> dict[str, Any]:
    done = len(progress.per_frame)
    return {
        "model": str(options.model),
        "input": str(options.input),
        "provider": provider,
        "threshold": options.threshold,
        "anomaly_mode": options.anomaly_mode,
        "whole_frame": progress.figures.summary() if progress.figures else None,
        "partial": False,
        "frames": done,
        "skipped": progress.skipped,
        "inference_fps": done / progress.infer_seconds if progress.infer_seconds > 0 else None,
        "video": str(progress.video_path) if progress.video_path else None,
        "video_codec": progress.video_codec if progress.video_path else None,
        "per_frame": progress.per_frame,
    }


def run(options: InferOptions) -> dict[str, Any]:
    """Process all frames; returns the summary written to OUT_DIR/summary.json. A failed write
    or Ctrl-C raises InferStopped after writing the partial summary."""
    _check(options)
    progress = _Progress()

    def skip(path: Path, error: SourceError) -> None:
        logging.warning("skipping %s", error)
        progress.skipped.append(names(path.name))

    def names(file_name: str) -> str:
        return unique.get(file_name, Path(file_name).stem)

    if options.gt_dir is None:
        source = input_source(options.input, on_unreadable=skip)
    else:
        source = folder_or_video_source(options.input, options.gt_dir, None)
    unique = output_names(source.file_names or [])

    segmenter = Segmenter(
        options.model, providers=options.providers, trt_cache_dir=options.trt_cache_dir
    )
    info = segmenter.info
    check_mode(options.anomaly_mode, info.anomaly_modes, options.model.name)
    if options.gt_dir is not None:
        figures = WholeFrameFigures(info.anomaly_modes, info.eval_labels, options.threshold)
        progress.figures = figures
    files = FrameFiles(options.output, options.save, options.threshold, segmenter.info.palette)
    durable.remove_stale_temporaries(options.output)
    # a summary of an earlier run must not vouch for files this run may not get to write
    (options.output / SUMMARY).unlink(missing_ok=True)
    try:
        _process(source, names, segmenter, files, options, progress)
    except (OSError, KeyboardInterrupt) as exc:
        summary = _summary(options, segmenter.active_provider, progress)
        summary.update(partial=True, error=_stop_reason(exc))
        path: Path | None = options.output / SUMMARY
        try:
            durable.write_json(path, summary)
        except OSError:
            path = None
        raise InferStopped(exc, summary["frames"], path) from exc
    if not progress.per_frame:
        raise UserError(f"no readable frame in {options.input}")
    summary = _summary(options, segmenter.active_provider, progress)
    durable.write_json(options.output / SUMMARY, summary)
    return summary


def _run(args: argparse.Namespace) -> int:
    try:
        summary = run(options_from(InferOptions, args))
    except ModelError as exc:  # the model file is the user's input
        raise UserError(str(exc)) from exc
    except InferStopped as stop:
        return fail(PROG, str(stop), stop.exit_code)
    rate = summary["inference_fps"]
    print(
        f"{summary['frames']} frames -> {args.output} on {summary['provider']}"
        + (f", {rate:.1f} frames/s inference" if rate else "")
        + (f", video {summary['video']} ({summary['video_codec']})" if summary["video"] else "")
        + (f", {len(summary['skipped'])} unreadable skipped" if summary["skipped"] else "")
    )
    for line in describe_figures(summary["whole_frame"] or {}):
        print(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Ctrl-C and SIGTERM end a run like the bag tools' (`pixood_ros.interruption`): partial
    summary.json, one line, exit 130 / 143."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_parsed(
        PROG,
        build_parser(),
        argv,
        lambda args: interruption.interruptible(PROG, lambda: _run(args)),
    )


if __name__ == "__main__":
    sys.exit(main())
