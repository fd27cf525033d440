"""`pixood-build-engine MODEL --height H --width W`: build and cache the TensorRT engine of a model
for one camera size, then exit.

Building takes minutes; doing it here (on the robot, once per model, camera size and
TensorRT/ONNX Runtime version) means the node's first configure only loads the cached engine. The
engine lands where the node looks for it: the same cache key (model hash, input size, precision,
library versions) under the same cache folder (`trt_cache_dir`, default
~/.cache/pixood_ros/tensorrt).
"""

from __future__ import annotations

import argparse
import sys

import onnxruntime as ort

from pixood_ros.cli import OneLineParser, UserError, positive_int, run_parsed
from pixood_ros.engine.errors import ModelError
from pixood_ros.engine.providers import (
    TENSORRT,
    nvidia_gpu_visible,
    tensorrt_version,
)
from pixood_ros.engine.segmenter import Segmenter

PROG = "pixood-build-engine"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Build the TensorRT engine of a PixOOD model for one camera size and cache it "
        "where pixood_node finds it (same cache key and folder), so the node starts without a "
        "minutes-long build. Needs an NVIDIA GPU, TensorRT and onnxruntime-gpu.",
    )
    parser.add_argument("model", help="the ONNX model file")
    parser.add_argument("--height", type=positive_int, required=True, help="camera image height")
    parser.add_argument("--width", type=positive_int, required=True, help="camera image width")
    parser.add_argument(
        "--trt-cache-dir",
        default=None,
        help="engine cache folder, as the node's trt_cache_dir "
        "(default ~/.cache/pixood_ros/tensorrt)",
    )
    parser.add_argument(
        "--fp32", action="store_true", help="full precision (the node's trt_fp16:=false)"
    )
    return parser


def tensorrt_problem() -> str | None:
    """Why TensorRT cannot run here, or None when it can: the conditions of
    `providers.usable_providers`, each named for the user."""
    if TENSORRT not in ort.get_available_providers():
        return "this onnxruntime build has no TensorRT execution provider (install onnxruntime-gpu)"
    if not nvidia_gpu_visible():
        return "no NVIDIA GPU is visible on this machine"
    if tensorrt_version() is None:
        return "the TensorRT libraries are not found"
    return None


def _run(args: argparse.Namespace) -> int:
    problem = tensorrt_problem()
    if problem is not None:
        raise UserError(f"cannot build a TensorRT engine: {problem}")
    try:
        segmenter = Segmenter(
            args.model,
            providers=["tensorrt"],
            trt_cache_dir=args.trt_cache_dir,
            warmup=True,
            input_size=(args.height, args.width),
            trt_fp16=not args.fp32,
        )
    except ModelError as exc:
        raise UserError(str(exc)) from exc
    if segmenter.active_provider != TENSORRT:
        raise UserError(
            f"ONNX Runtime fell back to {segmenter.active_provider}: no engine was built"
        )
    print(
        f"TensorRT engine for {args.width}x{args.height} "
        f"({'fp32' if args.fp32 else 'fp16'}) ready in {segmenter.trt_cache_dir} "
        f"({segmenter.warmup_seconds:.1f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parsed(PROG, build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
