"""Run every model over every pixood-synth split through the runtime engine and score it.

Each model file goes through `pixood_ros.engine.Segmenter` (ONNX Runtime, no PyTorch), frame by
frame, and is scored with `pixood_ros.metrics`: pixel AP / AUROC / FPR95 (exact), SMIYC component
sIoU / PPV / mean F1 at the split's best-F1 threshold, semantic mIoU, engine frames per second, and
the BRAVO Index of the split evaluated the BRAVO way (the model's confidence as `_conf`, the split
in the role `pixood_ros.bravo.layout` gives it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros.bag.scoring import component_track
from pixood_ros.bravo.confidence import scorer_levels
from pixood_ros.bravo.evaluate import synth_ground_truth
from pixood_ros.bravo.submission import results_from_accumulators
from pixood_ros.comparison.specs import BenchmarkError, ModelSpec, ScoringOptions
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.frames import SourceError, synth_source
from pixood_ros.metrics import component_metrics, miou, pixel_metrics
from pixood_ros.metrics import region as regions
from pixood_ros.metrics.bravo import BravoSubsetAccumulator
from pixood_ros.metrics.curves import DegenerateLabelsError


@dataclass
class SplitResult:
    """Everything one model scored on one split."""

    frames: int
    metrics: dict[str, float | None]
    bravo: BravoSubsetAccumulator = field(repr=False)


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def evaluate_split(
    engine: Any, root: Path, split: str, options: ScoringOptions, desc: str = ""
) -> SplitResult:
    """Run `engine` over one pixood-synth split and compute the table's numbers."""
    try:
        source = synth_source(root, split)
    except SourceError as exc:
        raise BenchmarkError(str(exc)) from exc
    if not (source.has_ood and source.has_semantic):
        raise BenchmarkError(f"split {split!r} of {root} lacks OOD masks or semantic labels")
    info = engine.info
    scored = scored_region(options.eval_region, info)
    scores, labels, preds, gts = [], [], [], []
    bravo = BravoSubsetAccumulator(semantic=True, ood=True, num_classes=info.num_classes)
    seconds = 0.0
    limit = options.max_frames
    total = source.count if limit is None else min(limit, source.count or limit)
    frames = tqdm(
        source.frames, total=total, desc=desc or split, unit="frame", disable=not options.progress
    )
    for index, frame in enumerate(frames):
        if limit is not None and index >= limit:
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
    try:
        pixel = pixel_metrics(scores, labels)
    except DegenerateLabelsError as exc:
        raise BenchmarkError(
            f"split {split!r} of {root}: {exc}; pixood-benchmark compares anomaly scores on "
            "splits with anomaly and in-distribution pixels (the ood_* splits)"
        ) from exc
    components = component_metrics(
        scores,
        labels,
        None,
        track=component_track(options.track, scored),
        min_pred_size=options.min_pred_size,
        min_gt_size=options.min_gt_size,
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
    return SplitResult(len(scores), {k: _finite_or_none(v) for k, v in metrics.items()}, bravo)


def scored_region(region: str, info: Any) -> regions.ScoredRegion:
    """The shared region rule (`pixood_ros.metrics.region`); the synth splits always carry
    semantic labels."""
    try:
        return regions.choose_region(region, info.eval_labels, info.num_classes, True)
    except ValueError as exc:
        raise BenchmarkError(f"--eval-region: {exc}") from exc


def _load(spec: ModelSpec, providers: list[str] | None) -> Segmenter:
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


def _model_entry(spec: ModelSpec, engine: Any, options: ScoringOptions) -> dict[str, Any]:
    """What the report says about one model: file, scorer, provider and the pixels it scores."""
    info = engine.info
    scored = scored_region(options.eval_region, info)
    return {
        "path": str(spec.path),
        "scorer": info.scorer,
        "config_hash": info.config_hash,
        "provider": engine.active_provider,
        "component_track": component_track(options.track, scored),
        "scored_pixels": scored.describe(info.class_names),
        "region": scored.as_dict(info.class_names),
    }


def _overall(
    per_split: dict[str, dict[str, Any]], accumulators: dict[str, BravoSubsetAccumulator]
) -> dict[str, float | None]:
    """One model's row of the all-splits table: the BRAVO scores of all splits together and the
    mean AP / AUROC / FPR95 / fps over the splits (None when a split has no value)."""
    combined = results_from_accumulators(accumulators)
    bravo_keys = ("bravo_index", "semantic_hmean", "ood_hmean")
    row = {key: _finite_or_none(combined[key]) for key in bravo_keys}
    for key in ("ap", "auroc", "fpr95", "fps"):
        values = [per_split[split][key] for split in per_split]
        row[f"mean_{key}"] = float(np.mean(values)) if all(v is not None for v in values) else None
    return row


def run_benchmark(
    specs: list[ModelSpec], root: Path, splits: list[str], options: ScoringOptions
) -> dict[str, Any]:
    """Results of every model on every split (JSON-ready)."""
    if not (root / "meta.json").is_file():
        raise BenchmarkError(f"{root} is not a pixood-synth data set (no meta.json)")
    engines = [_load(spec, options.providers) for spec in specs]
    names = _unique_names(specs, [e.info.scorer for e in engines])
    results: dict[str, dict[str, Any]] = {split: {} for split in splits}
    overall: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name, spec, engine in zip(names, specs, engines, strict=True):
        models[name] = _model_entry(spec, engine, options)
        accumulators = {}
        for split in splits:
            result = evaluate_split(engine, root, split, options, desc=f"{name} {split}")
            results[split][name] = {"frames": result.frames, **result.metrics}
            accumulators[split] = result.bravo
        overall[name] = _overall({s: results[s][name] for s in splits}, accumulators)
    return {
        "tool": "pixood-benchmark",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": str(root),
        "splits": splits,
        "eval_region": options.eval_region,
        "track": options.track,
        "models": models,
        "results": results,
        "overall": overall,
    }
