"""What each section of a `pixood-bench` report measures, given the parsed options: the classic
run (stages, PyTorch vs ONNX Runtime, decision vs scipy, node), the ratio rows, the cost-growth
tables and the GPU table. Every function returns report entries; the CLI writes and prints them.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from pixood_ros.cli import UserError
from pixood_training.export.parity import parity_image

from .engine import open_engine
from .models import export_to


def decision_section(args: argparse.Namespace) -> dict[str, Any]:
    """decision_vs_scipy as measured by its module, plus its ratio rows."""
    from .decision_vs_scipy import benchmark_decision
    from .ratios import decision_ratio_rows

    decision = benchmark_decision(
        pixels=args.decision_pixels, grid_size=args.decision_grid, repeats=args.repeats
    )
    return {"decision_vs_scipy": decision, "ratios": decision_ratio_rows(decision)}


def classic_sections(args: argparse.Namespace, model: Any, device: str) -> dict[str, Any]:
    """stages, end_to_end, decision_vs_scipy (+ its ratio rows) and node, unless switched off."""
    from .end_to_end import benchmark_end_to_end
    from .node import run_node_benchmark
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
        onnx_path = export_to(model, args.json.with_suffix(".onnx"))
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
        report.update(decision_section(args))
    if args.node:
        report["node"] = run_node_benchmark(onnx_path, args.sizes[-1], args.threads, args.node_args)
    return report


@contextmanager
def model_file(args: argparse.Namespace, model: Any) -> Iterator[Path]:
    """The given --onnx file, else the model exported to a temporary file for this run."""
    if args.onnx is not None:
        yield args.onnx
        return
    with tempfile.TemporaryDirectory(prefix="pixood-bench-") as workdir:
        yield export_to(model, Path(workdir) / "model.onnx")


def ratio_section(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The three ratio rows of issue 16's done criteria (training/speed/ratios.py)."""
    from .ratios import engine_size_ratio, onnx_vs_eager

    large, small = args.ratio_sizes
    with model_file(args, model) as path:
        engine_row = engine_size_ratio(open_engine(path, args.threads), large, small, args.repeats)
    eager_row = onnx_vs_eager(args.vit_arch, args.vit_size, args.threads, args.repeats)
    decision = decision_section(args)
    return {**decision, "ratios": [engine_row, eager_row, *decision["ratios"]]}


def growth_sections(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The cost-growth tables named by --growth (training/speed/growth.py)."""
    from .growth import prototype_growth, resolution_growth, token_growth

    report: dict[str, Any] = {}
    if "resolution" in args.growth:
        with model_file(args, model) as path:
            segmenter = open_engine(path, args.threads)
            report["growth_resolution"] = resolution_growth(
                segmenter, args.growth_sizes, args.repeats
            )
    if "tokens" in args.growth:
        report["growth_tokens"] = token_growth(
            model, args.long_sides, args.frame_size, args.repeats
        )
    if "prototypes" in args.growth:
        report["growth_prototypes"] = prototype_growth(
            model, args.prototypes, args.frame_size, args.threads, args.repeats
        )
    return report


def gpu_section(args: argparse.Namespace) -> dict[str, Any]:
    """GPU throughput of random ViT-S/B/L (training/speed/gpu.py); needs CUDA."""
    from .flops import peak_tflops
    from .gpu import gpu_table

    if not torch.cuda.is_available():
        raise UserError("--gpu needs a CUDA device and PyTorch sees none on this machine")
    name = torch.cuda.get_device_name()
    peak, source = peak_tflops(name, args.peak_tflops)
    rows = gpu_table(args.gpu_archs, args.gpu_sizes, args.repeats, peak, args.threads)
    return {"gpu": {"gpu": name, "peak_tflops": peak, "peak_source": source, "rows": rows}}
