"""`pixood-export CKPT_DIR -o MODEL.onnx`: checkpoint directory ▶ ONNX model file + parity check.

Exit codes (pixood_ros.cli): 0 exported and parity passed; 1 parity failed (the file is kept for
inspection but must not be deployed); 2 user mistake (missing checkpoint, bad option value).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pixood_ros import durable
from pixood_ros.cli import EXIT_FAILED, OneLineParser, UserError, count, positive_int, run_command

from ..options import add_sizes
from .attention import ATTENTION_FORMS

PROG = "pixood-export"
DEFAULT_CHECK_SIZES = ("180x320", "256x256", "301x403")


def add_inference_overrides(parser: argparse.ArgumentParser) -> None:
    """Options that change how the exported file infers, overriding the checkpoint's values."""
    group = parser.add_argument_group("inference settings written into the file")
    group.add_argument(
        "--eval-scale-factor",
        type=positive_int,
        default=None,
        metavar="N",
        help="test-time upsampling: features and logits are bilinearly upsampled N times before "
        "scoring (the published eval_scale_factor; the authors evaluated at 7). Finer score "
        "maps, cost grows with N^2 (default: the checkpoint's value)",
    )
    group.add_argument(
        "--network-long-side",
        type=count,
        default=None,
        metavar="N",
        help="network input size: the image's longest side is resized to N (a multiple of the "
        "patch size, 14 for DINOv2); 0 = the image's own size floored to a multiple of 14, as "
        "the published inference does (cost grows with the image). Written to the metadata "
        "(default: the checkpoint's value)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Export a trained PixOOD checkpoint directory (model_config.json + "
        "model.safetensors) to one ONNX model file with dynamic image size and the metadata the "
        "runtime reads, then check that ONNX Runtime reproduces PyTorch on several image sizes.",
    )
    parser.add_argument("ckpt_dir", type=Path, help="checkpoint directory written by training")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="ONNX file to write (default: CKPT_DIR/model.onnx)",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="run the backbone in half precision (smaller, faster on GPUs; decoder and decision "
        "stage stay fp32, I/O dtypes unchanged); parity limits are relaxed accordingly",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=18,
        help="ONNX opset (>= 18, needed for the antialiased in-graph resize; default 18)",
    )
    parser.add_argument(
        "--attention",
        choices=ATTENTION_FORMS,
        default="standard",
        help="how the backbone's attention is written: 'standard' ONNX ops (portable, fused by "
        "TensorRT) or 'ort', ONNX Runtime's fused MultiHeadAttention kernel (faster on CPU, "
        "needs ONNX Runtime's contrib ops) (default: standard)",
    )
    add_inference_overrides(parser)
    add_sizes(
        parser,
        "--check-sizes",
        DEFAULT_CHECK_SIZES,
        "image sizes for the PyTorch-vs-ONNX Runtime parity check",
    )
    parser.add_argument(
        "--skip-parity",
        action="store_true",
        help="do not run the parity check (not recommended: the check is what proves the file)",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=["CPUExecutionProvider"],
        help="ONNX Runtime execution providers for the parity check (default: CPU)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the parity test images")
    parser.add_argument(
        "--report", type=Path, default=None, help="also write the parity results as JSON here"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the exporter's and graph optimiser's INFO messages (torch.onnx, "
        "onnxscript, onnx_ir: hundreds of lines per export)",
    )
    return parser


CHATTY_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._dynamo")


def configure_logging(verbose: bool) -> None:
    """Our own INFO messages always; third-party INFO chatter only with --verbose."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.opset < 18:
        parser.error(f"--opset must be at least 18, got {args.opset}")
    return run_command(PROG, lambda: export(args))


def export(args: argparse.Namespace) -> int:
    """Load, export, check parity; exit 1 when the file does not reproduce PyTorch."""
    if args.ckpt_dir.exists() and not args.ckpt_dir.is_dir():
        raise UserError(
            f"{args.ckpt_dir} is a file; pixood-export takes a checkpoint directory (the folder "
            "pixood-train writes under EXP/checkpoints/<scorer>, or pixood-convert-official's)"
        )
    if not args.ckpt_dir.is_dir():
        raise UserError(f"checkpoint directory not found: {args.ckpt_dir}")
    output = args.output or args.ckpt_dir / "model.onnx"
    if output.is_dir():
        raise UserError(f"output is a directory: {output}")

    # Heavy imports after argument checks: `--help` and user mistakes answer instantly.
    from pixood_training.checkpoint import load_model, read_model_config

    from .onnx_export import export_model
    from .overrides import apply_overrides
    from .parity import format_parity_table

    model = load_model(args.ckpt_dir)  # CheckpointError is a UserError
    model_config = apply_overrides(
        model,
        read_model_config(args.ckpt_dir),
        eval_scale_factor=args.eval_scale_factor,
        network_long_side=args.network_long_side,
    )
    print(
        f"exporting {args.ckpt_dir} -> {output} (opset {args.opset}"
        f"{', fp16 backbone' if args.fp16 else ''}, network long side "
        f"{model.network_long_side or 'native'}, eval scale factor {model.eval_scale_factor})"
    )
    report = export_model(
        model,
        model_config,
        output,
        opset=args.opset,
        fp16=args.fp16,
        check_sizes=None if args.skip_parity else args.check_sizes,
        seed=args.seed,
        progress=True,
        providers=args.providers,
        attention=args.attention,
    )
    size_mb = output.stat().st_size / 1e6
    print(
        f"wrote {output} ({size_mb:.1f} MB), scorer {report.metadata['scorer']}, "
        f"config hash {report.metadata['config_hash']}"
    )
    if args.report is not None:
        _write_report(args.report, output, args.fp16, report)
    if args.skip_parity:
        print("parity check skipped (--skip-parity)")
        return 0
    print(format_parity_table(report.parity))
    if not report.parity_ok:
        print(
            f"{PROG}: PARITY FAILED: {output} does not reproduce the PyTorch model; "
            "do not deploy it",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print("parity ok")
    return 0


def _write_report(path: Path, output: Path, fp16: bool, report: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(row) | {"passed": row.passed} for row in report.parity]
    record = {"model": str(output), "fp16": fp16, "metadata": report.metadata, "parity": rows}
    durable.write_text(path, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
