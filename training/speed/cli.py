"""`pixood-bench`: SPEED of one model - where the time goes and how fast each runtime is.

Not to be confused with `pixood-benchmark` (pixood_ros/comparison), which compares the anomaly
QUALITY of several models. Every figure is measured at one thread count for PyTorch and ONNX
Runtime alike (`--threads`, default 1), stated in every table and in the JSON. Sections:

- default: per-stage PyTorch timings; PyTorch eager vs ONNX Runtime at several sizes (the model is
  exported on the fly); the decision stage vs scipy; optionally the ROS node vs the bare engine
  (`python -m pixood_ros.speed.node_vs_engine`, in a subprocess: training code never imports
  rclpy);
- `--ratios`: the ratio rows of the speed targets, both sides measured alternately in one run;
- `--growth`: cost-growth tables with resolution, tokens and prototypes per class;
- `--gpu`: frames per second of random ViT-S/B/L models on CUDA and the share of the FLOP bound.

`--ratios` and `--growth` run instead of the default sections (together if both are given);
`--gpu` runs alone. Prints Markdown tables and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pixood_ros import durable
from pixood_ros.cli import OneLineParser, UserError, positive_float, positive_int, run_command

from ..models.backbone import DINOV2_ARCHS
from ..options import add_sizes
from .environment import DEFAULT_THREADS
from .gpu import DEFAULT_ARCHS
from .gpu import DEFAULT_SIZES as GPU_SIZES
from .models import TINY_ARCH

PROG = "pixood-bench"
DEFAULT_SIZES = ("240x320", "480x640")
GROWTH_KINDS = ("resolution", "tokens", "prototypes")
RATIO_SIZES = ("1080x1920", "256x512")
GROWTH_SIZES = ("256x512", "480x640", "720x1280", "1080x1920", "2160x3840")
LONG_SIDES = (448, 896, 1344, 1918)
PROTOTYPES = (64, 256, 1000)
DECISION_PIXELS = 77 * 137  # the 1080p patch grid of a ViT/14 (1078x1918 network input)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("model (one of; --gpu needs none)")
    source.add_argument("ckpt_dir", nargs="?", type=Path, help="checkpoint directory to load")
    source.add_argument("--tiny", action="store_true", help="a tiny random model (seconds on CPU)")
    source.add_argument(
        "--backbone",
        default=None,
        help="random model with this DINOv2 architecture, e.g. vit_small_patch14_dinov2 "
        "(needs --random-weights: no weights are downloaded)",
    )
    source.add_argument(
        "--random-weights",
        action="store_true",
        help="confirm random weights for --backbone (timings only, outputs are meaningless)",
    )
    parser.add_argument(
        "--network-long-side",
        type=positive_int,
        default=None,
        help="network input long side for --tiny/--backbone models (multiple of 14; "
        "default 112 for --tiny, 518 for --backbone)",
    )
    parser.add_argument("--onnx", type=Path, default=None, help="use this exported file instead")


def add_classic_options(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, "--sizes", DEFAULT_SIZES, "input image sizes, e.g. 1078x1918 on a GPU")
    parser.add_argument("--no-stages", action="store_true", help="skip per-stage timings")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime comparison")
    parser.add_argument("--no-decision", action="store_true", help="skip decision vs scipy")
    parser.add_argument(
        "--decision-pixels",
        type=positive_int,
        default=DECISION_PIXELS,
        help=f"pixels for decision vs scipy (default {DECISION_PIXELS}: the 1080p ViT patch grid)",
    )
    parser.add_argument(
        "--decision-grid",
        type=positive_int,
        default=400,
        help="N-P grid points per axis for decision vs scipy (published: 2000; slow to fit)",
    )
    parser.add_argument(
        "--node",
        action="store_true",
        help="also run the node-vs-engine throughput benchmark "
        "(python -m pixood_ros.speed.node_vs_engine)",
    )
    parser.add_argument(
        "--node-args", default="", help="extra arguments for the node benchmark, one string"
    )


def add_ratio_and_growth_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ratios and cost growth")
    group.add_argument(
        "--ratios",
        action="store_true",
        help="engine large/small input, eager/ONNX Runtime on --vit-arch at --vit-size, "
        "decision vs scipy: both sides of each alternately in one run",
    )
    add_sizes(group, "--ratio-sizes", RATIO_SIZES, "LARGE SMALL input sizes of the engine ratio")
    group.add_argument(
        "--vit-arch",
        default="vit_small_patch14_dinov2",
        help="random-weight DINOv2 architecture of the eager/ONNX Runtime ratio ('tiny': the "
        "test-sized model)",
    )
    add_sizes(group, "--vit-size", ("518x1036",), "network input size of that ratio")
    group.add_argument(
        "--growth",
        nargs="*",
        choices=GROWTH_KINDS,
        default=None,
        help=f"cost-growth tables (no value: all of {', '.join(GROWTH_KINDS)})",
    )
    add_sizes(group, "--growth-sizes", GROWTH_SIZES, "input sizes of the resolution table")
    group.add_argument(
        "--long-sides",
        nargs="+",
        type=positive_int,
        default=list(LONG_SIDES),
        help="network long sides of the token table (multiples of 14; default "
        f"{' '.join(map(str, LONG_SIDES))})",
    )
    group.add_argument(
        "--prototypes",
        nargs="+",
        type=positive_int,
        default=list(PROTOTYPES),
        help="prototypes per class of the prototype table (random prototypes; default "
        f"{' '.join(map(str, PROTOTYPES))})",
    )
    add_sizes(group, "--frame-size", ("1080x1920",), "frame of the token and prototype tables")


def add_gpu_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("GPU mode")
    group.add_argument(
        "--gpu",
        action="store_true",
        help="frames per second of random-weight DINOv2 models on CUDA (PyTorch fp16 autocast, "
        "ONNX Runtime CUDA / TensorRT when installed) and the share of the FLOP bound",
    )
    group.add_argument(
        "--gpu-archs", nargs="+", default=list(DEFAULT_ARCHS), help="DINOv2 architectures"
    )
    add_sizes(group, "--gpu-sizes", GPU_SIZES, "network input sizes (multiples of 14)")
    group.add_argument(
        "--peak-tflops",
        type=positive_float,
        default=None,
        help="the device's dense fp16 peak, TFLOP/s (default: a table of known GPUs by name)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Speed of a PixOOD model at one thread count for PyTorch and ONNX Runtime: "
        "per-stage timings, PyTorch vs ONNX Runtime, decision stage vs scipy, speed ratios, "
        "cost growth, GPU throughput. (The anomaly quality of several models: pixood-benchmark.)",
    )
    add_model_options(parser)
    add_classic_options(parser)
    add_ratio_and_growth_options(parser)
    add_gpu_options(parser)
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="timed runs per measurement"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="PyTorch device of the default sections (default: cuda when available; ONNX "
        "Runtime uses CUDA there too)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        help="CPU threads for PyTorch and ONNX Runtime alike (intra-op; inter-op 1; default "
        f"{DEFAULT_THREADS}: steady, like-for-like numbers on a busy machine)",
    )
    parser.add_argument(
        "-o", "--json", type=Path, default=Path("pixood_bench.json"), help="JSON report path"
    )
    return parser


def load_benchmark_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    chosen = sum([args.ckpt_dir is not None, args.tiny, args.backbone is not None])
    if args.gpu:
        if chosen or args.ratios or args.growth is not None:
            parser.error("--gpu times its own random models: give no model, --ratios or --growth")
        return None
    if chosen != 1:
        parser.error("give exactly one of CKPT_DIR, --tiny or --backbone")
    if args.ckpt_dir is not None:
        from pixood_training.checkpoint import load_model

        return load_model(args.ckpt_dir)
    from .models import random_model

    if args.tiny:
        return random_model(TINY_ARCH, args.network_long_side or 112)
    if not args.random_weights:
        parser.error("--backbone builds an untrained model: add --random-weights to confirm")
    try:
        return random_model(args.backbone, args.network_long_side or 518)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.growth == []:
        args.growth = list(GROWTH_KINDS)
    if len(args.ratio_sizes) != 2 or len(args.vit_size) != 1 or len(args.frame_size) != 1:
        parser.error("--ratio-sizes takes LARGE SMALL; --vit-size and --frame-size one HxW each")
    args.vit_size, args.frame_size = args.vit_size[0], args.frame_size[0]
    known = (TINY_ARCH, *DINOV2_ARCHS)
    for arch in (args.vit_arch, *args.gpu_archs):
        if arch not in known:
            parser.error(f"unknown architecture {arch!r}; choose one of {', '.join(known)}")
    return run_command(PROG, lambda: measure(args, parser))


def measure(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Load the model, time what the options ask for, print the tables, write the JSON."""
    if args.ckpt_dir is not None and not args.ckpt_dir.is_dir():
        raise UserError(f"checkpoint directory not found: {args.ckpt_dir}")
    if args.onnx is not None and not args.onnx.is_file():
        raise UserError(f"ONNX file not found: {args.onnx}")

    import torch

    from . import sections
    from .environment import apply_threads, machine
    from .report import report_lines

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is usable")
    threads = apply_threads(args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    model = load_benchmark_model(args, parser)  # CheckpointError is a UserError
    report: dict[str, Any] = {"device": device, "threads": threads, "machine": machine()}
    if model is None:
        report["model"] = "random " + ", ".join(args.gpu_archs)
        report.update(sections.gpu_section(args))
    else:
        model = model.to(device)
        report["model"] = str(args.ckpt_dir or ("tiny" if args.tiny else args.backbone))
        report["backbone"] = model.backbone.config.to_dict()
        report["network_long_side"] = model.network_long_side
        if args.ratios:
            report.update(sections.ratio_section(args, model.to("cpu")))
        if args.growth:
            report.update(sections.growth_sections(args, model.to("cpu")))
        if not args.ratios and not args.growth:
            report.update(sections.classic_sections(args, model, device))
    durable.write_text(args.json, json.dumps(report, indent=2) + "\n")
    print("\n".join(report_lines(report)))
    print(f"\nreport written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
