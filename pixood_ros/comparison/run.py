"""`pixood-benchmark`: compare exported models (one per scorer) on the same synthetic splits.

    pixood-benchmark pixood=m/pixood.onnx msp=m/msp.onnx ... --data data/bench -o out/bench
    pixood-benchmark --reproduce -o out/bench --readme README.md   # synth ▶ train ▶ export ▶ this

Every model file goes through the runtime engine (`pixood_ros.engine.Segmenter`, ONNX Runtime, no
PyTorch), frame by frame over each pixood-synth split, and is scored with `pixood_ros.metrics`:
pixel AP / AUROC / FPR95 (exact), SMIYC component sIoU / PPV / mean F1 at the data set's best-F1
threshold, semantic mIoU, frames per second of the engine, and the BRAVO Index of the split
evaluated the BRAVO way (`pixood_ros.metrics.bravo`: the model's confidence as `_conf`, the split
in the role `pixood_ros.bravo.layout` gives it). Results go to benchmark.json and benchmark.md;
`--readme` also puts the tables between the README markers with the command that made them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros.bag.scoring import add_scoring_arguments, component_track
from pixood_ros.bravo.confidence import scorer_levels
from pixood_ros.bravo.evaluate import synth_ground_truth
from pixood_ros.bravo.submission import results_from_accumulators
from pixood_ros.comparison.report import check_markers, insert_into_readme, markdown
from pixood_ros.frames import SourceError, synth_source
from pixood_ros.metrics import component_metrics, miou, pixel_metrics
from pixood_ros.metrics import region as regions
from pixood_ros.metrics.bravo import BravoSubsetAccumulator

DEFAULT_SPLITS = ("ood_val", "ood_small", "ood_roadlike", "ood_shift")
EXIT_USER_ERROR = 2
EXIT_FAILED = 1


class BenchmarkError(Exception):
    """A user mistake (missing file, bad option, unknown split): one line, exit code 2."""


@dataclass
class ModelSpec:
    name: str
    path: Path


@dataclass
class SplitResult:
    """Everything one model scored on one split."""

    frames: int
    metrics: dict[str, float | None]
    bravo: BravoSubsetAccumulator = field(repr=False)


def parse_model_spec(text: str) -> ModelSpec:
    """`NAME=PATH` or `PATH` (named after the scorer in its metadata later)."""
    name, sep, path = text.partition("=")
    if sep and name and path:
        return ModelSpec(name, Path(path))
    return ModelSpec("", Path(text))


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def evaluate_split(
    engine: Any,
    root: Path,
    split: str,
    *,
    region: str = "auto",
    track: str = "auto",
    min_pred_size: int | None = None,
    min_gt_size: int | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    desc: str = "",
) -> SplitResult:
    """Run `engine` over one pixood-synth split and compute the table's numbers."""
    try:
        source = synth_source(root, split)
    except SourceError as exc:
        raise BenchmarkError(str(exc)) from exc
    if not (source.has_ood and source.has_semantic):
        raise BenchmarkError(f"split {split!r} of {root} lacks OOD masks or semantic labels")
    info = engine.info
    scored = scored_region(region, info)
    scores, labels, preds, gts = [], [], [], []
    bravo = BravoSubsetAccumulator(semantic=True, ood=True, num_classes=info.num_classes)
    seconds = 0.0
    total = source.count if max_frames is None else min(max_frames, source.count or max_frames)
    for index, frame in enumerate(
        tqdm(source.frames, total=total, desc=desc or split, unit="frame", disable=not progress)
    ):
        if max_frames is not None and index >= max_frames:
            break
        start = time.perf_counter()
        result = engine(frame.rgb)
        seconds += time.perf_counter() - start
        scores.append(np.array(result.anomaly_score, np.float32))
        labels.append(scored.restrict(frame.ood, frame.semantic))
        preds.append(np.array(result.semantic, np.uint8))
        gts.append(frame.semantic)
        gt, invalid = synth_ground_truth(frame.semantic, frame.ood)
        bravo.update(gt, result.semantic, scorer_levels(result.confidence), invalid)
    if not scores:
        raise BenchmarkError(f"split {split!r} of {root} has no frames")
    pixel = pixel_metrics(scores, labels, on_degenerate="nan")
    components = component_metrics(
        scores,
        labels,
        None,
        track=component_track(track, scored),
        min_pred_size=min_pred_size,
        min_gt_size=min_gt_size,
    )
    bravo_summary = results_from_accumulators({split: bravo})
    metrics = {
        "ap": pixel["ap"],
        "auroc": pixel["auroc"],
        "fpr95": pixel["fpr95"],
        "siou": components["siou"],
        "ppv": components["ppv"],
        "f1_mean": components["f1_mean"],
        "component_threshold": components["threshold"],
        "miou": miou(preds, gts, info.num_classes),
        "bravo_index": bravo_summary["bravo_index"],
        "bravo_semantic_hmean": bravo_summary["semantic_hmean"],
        "bravo_ood_hmean": bravo_summary["ood_hmean"],
        "fps": len(scores) / seconds if seconds > 0 else None,
        "anomaly_pixels": pixel["n_pos"],
        "scored_pixels": pixel["n_pos"] + pixel["n_neg"],
    }
    return SplitResult(len(scores), {k: _finite(v) for k, v in metrics.items()}, bravo)


