"""``pixood-convert-official``: official PixOOD checkpoints ▶ our checkpoint directory.

    pixood-convert-official --backbone-ckpt checkpoints/checkpoint-backbone.pth \\
        --pixood-ckpt checkpoints/checkpoint-latest.pth --params parameters.yaml \\
        --dinov2-weights dinov2_vitl14_pretrain.pth \\
        --backbone-config code/config/dinov2_vit_l.yaml -o converted/
    pixood-export converted/ -o pixood_official.onnx

Exit codes (pixood_ros.cli): 0 converted; 2 user mistake (missing / unreadable / refused /
inconsistent file, bad option value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixood_ros.cli import (
    OneLineParser,
    UserError,
    finite_float,
    one_line,
    positive_int,
    run_command,
    split_names,
)

PROG = "pixood-convert-official"

DESCRIPTION = """\
Convert the official PixOOD release (Vojir et al., ECCV 2024) into a pixood_ros checkpoint
directory (model_config.json + model.safetensors), which `pixood-export DIR` then turns into the
ONNX model file.

The official .pth files are pickles. A file holding TorchScript code is refused before anything
is loaded; the rest is read with a restricted unpickler that needs no official source code and
runs none: it accepts only tensors, numpy arrays, plain containers and
the official classes (turned into inert data holders) and refuses any other class with an error
naming it, so a damaged or malicious file cannot execute code.

What is read: the decoder weights (stage 1), the per-class raw-space prototypes
custom_data['knn_model'][c].clusters and the Neyman-Pearson model custom_data['n_p_model']
(class means/covariances, OOD covariance, interp_fnc knot tables). The DINOv2 size (width, depth,
registers) comes from the DINOv2 weights file; the intermediate blocks from MULTISCALE of the
official backbone config when given, else evenly spaced quarters (5,11,17,23 for 24 blocks).

Scoring reproduces the published inference: Euclidean distance to the nearest prototype,
similarity 1/(1+0.5 d), likelihood ratio of the class Gaussian over the OOD Gaussian, mapped
through the official knot table; native input resolution; anomaly = 1 - max over the eval labels.
Deliberate differences (see checkpoints/README.md):
  * the ratio is computed in the log domain: where the published code divided underflowed pdfs
    (0/0 = NaN anomaly, x/0 = inf scored 1.0) the score is now the finite table value;
  * non-finite knots (NaN/inf ratios of underflowed grid points) are dropped - np.interp
    behaved as if they were absent, so finite inputs score the same;
  * the knot table (up to 4 million knots per class) is thinned so the class mass rises by at
    most --epsilon between kept knots: |score difference| <= epsilon;
  * exactly singular covariances get a 1e-12 variance floor (the published code raised).
"""


def _labels(text: str) -> list[int]:
    if text.strip().lower() == "all":
        return []
    try:
        labels = [int(v) for v in split_names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated class ids such as 0,1 or 'all', got {text!r}"
        ) from None
    if not labels or any(v < 0 for v in labels):
        raise argparse.ArgumentTypeError(f"expected class ids >= 0 or 'all', got {text!r}")
    return labels


def _epsilon(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value < 0.1:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.1), got {text!r}")
    return value


# (option, destination, required, help) of the input files; each must exist.
INPUT_FILES = (
    ("--backbone-ckpt", "backbone_ckpt", True,
     "official stage-1 checkpoint (checkpoints/checkpoint-backbone.pth): decoder weights"),
    ("--pixood-ckpt", "pixood_ckpt", True,
     "official stage-2/3 checkpoint (checkpoints/checkpoint-latest.pth): prototypes and the "
     "Neyman-Pearson model"),
    ("--params", "params", True,
     "official parameters.yaml of the stage-2 run (class count, embedding size, and settings "
     "that must match the published inference)"),
    ("--dinov2-weights", "dinov2_weights", False,
     "DINOv2 weights (official dinov2_vitl14_pretrain.pth or timm format; .pth or "
     ".safetensors); their size decides the ViT. Default: download from timm's hub (needs "
     "internet; the architecture then comes from MODEL.ARCH of --backbone-config)"),
    ("--backbone-config", "backbone_config", False,
     "official backbone config (code/config/dinov2_vit_l.yaml): MODEL.MULTISCALE gives the "
     "intermediate blocks (default: evenly spaced quarters of the depth)"),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for option, dest, required, text in INPUT_FILES:
        parser.add_argument(
            option, dest=dest, type=Path, required=required, metavar="FILE", help=text
        )
    parser.add_argument(
        "--eval-labels",
        type=_labels,
        default=[0, 1],
        metavar="IDS",
        help="comma-separated class ids whose scores define 'in distribution' (anomaly = 1 - "
        "max over them), or 'all'; default 0,1 = road + sidewalk, the official default",
    )
    parser.add_argument(
        "--eval-scale-factor",
        type=positive_int,
        default=1,
        metavar="S",
        help="upsample features and logits by S before scoring (official eval_scale_factor; "
        "default 1 as pixood.py, plot.py used 5, the paper's evaluations 7)",
    )
    parser.add_argument(
        "--epsilon",
        type=_epsilon,
        default=None,
        metavar="EPS",
        help="knot-table tolerance: the class mass may rise by at most EPS between kept knots, "
        "which bounds the score difference to the full official table (default 1e-4; 0 keeps "
        "every finite knot)",
    )
    parser.add_argument(
        "--rule",
        choices=["published", "monotone"],
        default="published",
        help="decision rule: published (default, reproduces the authors' model) or monotone "
        "(tables refitted from the same Gaussians; docs/method.md)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="checkpoint directory to write (model_config.json + model.safetensors); "
        "then run `pixood-export DIR`",
    )
    return parser


def _check_paths(args: argparse.Namespace) -> None:
    for option, dest, _, _ in INPUT_FILES:
        path = getattr(args, dest)
        if path is not None and not path.is_file():
            raise UserError(f"{option} file not found: {path}")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"output exists and is not a directory: {args.output}")


def convert(args: argparse.Namespace) -> None:
    """Check the inputs, convert, save, report (OfficialFormatError is a UserError)."""
    _check_paths(args)
    # Heavy imports after argument checks: `--help` and user mistakes answer instantly.
    from tqdm import tqdm

    from ..checkpoint import save_model
    from ..decision import DEFAULT_EPSILON
    from .build import convert_official, describe

    with tqdm(total=2, desc="convert", unit="step", file=sys.stderr, disable=None) as bar:
        model, report = convert_official(
            args.backbone_ckpt,
            args.pixood_ckpt,
            args.params,
            dinov2_weights=args.dinov2_weights,
            backbone_config=args.backbone_config,
            eval_labels=args.eval_labels,
            epsilon=DEFAULT_EPSILON if args.epsilon is None else args.epsilon,
            eval_scale_factor=args.eval_scale_factor,
            rule=args.rule,
        )
        bar.update(1)
        try:
            save_model(model, args.output)
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {one_line(exc)}") from None
        bar.update(1)
    for line in report.lines():
        print(line)
    print(describe(model))
    print(f"wrote {args.output}; next: pixood-export {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: convert(args))


if __name__ == "__main__":
    sys.exit(main())
