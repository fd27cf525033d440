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

from pixood_ros.anomaly_modes import EVAL_LABELS, AnomalyModeError, anomaly_map, check_mode
from pixood_ros.bag.scoring import component_track
from pixood_ros.bravo.confidence import scorer_levels
from pixood_ros.bravo.evaluate import synth_ground_truth
from pixood_ros.bravo.submission import results_from_accumulators
from pixood_ros.comparison.data import BenchmarkData, open_data
from pixood_ros.comparison.specs import BenchmarkError, ModelSpec, ScoringOptions
from pixood_ros.engine import ModelError, Segmenter
from pixood_ros.metrics import miou
from pixood_ros.metrics import region as regions
from pixood_ros.metrics.bravo import BravoSubsetAccumulator
from pixood_ros.metrics.curves import DegenerateLabelsError
from pixood_ros.metrics.protocols import anomaly_metrics


@dataclass
class SplitResult:
    """Everything one model scored on one split."""

    frames: int
    metrics: dict[str, float | None]
    bravo: BravoSubsetAccumulator | None = field(repr=False)


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def evaluate_split(
    engine: Any,
    data: BenchmarkData,
    split: str,
    options: ScoringOptions,
    desc: str = "",
    mode: str = EVAL_LABELS,
) -> SplitResult:
    """Run `engine` over one split and compute the table's numbers; data without semantic
    labels (the public layouts) gets no mIoU and no BRAVO Index (None, shown as n/a)."""
    source = data.source(split)
    if not source.has_ood or (data.has_semantic and not source.has_semantic):
        raise BenchmarkError(f"split {split!r} of {data.root} lacks OOD masks or semantic labels")
    info = engine.info
    scored = scored_region(options.eval_region, info, data.has_semantic)
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
        scores.append(anomaly_map(result, mode, info.eval_labels))
        labels.append(scored.restrict(frame.ood, frame.semantic))
        if data.has_semantic:
            preds.append(np.array(result.semantic, np.uint8))
            gts.append(frame.semantic)
            gt, invalid = synth_ground_truth(frame.semantic, frame.ood)
            bravo.update(gt, result.semantic, scorer_levels(result.confidence), invalid)
    if not scores:
        raise BenchmarkError(f"split {split!r} of {data.root} has no frames")
    track = data.track(options.track) or component_track(options.track, scored)
    try:
        pixel, components = anomaly_metrics(
            scores,
            labels,
            options.protocol,
            track=track,
            min_pred_size=options.min_pred_size,
            min_gt_size=options.min_gt_size,
        )
    except DegenerateLabelsError as exc:
        raise BenchmarkError(
            f"split {split!r} of {data.root}: {exc}; pixood-benchmark compares anomaly scores on "
            "splits with anomaly and in-distribution pixels (the ood_* splits)"
        ) from exc
    bravo_summary = results_from_accumulators({split: bravo}) if data.has_semantic else {}
    metrics = {
        "ap": pixel["ap"],
        "auroc": pixel["auroc"],
        "fpr95": pixel["fpr95"],
        "siou": components["siou"],
        "ppv": components["ppv"],
        "f1_mean": components["f1_mean"],
        "component_threshold": components["threshold"],
        "miou": miou(preds, gts, info.num_classes) if data.has_semantic else None,
        "bravo_index": bravo_summary.get("bravo_index"),
        "bravo_semantic_hmean": bravo_summary.get("semantic_hmean"),
        "bravo_ood_hmean": bravo_summary.get("ood_hmean"),
        "fps": len(scores) / seconds if seconds > 0 else None,
        "anomaly_pixels": pixel["n_pos"],
        "scored_pixels": pixel["n_pos"] + pixel["n_neg"],
    }
    accumulator = bravo if data.has_semantic else None
    return SplitResult(
        len(scores), {k: _finite_or_none(v) for k, v in metrics.items()}, accumulator
    )