def scored_region(region: str, info: Any) -> regions.ScoredRegion:
    """The shared region rule (`pixood_ros.metrics.region`); the synth splits always carry
    semantic labels."""
    try:
        return regions.choose_region(region, info.eval_labels, info.num_classes, True)
    except ValueError as exc:
        raise BenchmarkError(f"--eval-region: {exc}") from exc


def _load(spec: ModelSpec, providers: list[str] | None) -> Any:
    from pixood_ros.engine import ModelError, Segmenter

    if not spec.path.is_file():
        raise BenchmarkError(f"model not found: {spec.path}")
    try:
        return Segmenter(spec.path, providers=providers)
    except ModelError as exc:
        raise BenchmarkError(f"cannot use model {spec.path}: {exc}") from exc


def _unique_names(specs: list[ModelSpec], scorers: list[str]) -> list[str]:
    names = [spec.name or scorer for spec, scorer in zip(specs, scorers, strict=True)]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = specs[i].name or f"{name} ({specs[i].path.stem})"
    if len(set(names)) != len(names):
        raise BenchmarkError(f"two models share a name ({', '.join(names)}); use NAME=PATH")
    return names


def run_benchmark(
    specs: list[ModelSpec],
    root: Path,
    splits: list[str],
    *,
    providers: list[str] | None = None,
    region: str = "auto",
    track: str = "auto",
    min_pred_size: int | None = None,
    min_gt_size: int | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Results of every model on every split (JSON-ready)."""
    if not (root / "meta.json").is_file():
        raise BenchmarkError(f"{root} is not a pixood-synth data set (no meta.json)")
    engines = [_load(spec, providers) for spec in specs]
    names = _unique_names(specs, [e.info.scorer for e in engines])
    results: dict[str, dict[str, Any]] = {split: {} for split in splits}
    overall: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name, spec, engine in zip(names, specs, engines, strict=True):
        info = engine.info
        scored = scored_region(region, info)
        models[name] = {
            "path": str(spec.path),
            "scorer": info.scorer,
            "config_hash": info.config_hash,
            "provider": engine.active_provider,
            "component_track": component_track(track, scored),
            "scored_pixels": scored.describe(info.class_names),
            "region": scored.as_dict(info.class_names),
        }
        accumulators = {}
        for split in splits:
            result = evaluate_split(
                engine, root, split, region=region, track=track, min_pred_size=min_pred_size,
                min_gt_size=min_gt_size, max_frames=max_frames, progress=progress,
                desc=f"{name} {split}",
            )  # fmt: skip
            results[split][name] = {"frames": result.frames, **result.metrics}
            accumulators[split] = result.bravo
        combined = results_from_accumulators(accumulators)
        overall[name] = {
            key: _finite(combined[key]) for key in ("bravo_index", "semantic_hmean", "ood_hmean")
        }
        for key in ("ap", "auroc", "fpr95", "fps"):
            values = [results[s][name][key] for s in splits]
            overall[name][f"mean_{key}"] = (
                float(np.mean(values)) if all(v is not None for v in values) else None
            )
    return {
        "tool": "pixood-benchmark",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": str(root),
        "splits": splits,
        "eval_region": region,
        "track": track,
        "models": models,
        "results": results,
        "overall": overall,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixood-benchmark",
        description="Compare exported PixOOD models (typically one per scorer: pixood, kmeans, "
        "msp, maxlogit, energy, same backbone and decoder) on pixood-synth splits through the "
        "ONNX runtime engine: AP, AUROC, FPR95, sIoU, PPV, mean F1, mIoU, BRAVO Index and frames "
        "per second, as JSON and Markdown tables. --reproduce runs the whole chain instead.",
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="[NAME=]MODEL.onnx",
        help="model files; NAME labels the row (default: the scorer named in the metadata)",
    )
    parser.add_argument("--data", type=Path, help="pixood-synth data set root with the splits")
    parser.add_argument(
        "-o", "--out-dir", type=Path, required=True, help="folder for benchmark.json / .md"
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(DEFAULT_SPLITS),
        help=f"splits to evaluate, one table each (default: {' '.join(DEFAULT_SPLITS)})",
    )
    parser.add_argument(
        "--max-frames", type=int, metavar="N", help="evaluate only the first N frames per split"
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
        type=int,
        default=40,
        help="frames per benchmark split to generate (default: 40)",
    )
    reproduce.add_argument(
        "--dry-run", action="store_true", help="print the commands of the chain, run nothing"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.max_frames is not None and args.max_frames <= 0:
        raise BenchmarkError(f"--max-frames must be positive, got {args.max_frames}")
    if args.eval_frames <= 0:
        raise BenchmarkError(f"--eval-frames must be positive, got {args.eval_frames}")
    for option in ("min_pred_size", "min_gt_size"):
        value = getattr(args, option)
        if value is not None and value < 0:
            raise BenchmarkError(f"--{option.replace('_', '-')} must be >= 0, got {value}")
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
        raise BenchmarkError("--data ROOT (a pixood-synth data set) is required")


def write_results(results: dict[str, Any], out_dir: Path, command: str, readme: Path | None) -> str:
    """benchmark.json + benchmark.md (and the README section); returns the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "command": command}
    (out_dir / "benchmark.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    text = markdown(results)
    (out_dir / "benchmark.md").write_text(text)
    if readme is not None:
        insert_into_readme(readme, text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    command = shlex.join(["pixood-benchmark", *argv])
    try:
        _check(args)
        if args.reproduce:
            from pixood_ros.comparison.reproduce import reproduce

            return reproduce(args, command)
        results = run_benchmark(
            [parse_model_spec(m) for m in args.models],
            args.data,
            list(args.splits),
            providers=args.providers,
            region=args.eval_region,
            track=args.track,
            min_pred_size=args.min_pred_size,
            min_gt_size=args.min_gt_size,
            max_frames=args.max_frames,
            progress=not args.no_progress,
        )
        text = write_results(results, args.out_dir, command, args.readme)
    except BenchmarkError as exc:
        print(f"pixood-benchmark: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(text)
    print(f"written: {args.out_dir / 'benchmark.md'}, {args.out_dir / 'benchmark.json'}")
    if args.readme is not None:
        print(f"README section updated: {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
