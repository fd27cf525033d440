"""`pixood-infer MODEL INPUT -o OUT_DIR`: run a PixOOD model over images or a video, offline.

INPUT is an image folder, one image file or a video file (`pixood_ros.frames`). Per frame it
writes the anomaly score (16-bit PNG, value = round(score * 65535), and/or float32 NPY), the mask
at `--threshold`, the semantic map in the model's palette, and optionally a camera | heat map |
mask video; plus `summary.json`. No ROS needed: this is the quickest way to look at what a model
does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pixood_ros.cli import (
    OneLineParser,
    UserError,
    finite_float,
    options_from,
    positive_int,
    run_parsed,
    threshold_parent,
)
from pixood_ros.engine import ModelError, SegmentationResult, Segmenter
from pixood_ros.frames import SourceError, input_source
from pixood_ros.render.pictures import anomaly_mask, colorize_semantic, side_by_side
from pixood_ros.render.video import VideoWriter
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

PROG = "pixood-infer"
DEFAULT_FPS = 10.0
SCORE_PNG_SCALE = 65535
MIN_VIDEO_WIDTH = 16


@dataclass(frozen=True)
class InferOptions:
    """What `run` does; field names are the command's option names."""

    model: Path
    input: Path
    output: Path
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
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
        "write anomaly scores, masks, semantic maps and an overlay video.",
        parents=[threshold_parent(DEFAULT_ANOMALY_THRESHOLD)],
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file (from pixood-export)")
    parser.add_argument("input", type=Path, help="image folder, image file or video file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output directory")
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
        help="write overlay.mp4: camera with anomalies (turbo) + semantic inset | heat map | mask",
    )
    parser.add_argument(
        "--fps",
        type=finite_float,
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
    if options.fps is not None and not options.fps > 0:
        raise UserError(f"--fps must be positive, got {options.fps}")
    if options.max_width < MIN_VIDEO_WIDTH:
        raise UserError(f"--max-width must be at least {MIN_VIDEO_WIDTH}, got {options.max_width}")
    if options.output.exists() and not options.output.is_dir():
        raise UserError(f"output exists and is not a directory: {options.output}")


class FrameFiles:
    """Writes the per-frame files: anomaly/ (PNG and/or NPY), mask/ and semantic/ (PNG)."""

    def __init__(self, options: InferOptions, palette: Sequence[Sequence[int]]) -> None:
        self.out = options.output
        self.threshold = options.threshold
        self.palette = palette
        self.png = options.save in ("png", "both")
        self.npy = options.save in ("npy", "both")
        self.maps = options.save != "none"
        folders = {"anomaly": self.png or self.npy, "mask": self.maps, "semantic": self.maps}
        for name, wanted in folders.items():
            if wanted:
                (self.out / name).mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, result: SegmentationResult) -> None:
        score = result.anomaly_score
        if self.png:
            levels = np.round(np.clip(score, 0, 1) * SCORE_PNG_SCALE).astype(np.uint16)
            cv2.imwrite(str(self.out / "anomaly" / f"{name}.png"), levels)
        if self.npy:
            np.save(self.out / "anomaly" / f"{name}.npy", score)
        if self.maps:
            cv2.imwrite(str(self.out / "mask" / f"{name}.png"), anomaly_mask(score, self.threshold))
            semantic_rgb = colorize_semantic(result.semantic, self.palette)
            cv2.imwrite(str(self.out / "semantic" / f"{name}.png"), semantic_rgb[..., ::-1])


def _frame_summary(name: str, score: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "height": int(score.shape[0]),
        "width": int(score.shape[1]),
        "mean_score": float(score.mean()),
        "max_score": float(score.max()),
        "anomalous_fraction": float((score >= threshold).mean()),
    }


def run(options: InferOptions) -> dict[str, Any]:
    """Process all frames; returns the summary written to OUT_DIR/summary.json."""
    _check(options)
    skipped: list[str] = []

    def skip(path: Path, error: SourceError) -> None:
        logging.warning("skipping %s", error)
        skipped.append(path.stem)

    source = input_source(options.input, on_unreadable=skip)
    segmenter = Segmenter(
        options.model, providers=options.providers, trt_cache_dir=options.trt_cache_dir
    )
    palette = segmenter.info.palette
    files = FrameFiles(options, palette)
    fps = options.fps or source.native_rate or DEFAULT_FPS
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
    per_frame, infer_seconds = [], 0.0
    try:
        for frame in frames:
            name = Path(frame.name).stem
            start = time.perf_counter()
            result = segmenter(frame.rgb)
            infer_seconds += time.perf_counter() - start
            files.write(name, result)
            if video is not None:
                video.write(
                    side_by_side(frame.rgb, result.anomaly_score, result.semantic, palette,
                                 options.threshold, options.max_width)
                )  # fmt: skip
            per_frame.append(_frame_summary(name, result.anomaly_score, options.threshold))
    finally:
        frames.close()
        video_path = video.close() if video is not None else None
    if not per_frame:
        raise UserError(f"no readable frame in {options.input}")
    summary = {
        "model": str(options.model),
        "input": str(options.input),
        "provider": segmenter.active_provider,
        "threshold": options.threshold,
        "frames": len(per_frame),
        "skipped": skipped,
        "inference_fps": len(per_frame) / infer_seconds if infer_seconds > 0 else None,
        "video": str(video_path) if video_path else None,
        "video_codec": video.codec if video is not None else None,
        "per_frame": per_frame,
    }
    (options.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _run(args: argparse.Namespace) -> int:
    try:
        summary = run(options_from(InferOptions, args))
    except ModelError as exc:  # the model file is the user's input
        raise UserError(str(exc)) from exc
    rate = summary["inference_fps"]
    print(
        f"{summary['frames']} frames -> {args.output} on {summary['provider']}"
        + (f", {rate:.1f} frames/s inference" if rate else "")
        + (f", video {summary['video']} ({summary['video_codec']})" if summary["video"] else "")
        + (f", {len(summary['skipped'])} unreadable skipped" if summary["skipped"] else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_parsed(PROG, build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
