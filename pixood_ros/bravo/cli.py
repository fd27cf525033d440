"""pixood-bravo: write BRAVO challenge submission files with a PixOOD model, and score them.

    pixood-bravo predict MODEL INPUT_ROOT -o SUBMISSION_DIR [--confidence scorer|internimage]
    pixood-bravo evaluate GT_ROOT SUBMISSION_DIR [--json OUT.json] [--markdown OUT.md]

Both accept a BRAVO data set (`bravo_<split>/...`) or a pixood-synth root, whose splits stand in
for the BRAVO subsets (in-distribution splits → semantic-only subsets like outofcontext/ACDC,
`ood_*` splits → synobjs-like semantic + OOD subsets, `ood_shift` → shifted + anomalies).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixood_ros.anomaly_modes import anomaly_mode_parent, check_mode
from pixood_ros.cli import (
    OneLineParser,
    UserError,
    one_line,
    options_from,
    progress_parent,
    run_parsed,
    split_names,
    unit_interval,
)
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

from .confidence import CONFIDENCE_MODES, INTERNIMAGE_OOD_LEVEL, SCORER
from .evaluate import evaluate_folder
from .layout import SYNTH_ROLES, find_inputs
from .predict import PredictOptions, check_bravo_classes, predict_images
from .report import format_table, write_json, write_markdown

PROG = "pixood-bravo"


def build_parser() -> argparse.ArgumentParser:
    synth_roles = "; ".join(f"{s} → {r.stands_in_for}" for s, r in SYNTH_ROLES.items())
    parser = OneLineParser(
        prog=PROG,
        description=(
            "BRAVO challenge submissions from a PixOOD ONNX model, and local evaluation with "
            "the BRAVO toolkit's metrics. Data roots are a BRAVO data set (bravo_ACDC/, "
            "bravo_SMIYC/, bravo_synobjs/, ... folders) or a pixood-synth root, whose splits "
            f"stand in for BRAVO subsets: {synth_roles}."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_predict(sub)
    _add_evaluate(sub)
    return parser


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        parents=[progress_parent(), anomaly_mode_parent()],
        help="run a model over every image and write _pred.png / _conf.png files",
        description=(
            "Segment every image of INPUT_ROOT and write, in the same relative folder under "
            "SUBMISSION_DIR, X_pred.png (8-bit Cityscapes train ids 0..18) and X_conf.png "
            "(16-bit confidence 0..65535 in the predicted class), both at the input size: "
            "the raw files the BRAVO toolkit encodes."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="PixOOD ONNX model file (19 Cityscapes classes)")
    p.add_argument(
        "input_root",
        metavar="INPUT_ROOT",
        help="BRAVO data set folder (holding bravo_<split>/) or pixood-synth root",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="SUBMISSION_DIR",
        help="folder the submission files are written to (created if missing; files of the "
        "same names are replaced)",
    )
    p.add_argument(
        "--confidence",
        choices=CONFIDENCE_MODES,
        default=SCORER,
        help="confidence written to _conf.png: 'scorer' = the model's confidence output "
        "(PixOOD's calibrated score of the predicted class); 'internimage' = the same, but "
        "pixels the model flags as OOD (score of --anomaly-mode >= --ood-threshold) drop to "
        f"0.0001 (level {INTERNIMAGE_OOD_LEVEL}), the rule of the BRAVO 2024 winner "
        "InternImage-OOD, applied to every image (default: %(default)s)",
    )
    p.add_argument(
        "--ood-threshold",
        type=unit_interval,
        default=DEFAULT_ANOMALY_THRESHOLD,
        metavar="T",
        help="anomaly score in [0, 1] from which a pixel counts as OOD for "
        "--confidence internimage (default: %(default)s)",
    )
    p.add_argument(
        "--subsets",
        type=split_names,
        metavar="A,B",
        help="only these BRAVO subsets (e.g. ACDCfog,synobjs) or synth splits (default: all)",
    )
    p.add_argument(
        "--providers",
        type=split_names,
        metavar="P,Q",
        help="ONNX Runtime execution providers in preference order, e.g. cuda,cpu "
        "(default: TensorRT > CUDA > CPU, as available)",
    )


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "evaluate",
        parents=[progress_parent()],
        help="score a submission folder against ground truth, as the BRAVO server does",
        description=(
            "Compute the BRAVO toolkit's metrics of SUBMISSION_DIR against GT_ROOT: per subset "
            "mIoU, ECE, AUROC, AUPR-success, AUPR-error, FPR95 of 'prediction correct' vs "
            "confidence (semantic, on valid pixels) and AUROC, AUPRC, FPR95 of 'pixel is OOD' "
            "vs 65535 - confidence (OOD subsets); then the semantic score, OOD score and BRAVO "
            "Index (harmonic means, ECE and FPR95 entering as 1 - value)."
        ),
    )
    e.add_argument(
        "gt_root",
        metavar="GT_ROOT",
        help="ground truth: BRAVO layout (bravo_<split>/ with the toolkit's GT and mask "
        "files) or a pixood-synth root (gtFine/ and ood/)",
    )
    e.add_argument(
        "submission",
        metavar="SUBMISSION_DIR",
        help="folder written by 'pixood-bravo predict' (or any raw BRAVO submission)",
    )
    e.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    e.add_argument("--markdown", metavar="OUT.md", help="also write a Markdown report")
    e.add_argument(
        "--subsets",
        type=split_names,
        metavar="A,B",
        help="only these BRAVO subsets or synth splits (default: every one with ground truth)",
    )


def _check_outputs(args: argparse.Namespace) -> None:
    """Output paths the run could not write to are refused before any work is done."""
    folder = Path(args.output) if args.command == "predict" else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UserError(f"-o/--output exists and is not a directory: {folder}")
    for option in ("json", "markdown") if args.command == "evaluate" else ():
        path = getattr(args, option)
        if path is not None and Path(path).is_dir():
            raise UserError(f"--{option} {path} is a directory; give a file name")


def _predict(args: argparse.Namespace) -> int:
    layout, images = find_inputs(args.input_root, args.subsets)
    segmenter = Segmenter(args.model, providers=args.providers, warmup=False)
    check_bravo_classes(segmenter.info.class_names)
    check_mode(args.anomaly_mode, segmenter.info.anomaly_modes, Path(args.model).name)
    options = options_from(PredictOptions, args, progress=not args.no_progress)
    summary = predict_images(segmenter, layout, images, args.output, options)
    counts = ", ".join(f"{s}: {n}" for s, n in summary.images.items())
    flagged = 100.0 * summary.flagged_pixels / max(summary.pixels, 1)
    print(
        f"wrote {summary.total_images} prediction pairs to {args.output} "
        f"({layout} layout; {counts}); "
        f"confidence '{args.confidence}', {flagged:.2f}% of pixels have anomaly score "
        f"({args.anomaly_mode}) >= {args.ood_threshold}; provider {segmenter.active_provider}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    evaluation = evaluate_folder(
        args.gt_root, args.submission, args.subsets, progress=not args.no_progress
    )
    if evaluation.skipped:
        print(
            f"{PROG}: note: not evaluated, no predictions in {args.submission}: "
            f"{', '.join(evaluation.skipped)} (pixood-bravo predict --subsets "
            f"{','.join(evaluation.skipped)} adds them)",
            file=sys.stderr,
        )
    print(format_table(evaluation))
    if args.json:
        write_json(evaluation, args.json)
    if args.markdown:
        write_markdown(evaluation, args.markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parsed(PROG, build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    _check_outputs(args)
    try:
        return _predict(args) if args.command == "predict" else _evaluate(args)
    except UserError:
        raise
    except (ModelError, ValueError) as exc:
        # a model file that is not a PixOOD model, or submission files the metrics refuse
        # (e.g. maps of another size): the user's inputs, not a bug
        raise UserError(one_line(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
