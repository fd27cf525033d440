"""`pixood-benchmark`: compare exported models (one per scorer) on the same synthetic splits.

    pixood-benchmark pixood=m/pixood.onnx msp=m/msp.onnx ... --data data/bench -o out/bench
    pixood-benchmark --reproduce -o out/bench --readme README.md   # synth ▶ train ▶ export ▶ this

The command line only: the scoring is in `comparison.evaluate`, the chain of `--reproduce` in
`comparison.reproduce`, the files and tables in `comparison.report`. Results go to benchmark.json
and benchmark.md; `--readme` also puts the tables between the README markers with the command
that made them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pixood_ros.bag.scoring import add_scoring_arguments
from pixood_ros.cli import (
    EXIT_FAILED,
    OneLineParser,
    argv_or_sys,
    fail,
    options_from,
    positive_int,
    run_parsed,
)
from pixood_ros.comparison.evaluate import run_benchmark
from pixood_ros.comparison.report import check_markers, write_results
from pixood_ros.comparison.reproduce import StepFailed, prepare
from pixood_ros.comparison.specs import (
    DEFAULT_SPLITS,
    BenchmarkError,
    Comparison,
    ScoringOptions,
    parse_model_spec,
)
from pixood_ros.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS

PROG = "pixood-benchmark"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Compare exported PixOOD models (typically one per scorer: pixood, kmeans, "
        "msp, maxlogit, energy, same backbone and decoder) on pixood-synth splits through the "
        "ONNX runtime engine: AP, AUROC, FPR95, sIoU, PPV, mean F1, mIoU, BRAVO Index and frames "
        "per second, as JSON and Markdown tables. --reproduce runs the whole chain instead.",
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="[NAME=]MODEL.onnx[@MODE]",
        help="model files; NAME labels the row (default: the scorer named in the metadata); "
        "MODE is the anomaly map scored (default eval_labels, the raw anomaly_score; unknown: "
        "the all-class unknown_score, e.g. classic MSP from an msp model)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="pixood-synth data set root with the splits, or a data set in its published "
        "layout (SMIYC RoadAnomaly21 / RoadObstacle21, Fishyscapes Lost & Found: one split, "
        "no semantic labels, so mIoU and BRAVO are n/a)",
    )
    parser.add_argument(
        "-o", "--out-dir", type=Path, required=True, help="folder for benchmark.json / .md"
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        help=f"splits to evaluate, one table each (default for pixood-synth data: "
        f"{' '.join(DEFAULT_SPLITS)}; a published-layout data set is one split)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=DEFAULT_PROTOCOL,
        help="exact (default): exact pixel curve at float32, components at its best-F1 "
        "threshold with score >= t; smiyc: the SMIYC toolkit's float16 storage, per-frame "
        "percentile bins and trapezoid AP, components at its binned best-F1 threshold with "
        "score > t, no AUROC (docs/evaluation.md §3.7)",
    )
    parser.add_argument(
        "--max-frames",
        type=positive_int,
        metavar="N",
        help="evaluate only the first N frames per split",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        metavar="P",
        help="ONNX Runtime execution providers in order (tensorrt cuda cpu); default: best "
        "available",
    )
    add_scoring_arguments(parser)
    parser.add_argument(
        "--readme",
        type=Path,
        help="also write the tables into this README between <!-- benchmark:start --> and "
        "<!-- benchmark:end --> (a Benchmark section with the markers is appended if missing)",
    )
    _add_reproduce_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    reproduce = parser.add_argument_group(
        "reproduction (--reproduce: pixood-synth ▶ pixood-train all ▶ pixood-export per scorer "
        "▶ this benchmark; needs the training extra)"
    )
    reproduce.add_argument(
        "--reproduce", action="store_true", help="run the whole chain; MODEL/--data not used"
    )
    reproduce.add_argument(
        "--config",
        type=Path,
        default=Path("config/train/synth_small.yaml"),
        help="training config (default: config/train/synth_small.yaml)",
    )
    reproduce.add_argument(
        "--experiment",
        type=Path,
        help="pixood-train experiment folder (default: pixood-train's, experiments/<config "
        "stem>, so the demo model's finished training is reused); finished stages are skipped",
    )
    reproduce.add_argument(
        "--work",
        type=Path,
        default=Path("experiments/benchmark"),
        help="folder for the exported models and the benchmark data (default: "
        "experiments/benchmark); models newer than their checkpoint are not exported again",
    )
    reproduce.add_argument(
        "--eval-frames",
        type=positive_int,
        default=40,
        help="frames per benchmark split to generate (default: 40)",
    )
    reproduce.add_argument(
        "--internimage-config",
        type=Path,
        default=Path("config/train/synth_internimage.yaml"),
        help="training config of the InternImage-OOD family row (default: "
        "config/train/synth_internimage.yaml; no row when the file is not there)",
    )
    reproduce.add_argument(
        "--dry-run", action="store_true", help="print the commands of the chain, run nothing"
    )


def _check(args: argparse.Namespace) -> None:
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise BenchmarkError(f"--out-dir exists and is not a directory: {args.out_dir}")
    if args.readme is not None:
        if not args.readme.is_file():
            raise BenchmarkError(f"README not found: {args.readme}")
        try:
            check_markers(args.readme)
        except ValueError as exc:
            raise BenchmarkError(str(exc)) from exc
    if args.reproduce:
        if args.models or args.data:
            raise BenchmarkError("--reproduce makes its own models and data; drop MODEL/--data")
        return
    if not args.models:
        raise BenchmarkError("give at least one MODEL.onnx (or --reproduce)")
    if args.data is None:
        raise BenchmarkError("--data ROOT (pixood-synth or published-layout data) is required")


def _run(args: argparse.Namespace, command: str) -> int:
    _check(args)
    if args.reproduce:
        try:
            comparison = prepare(args)
        except StepFailed as exc:
            return fail(PROG, str(exc), EXIT_FAILED)
        if comparison is None:  # --dry-run
            return 0
    else:
        models = [parse_model_spec(m) for m in args.models]
        comparison = Comparison(models, args.data, args.splits)
    options = options_from(ScoringOptions, args, progress=not args.no_progress)
    results = run_benchmark(comparison.models, comparison.data, comparison.splits, options)
    if comparison.chain:
        results["chain"] = comparison.chain
    if comparison.legend:
        results["legend"] = comparison.legend
    print(write_results(results, args.out_dir, command, args.readme))
    print(f"written: {args.out_dir / 'benchmark.md'}, {args.out_dir / 'benchmark.json'}")
    if args.readme is not None:
        print(f"README section updated: {args.readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = argv_or_sys(argv)
    return run_parsed(
        PROG, build_parser(), argv, lambda args: _run(args, shlex.join([PROG, *argv]))
    )


if __name__ == "__main__":
    sys.exit(main())
