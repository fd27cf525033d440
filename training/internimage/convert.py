"""``pixood-convert-internimage``: a published InternImage UperNet checkpoint -> our checkpoint.

    pixood-convert-internimage upernet_internimage_xl_512x1024_160k_mapillary2cityscapes.pth \\
        -o converted_xl/
    pixood-export converted_xl/ -o internimage_xl.onnx

Exit codes (pixood_ros.cli): 0 converted; 2 user mistake (missing, unreadable, refused or
mismatched file, bad option value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixood_ros.cli import (
    OneLineParser,
    UserError,
    one_line,
    positive_float,
    run_parsed,
    split_names,
)

PROG = "pixood-convert-internimage"

DESCRIPTION = """\
Convert a published InternImage + UperNet mmsegmentation checkpoint (OpenGVLab InternImage
segmentation releases, e.g. upernet_internimage_xl_512x1024_160k_mapillary2cityscapes.pth used by
InternImage-OOD) into a checkpoint directory (model_config.json + model.safetensors) that
`pixood-export DIR` turns into the one-file ONNX model. The .pth pickle is read with a restricted
reader: tensors, plain containers and inert stand-ins only, nothing in the file runs. Sizes are
inferred from the tensors; the training-only auxiliary head is dropped. The scorer is MSP (the
softmax confidence of the predicted class, as the published model); k-means scorers need
training features (pixood-train with model.family: internimage).
"""


def _labels(text: str) -> list[int]:
    try:
        labels = [int(v) for v in split_names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class ids such as 0,1, got {text!r}") from None
    if not labels or any(v < 0 for v in labels):
        raise argparse.ArgumentTypeError(f"expected class ids >= 0, got {text!r}")
    return labels


def _long_side(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else -1
    if value < 0 or value % 32:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive multiple of 32, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("checkpoint", type=Path, help="published mmsegmentation .pth file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="checkpoint directory")
    parser.add_argument(
        "--offset-scale",
        type=positive_float,
        default=None,
        help="DCNv3 offset scale (not stored in the weights; default: the published preset of "
        "the same width, T/S/B 1.0, L/XL 2.0)",
    )
    parser.add_argument(
        "--eval-labels",
        type=_labels,
        default=[0, 1],
        help="classes whose scores mean 'not anomalous' (default 0,1: road, sidewalk)",
    )
    parser.add_argument(
        "--network-long-side",
        type=_long_side,
        default=0,
        help="network input long side, a multiple of 32 (default 0: the image's own size "
        "floored to a multiple of 32, 2048x1024 for Cityscapes frames as published)",
    )
    parser.add_argument(
        "--scorer-features",
        choices=("head", "stages"),
        default="head",
        help="features later k-means scorers cluster (head: UperNet fused; stages: backbone)",
    )
    return parser


def convert(args: argparse.Namespace) -> None:
    from ..checkpoint import save_model
    from ..scorers.baselines import MSPScorer
    from .backbone import InternImage
    from .mmseg import check_fits, read_published_checkpoint
    from .model import InternImageModel
    from .upernet import UperNetHead

    published = read_published_checkpoint(args.checkpoint, args.offset_scale)
    num_classes = published.decoder["num_classes"]
    if any(c >= num_classes for c in args.eval_labels):
        raise UserError(f"--eval-labels {args.eval_labels}: the model has {num_classes} classes")
    model = InternImageModel(
        InternImage(published.backbone),
        UperNetHead.from_config(published.decoder),
        MSPScorer(),
        class_names=published.class_names,
        palette=published.palette,
        eval_labels=args.eval_labels,
        network_long_side=args.network_long_side,
        scorer_features=args.scorer_features,
    )
    check_fits(published.state, model.state_dict(), args.checkpoint)
    model.load_state_dict(published.state, strict=True)
    try:
        save_model(model.eval(), args.output)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {one_line(exc)}") from None
    config = published.backbone
    print(
        f"InternImage channels {config.channels}, depths {list(config.depths)}, groups "
        f"{list(config.groups)}, {'post' if config.post_norm else 'pre'}-norm, offset scale "
        f"{config.offset_scale}; UperNet {published.decoder['channels']} channels, "
        f"{num_classes} classes; auxiliary head dropped ({published.dropped} tensors)"
    )
    print(f"wrote {args.output}; next: pixood-export {args.output}")


def main(argv: list[str] | None = None) -> int:
    return run_parsed(PROG, build_parser(), argv, convert)


if __name__ == "__main__":
    sys.exit(main())
