"""`pixood-infer MODEL INPUT -o OUT_DIR`: run a PixOOD model over images or a video, offline.

INPUT is an image folder, one image file or a video file. Per frame it writes the anomaly score
(16-bit PNG, value = round(score * 65535), and/or float32 NPY), the mask at `--threshold`, the
semantic map in the model's palette, and optionally a camera | heat map | mask video; plus
`summary.json`. No ROS needed: this is the quickest way to look at what a model does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.render.pictures import colorize_semantic, mask_image, side_by_side
from pixood_ros.render.video import VideoWriter
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_FPS = 10.0
SCORE_PNG_SCALE = 65535


class UserError(Exception):
    """A mistake in the command line or the input (exit code 2, one line)."""


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray | None:
    """RGB uint8 (8-bit conversion of 16-bit / grey / alpha images), None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])


class FrameSource:
    """Frames of a folder, a single image or a video, with names for the output files."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        if not path.exists():
            raise UserError(f"input not found: {path}")
        self.path = path
        self.video_fps: float | None = None
        self.is_video = path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
        if path.is_dir():
            self.images = list_images(path)
            if not self.images:
                raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        elif self.is_video:
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                raise UserError(f"cannot open video {path}")
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.video_fps = fps if fps and np.isfinite(fps) and fps > 0 else None
            self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            capture.release()
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self.images = [path]
        else:
            raise UserError(f"{path} is neither an image folder, an image nor a video")
        self.limit = limit

    def expected_frames(self) -> int | None:
        """For the progress bar; None when a video does not say how long it is."""
        total = len(self.images) if not self.is_video else self.frame_count
        if total is None:
            return self.limit
        return min(total, self.limit) if self.limit else total

    def __iter__(self) -> Iterator[tuple[str, np.ndarray | None]]:
        if self.is_video:
            capture = cv2.VideoCapture(str(self.path))
            index = 0
            try:
                while self.limit is None or index < self.limit:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    yield f"frame_{index:06d}", np.ascontiguousarray(bgr[..., ::-1])
                    index += 1
            finally:
                capture.release()
            return
        for path in self.images[: self.limit]:
            yield path.stem, read_rgb(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixood-infer",
        description="Run a PixOOD ONNX model over an image folder, one image or a video and "
        "write anomaly scores, masks, semantic maps and an overlay video.",
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file (from pixood-export)")
    parser.add_argument("input", type=Path, help="image folder, image file or video file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_ANOMALY_THRESHOLD,
        help="anomaly score at or above which a pixel is anomalous, in [0, 1] (default "
        f"{DEFAULT_ANOMALY_THRESHOLD}: PixOOD's calibrated scores, see pixood_ros.thresholds)",
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
        help="write overlay.mp4: camera with anomalies (turbo) + semantic inset | heat map | mask",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help=f"frame rate of the overlay video (default: the input video's, else {DEFAULT_FPS:g})",
    )
    parser.add_argument(
        "--max-width",
        type=int,
        default=1920,
        help="maximum width of the overlay video frames (default 1920)",
    )
    parser.add_argument("--limit", type=int, default=None, help="process at most this many frames")
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


def _check_args(args: argparse.Namespace) -> None:
    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.max_width < 16:
        raise UserError(f"--max-width must be at least 16, got {args.max_width}")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"output exists and is not a directory: {args.output}")


def run(args: argparse.Namespace) -> dict:
    """Process all frames; returns the summary written to OUT_DIR/summary.json."""
    _check_args(args)
    source = FrameSource(args.input, args.limit)
    segmenter = Segmenter(args.model, providers=args.providers, trt_cache_dir=args.trt_cache_dir)
    out = args.output
    save_png = args.save in ("png", "both")
    save_npy = args.save in ("npy", "both")
    folders = {"anomaly": save_png or save_npy, "mask": args.save != "none"}
    folders["semantic"] = folders["mask"]
    for name, wanted in folders.items():
        if wanted:
            (out / name).mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    fps = args.fps or source.video_fps or DEFAULT_FPS
    video = VideoWriter(out / "overlay.mp4", fps) if args.video else None
    palette = segmenter.info.palette
    frames, skipped, infer_seconds = [], [], 0.0
    progress = tqdm(source, total=source.expected_frames(), unit="frame", disable=args.quiet)
    try:
        for name, rgb in progress:
            if rgb is None:
                logging.warning("skipping unreadable image %s", name)
                skipped.append(name)
                continue
            start = time.perf_counter()
            result = segmenter(rgb)
            infer_seconds += time.perf_counter() - start
            score = result.anomaly_score
            if save_png:
                levels = np.round(np.clip(score, 0, 1) * SCORE_PNG_SCALE).astype(np.uint16)
                cv2.imwrite(str(out / "anomaly" / f"{name}.png"), levels)
            if save_npy:
                np.save(out / "anomaly" / f"{name}.npy", score)
            if folders["mask"]:
                cv2.imwrite(str(out / "mask" / f"{name}.png"), mask_image(score, args.threshold))
                semantic_rgb = colorize_semantic(result.semantic, palette)
                cv2.imwrite(str(out / "semantic" / f"{name}.png"), semantic_rgb[..., ::-1])
            if video is not None:
                video.write(
                    side_by_side(
                        rgb, score, result.semantic, palette, args.threshold, args.max_width
                    )
                )
            frames.append(
                {
                    "name": name,
                    "height": int(score.shape[0]),
                    "width": int(score.shape[1]),
                    "mean_score": float(score.mean()),
                    "max_score": float(score.max()),
                    "anomalous_fraction": float((score >= args.threshold).mean()),
                }
            )
    finally:
        progress.close()
        video_path = video.close() if video is not None else None
    if not frames:
        raise UserError(f"no readable frame in {args.input}")
    summary = {
        "model": str(args.model),
        "input": str(args.input),
        "provider": segmenter.active_provider,
        "threshold": args.threshold,
        "frames": len(frames),
        "skipped": skipped,
        "inference_fps": len(frames) / infer_seconds if infer_seconds > 0 else None,
        "video": str(video_path) if video_path else None,
        "video_codec": video.codec if video is not None else None,
        "per_frame": frames,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except (UserError, ModelError) as exc:
        print(f"pixood-infer: error: {exc}", file=sys.stderr)
        return 2
    rate = summary["inference_fps"]
    print(
        f"{summary['frames']} frames -> {args.output} on {summary['provider']}"
        + (f", {rate:.1f} frames/s inference" if rate else "")
        + (f", video {summary['video']} ({summary['video_codec']})" if summary["video"] else "")
        + (f", {len(summary['skipped'])} unreadable skipped" if summary["skipped"] else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
