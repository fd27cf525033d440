"""`pixood-smiyc`: run a model over a SMIYC data set folder (RoadAnomaly21 or RoadObstacle21,
published layout) and write the submission files the SMIYC toolkit and server read.

    pixood-smiyc MODEL dataset_AnomalyTrack -o submission --method PixOOD
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from pixood_ros.anomaly_modes import ANOMALY_MODES, EVAL_LABELS, MODE_HELP, anomaly_map, check_mode
from pixood_ros.cli import OneLineParser, UserError, positive_int, progress_parent, run_parsed
from pixood_ros.datasets.smiyc_submission import SPLIT_NAMES, submission_path, write_scores
from pixood_ros.datasets.source import resolve_layout
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.frames import image_frames
from pixood_ros.interruption import interruptible

PROG = "pixood-smiyc"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        parents=[progress_parent()],
        description="Write SMIYC submission files (anomaly_p/METHOD/SPLIT/FRAME.hdf5, float16 "
        "scores through a rank-preserving map) for every image of a RoadAnomaly21 or "
        "RoadObstacle21 folder in its published layout.",
    )
    parser.add_argument("model", type=Path, help="exported PixOOD model (.onnx)")
    parser.add_argument("root", type=Path, help="dataset_AnomalyTrack or dataset_ObstacleTrack")
    parser.add_argument("-o", "--output", type=Path, required=True, help="submission folder")
    parser.add_argument(
        "--dataset",
        choices=sorted(SPLIT_NAMES),
        help="the layout of ROOT (default: detected)",
    )
    parser.add_argument(
        "--method", default="PixOOD", help="method name, a folder of the submission"
    )
    parser.add_argument(
        "--anomaly-mode",
        choices=ANOMALY_MODES,
        default=EVAL_LABELS,
        help=f"{MODE_HELP} Default here: eval_labels (the raw anomaly_score).",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images")
    parser.add_argument(
        "--providers", nargs="+", metavar="P", help="ONNX Runtime execution providers in order"
    )
    return parser


def _run(args: argparse.Namespace) -> None:
    layout = resolve_layout(args.root, args.dataset)
    if layout.name not in SPLIT_NAMES:
        raise UserError(f"{args.root} is {layout.title}; SMIYC submissions are for RA21 / RO21")
    if "/" in args.method or args.method in ("", ".", ".."):
        raise UserError(f"--method {args.method!r} must be a plain folder name")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"-o/--output exists and is not a directory: {args.output}")
    images = layout.images(args.root)[: args.limit]  # every frame, with or without a mask
    try:
        engine = Segmenter(args.model, providers=args.providers, warmup=False)
        check_mode(args.anomaly_mode, engine.info.anomaly_modes, args.model.name)
    except ModelError as exc:
        raise UserError(str(exc)) from exc
    bar = tqdm(image_frames(images), total=len(images), unit="frame", disable=args.no_progress)
    for image, frame in zip(images, bar, strict=True):
        scores = anomaly_map(engine(frame.rgb), args.anomaly_mode, engine.info.eval_labels)
        write_scores(submission_path(args.output, args.method, layout.name, image.stem), scores)
    folder = submission_path(args.output, args.method, layout.name, "x").parent
    print(f"wrote {len(images)} {layout.title} score files to {folder}")


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (one line and exit 2 for a user mistake)."""
    parser = build_parser()
    return run_parsed(PROG, parser, argv, lambda args: interruptible(PROG, lambda: _run(args)))


if __name__ == "__main__":
    sys.exit(main())
