"""`pixood-bench`: SPEED of one model - where the time goes and how fast each runtime is.

Not to be confused with `pixood-benchmark` (pixood_ros/comparison), which compares the anomaly
QUALITY of several models. Runs (each can be switched off): per-stage PyTorch timings; PyTorch
eager vs ONNX Runtime end to end at several sizes (the model is exported on the fly); the decision
stage vs a scipy implementation of the published formulation; optionally the ROS node vs the bare
engine (`python -m pixood_ros.speed.node_vs_engine`, in a subprocess: training code never imports
rclpy). Prints tables and writes everything as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from pixood_ros import durable
from pixood_ros.cli import OneLineParser, UserError, count, positive_int, run_command

from ..options import add_sizes

PROG = "pixood-bench"
DEFAULT_SIZES = ("240x320", "480x640")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Speed of a PixOOD model: per-stage PyTorch timings, PyTorch vs ONNX Runtime "
        "frames per second at several sizes, peak memory, decision stage vs scipy. (The anomaly "
        "quality of several models: pixood-benchmark.)",
    )
    source = parser.add_argument_group("model (one of)")
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
    add_sizes(parser, "--sizes", DEFAULT_SIZES, "input image sizes, e.g. 1078x1918 on a GPU")
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="timed runs per measurement"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="PyTorch device (default: cuda when available); ONNX Runtime uses CUDA there too",
    )
    parser.add_argument(
        "--threads",
        type=count,
        default=0,
        help="CPU threads for PyTorch and ONNX Runtime alike (0 = each library's default); on a "
        "busy machine 1 gives the steadiest, like-for-like numbers",
    )
    parser.add_argument("--no-stages", action="store_true", help="skip per-stage timings")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime comparison")
    parser.add_argument("--onnx", type=Path, default=None, help="use this exported file instead")
    parser.add_argument("--no-decision", action="store_true", help="skip decision vs scipy")
    parser.add_argument(
        "--decision-pixels", type=positive_int, default=20000, help="pixels for decision vs scipy"
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
    parser.add_argument(
        "-o", "--json", type=Path, default=Path("pixood_bench.json"), help="JSON report path"
    )
    return parser


def load_benchmark_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    chosen = sum([args.ckpt_dir is not None, args.tiny, args.backbone is not None])
    if chosen != 1:
        parser.error("give exactly one of CKPT_DIR, --tiny or --backbone")
    if args.ckpt_dir is not None:
        from pixood_training.checkpoint import load_model

        return load_model(args.ckpt_dir)
    from pixood_training.model import PixOODModel, tiny_model

    if args.tiny:
        return tiny_model(network_long_side=args.network_long_side or 112)
    if not args.random_weights:
        parser.error("--backbone builds an untrained model: add --random-weights to confirm")
    from pixood_training.models.backbone import BackboneConfig, DinoV2Backbone
    from pixood_training.models.decoder import MLPDecoder
    from pixood_training.scorers.baselines import MSPScorer

    try:
        backbone = DinoV2Backbone(BackboneConfig(arch=args.backbone))
    except ValueError as exc:
        parser.error(str(exc))
    decoder = MLPDecoder(backbone.out_channels, 19)
    return PixOODModel(
        backbone, decoder, MSPScorer(), network_long_side=args.network_long_side or 518
    ).eval()


def run_node_benchmark(onnx_path: Path, size: tuple[int, int], extra: str) -> dict[str, Any]:
    """Node vs engine throughput from the node package's own benchmark, in a subprocess."""
    if importlib.util.find_spec("pixood_ros.speed.node_vs_engine") is None:
        return {"skipped": "pixood_ros.speed.node_vs_engine is not available"}
    result_path = onnx_path.with_name(onnx_path.stem + "_node.json")
    command = [
        sys.executable, "-m", "pixood_ros.speed.node_vs_engine", str(onnx_path),
        "--height", str(size[0]), "--width", str(size[1]), "--json", str(result_path),
        *shlex.split(extra),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0 and result_path.is_file():
        return {"command": command, "returncode": 0, "result": json.loads(result_path.read_text())}
    return {
        "command": command,
        "returncode": done.returncode,
        "output": done.stdout[-4000:],
        "errors": done.stderr[-2000:],
    }


def print_tables(report: dict[str, Any]) -> None:
    if "stages" in report:
        stages = report["stages"]
        print(
            f"\nPyTorch per-stage timings at {stages['height']}x{stages['width']} "
            f"({report['device']}):"
        )
        for name, timing in stages["stages"].items():
            print(f"  {name:<22} {timing['median_ms']:>10.2f} ms")
        print(
            f"  {'sum':<22} {stages['sum_of_stages_ms']:>10.2f} ms "
            f"(stages reproduce forward: {stages['matches_forward']})"
        )
        if stages.get("decision_strategy_share") is not None:
            print(f"  decision strategy share: {100 * stages['decision_strategy_share']:.1f} %")
    if "end_to_end" in report:
        print("\nEnd to end (median ms / frames per second):")
        print(f"  {'size':>11} | {'PyTorch':>18} | {'ONNX Runtime':>18} | speed-up | peak RSS")
        for row in report["end_to_end"]["sizes"]:
            torch_part = f"{row['pytorch']['median_ms']:8.1f} / {row['pytorch']['fps']:6.1f}"
            onnx = row.get("onnxruntime")
            onnx_part = f"{onnx['median_ms']:8.1f} / {onnx['fps']:6.1f}" if onnx else "-"
            speedup = f"{row['onnx_speedup']:7.2f}x" if onnx else "-"
            print(
                f"  {row['height']:>5}x{row['width']:<5} | {torch_part:>18} | {onnx_part:>18} "
                f"| {speedup:>8} | {row['peak_rss_mb']:.0f} MB"
            )
    if "decision_vs_scipy" in report:
        d = report["decision_vs_scipy"]
        print(
            f"\nDecision stage, {d['pixels']} pixels x {d['num_classes']} classes: scipy "
            f"{d['scipy']['median_ms']:.1f} ms, tensor {d['tensor']['median_ms']:.1f} ms, "
            f"speed-up {d['speedup']:.1f}x, max |Δ score| {d['max_abs_diff']:.1e}"
        )
    if "node" in report:
        node = report["node"].get("result")
        if node is not None:
            print(
                f"\nNode vs engine at {node['size'][0]}x{node['size'][1]}: node "
                f"{node['node_fps']:.1f} fps / engine {node['engine_fps']:.1f} fps = ratio "
                f"{node['ratio']:.2f} (cpu_ratio {node.get('cpu_ratio') or float('nan'):.2f})"
            )
        else:
            print(f"\nNode vs engine: {json.dumps(report['node'])[:400]}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: measure(args, parser))


def measure(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Load the model, time what the options ask for, print the tables, write the JSON."""
    if args.ckpt_dir is not None and not args.ckpt_dir.is_dir():
        raise UserError(f"checkpoint directory not found: {args.ckpt_dir}")
    if args.onnx is not None and not args.onnx.is_file():
        raise UserError(f"ONNX file not found: {args.onnx}")

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is usable")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    model = load_benchmark_model(args, parser).to(device)  # CheckpointError is a UserError
    report: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "model": str(args.ckpt_dir or ("tiny" if args.tiny else args.backbone)),
        "backbone": model.backbone.config.to_dict(),
        "network_long_side": model.network_long_side,
    }
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name()
    report.update(_timings(args, model, device))
    durable.write_text(args.json, json.dumps(report, indent=2) + "\n")
    print_tables(report)
    print(f"\nreport written to {args.json}")


def _timings(args: argparse.Namespace, model: Any, device: str) -> dict[str, Any]:
    """The report sections: stages, end_to_end, decision_vs_scipy, node (each unless off)."""
    import torch

    from pixood_training.export.parity import parity_image

    from .end_to_end import benchmark_end_to_end
    from .stages import time_stages

    report: dict[str, Any] = {}
    height, width = args.sizes[-1]
    if not args.no_stages:
        image = torch.from_numpy(parity_image(height, width, seed=0))[None].to(device)
        report["stages"] = {
            "height": height,
            "width": width,
            **time_stages(model, image, args.repeats, device),
        }
    onnx_path = args.onnx
    if args.node and onnx_path is None:
        # The node benchmark needs a model file that outlives this step: export next to the JSON.
        from pixood_training.export.metadata import model_metadata
        from pixood_training.export.onnx_export import export_onnx

        onnx_path = args.json.with_suffix(".onnx")
        cpu_model = model.to("cpu")
        export_onnx(cpu_model, onnx_path, model_metadata(cpu_model.get_config(), cpu_model))
        model = model.to(device)
    report["end_to_end"] = benchmark_end_to_end(
        model,
        args.sizes,
        args.repeats,
        device,
        onnx_path=onnx_path,
        with_onnx=not args.no_onnx,
        threads=args.threads,
    )
    if not args.no_decision:
        from .decision_vs_scipy import benchmark_decision

        report["decision_vs_scipy"] = benchmark_decision(
            pixels=args.decision_pixels, grid_size=args.decision_grid, repeats=args.repeats
        )
    if args.node:
        report["node"] = run_node_benchmark(onnx_path, args.sizes[-1], args.node_args)
    return report


if __name__ == "__main__":
    sys.exit(main())