def scored_region(region: str, info: Any, has_semantic: bool = True) -> regions.ScoredRegion:
    """The shared region rule (`pixood_ros.metrics.region`); the synth splits carry semantic
    labels, the public layouts do not."""
    try:
        return regions.choose_region(region, info.eval_labels, info.num_classes, has_semantic)
    except ValueError as exc:
        raise BenchmarkError(f"--eval-region: {exc}") from exc


def _load(spec: ModelSpec, providers: list[str] | None) -> Segmenter:
    if not spec.path.is_file():
        raise BenchmarkError(f"model not found: {spec.path}")
    try:
        engine = Segmenter(spec.path, providers=providers)
        check_mode(spec.mode, engine.info.anomaly_modes, str(spec.path))
    except (ModelError, AnomalyModeError) as exc:
        raise BenchmarkError(f"cannot use model {spec.path}: {exc}") from exc
    return engine


def _default_name(spec: ModelSpec, scorer: str) -> str:
    return scorer if spec.mode == EVAL_LABELS else f"{scorer} ({spec.mode})"


def _unique_names(specs: list[ModelSpec], scorers: list[str]) -> list[str]:
    names = [spec.name or _default_name(spec, s) for spec, s in zip(specs, scorers, strict=True)]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = specs[i].name or f"{name} ({specs[i].path.stem})"
    if len(set(names)) != len(names):
        raise BenchmarkError(f"two models share a name ({', '.join(names)}); use NAME=PATH")
    return names


def _model_entry(
    spec: ModelSpec, engine: Any, data: BenchmarkData, options: ScoringOptions
) -> dict[str, Any]:
    """What the report says about one model: file, scorer, provider and the pixels it scores."""
    info = engine.info
    scored = scored_region(options.eval_region, info, data.has_semantic)
    return {
        "path": str(spec.path),
        "scorer": info.scorer,
        "anomaly_mode": spec.mode,
        "config_hash": info.config_hash,
        "provider": engine.active_provider,
        "component_track": data.track(options.track) or component_track(options.track, scored),
        "scored_pixels": scored.describe(info.class_names),
        "region": scored.as_dict(info.class_names),
    }


def _overall(
    per_split: dict[str, dict[str, Any]], accumulators: dict[str, BravoSubsetAccumulator]
) -> dict[str, float | None]:
    """One model's row of the all-splits table: the BRAVO scores of all splits together and the
    mean AP / AUROC / FPR95 / fps over the splits (None when a split has no value)."""
    combined = results_from_accumulators(accumulators) if accumulators else {}
    bravo_keys = ("bravo_index", "semantic_hmean", "ood_hmean")
    row = {key: _finite_or_none(combined.get(key)) for key in bravo_keys}
    for key in ("ap", "auroc", "fpr95", "fps"):
        values = [per_split[split][key] for split in per_split]
        row[f"mean_{key}"] = float(np.mean(values)) if all(v is not None for v in values) else None
    return row


def run_benchmark(
    specs: list[ModelSpec], root: Path, splits: list[str] | None, options: ScoringOptions
) -> dict[str, Any]:
    """Results of every model on every split (JSON-ready); `splits` None: all of the data."""
    data = open_data(root, splits)
    splits = data.splits
    engines = [_load(spec, options.providers) for spec in specs]
    names = _unique_names(specs, [e.info.scorer for e in engines])
    results: dict[str, dict[str, Any]] = {split: {} for split in splits}
    overall: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name, spec, engine in zip(names, specs, engines, strict=True):
        models[name] = _model_entry(spec, engine, data, options)
        accumulators = {}
        for split in splits:
            desc = f"{name} {split}"
            result = evaluate_split(engine, data, split, options, desc, spec.mode)
            results[split][name] = {"frames": result.frames, **result.metrics}
            if result.bravo is not None:
                accumulators[split] = result.bravo
        overall[name] = _overall({s: results[s][name] for s in splits}, accumulators)
    return {
        "tool": "pixood-benchmark",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": str(root),
        "data_kind": data.kind,
        "splits": splits,
        "protocol": options.protocol,
        "eval_region": options.eval_region,
        "track": options.track,
        "models": models,
        "results": results,
        "overall": overall,
    }
