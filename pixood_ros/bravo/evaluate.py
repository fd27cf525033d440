"""Score a submission folder against ground truth the BRAVO way, for both layouts.

BRAVO-layout ground truth goes straight to `pixood_ros.bravo.submission.evaluate_submission`
(the toolkit's own rules). For a pixood-synth root each split is one subset, scored with the same
accumulators and aggregation (`BravoSubsetAccumulator`, `results_from_accumulators`) in the role
`layout.SYNTH_ROLES` gives it; its ground truth is translated to what the toolkit expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pixood_ros.bravo.files import read_prediction, read_single_channel
from pixood_ros.bravo.submission import (
    evaluate_submission,
    predicted_subsets,
    results_from_accumulators,
)
from pixood_ros.metrics.bravo import SUBSETS, BravoSubsetAccumulator

from .layout import (
    BRAVO,
    SYNTH_ROLES,
    LayoutError,
    detect_layout,
    subset_spec,
    synth_frames,
)

VOID = 255
#: class id given to anomaly pixels (void in gtFine) so that BRAVO's sampling, which draws
#: only non-void pixels, includes them as OOD positives; they are invalid, so no semantic
#: metric ever reads this id
ANOMALY_GT_STANDIN = 0


@dataclass
class Evaluation:
    """Results of one evaluation: toolkit-style flat `{subset}_{metric}` results (plus
    semantic_hmean, ood_hmean, bravo_index when both groups are present), and the subsets with
    ground truth that were `skipped` because the submission has no prediction of them."""

    layout: str
    gt_root: Path
    submission_root: Path
    subsets: list[str]
    results: dict[str, object]
    skipped: list[str] = field(default_factory=list)


def synth_ground_truth(labels: np.ndarray, ood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gt, invalid) in the toolkit's terms from pixood-synth labels (255 void) and OOD mask
    (0 in-distribution, 1 anomaly, 255 void): anomalies are the invalid pixels and get a
    non-void stand-in id so they are sampled; OOD-void pixels are void."""
    anomaly = ood == 1
    gt = labels.copy()
    gt[anomaly & (gt == VOID)] = ANOMALY_GT_STANDIN
    gt[ood == VOID] = VOID
    return gt, anomaly.astype(np.uint8)


def choose_subsets(
    predicted: dict[str, bool],
    requested: Sequence[str] | None,
    gt_root: Path,
    submission_root: Path,
) -> tuple[list[str], list[str]]:
    """(subsets to evaluate, subsets skipped) given which subsets with ground truth have any
    prediction: without a request, those that have (after a partial `predict --subsets`); a
    requested subset without ground truth or without predictions is a LayoutError naming it."""
    if requested:
        unknown = [s for s in requested if s not in predicted]
        if unknown:
            raise LayoutError(
                f"{gt_root}: no ground truth for subset(s) {', '.join(unknown)} "
                f"(found: {', '.join(predicted) or 'none'})"
            )
        missing = ",".join(s for s in requested if not predicted[s])
        if missing:
            raise LayoutError(
                f"{submission_root}: no predictions for subset(s) {missing}; run pixood-bravo "
                f"predict --subsets {missing} first, or leave them out of --subsets"
            )
        return list(dict.fromkeys(requested)), []
    chosen = [s for s, has in predicted.items() if has]
    skipped = [s for s, has in predicted.items() if not has]
    if not chosen:
        raise LayoutError(
            f"{submission_root}: no predictions for any subset with ground truth "
            f"({', '.join(skipped)}); run pixood-bravo predict first"
        )
    return chosen, skipped


def evaluate_synth(
    gt_root: Path,
    submission_root: Path,
    subsets: Sequence[str] | None = None,
    progress: bool = True,
) -> tuple[dict[str, object], list[str], list[str]]:
    """(results, splits in report order, splits skipped): BRAVO metrics of a submission for a
    pixood-synth root, one subset per split."""
    frames = synth_frames(gt_root, submission_root)
    if not frames:
        raise LayoutError(
            f"{gt_root}: no ground truth found (gtFine/<split>/<city>/*_gtFine_labelTrainIds.png)"
        )
    predicted: dict[str, bool] = {}
    for frame in frames:
        predicted[frame.split] = predicted.get(frame.split, False) or frame.pred.is_file()
    chosen, skipped = choose_subsets(predicted, subsets, gt_root, submission_root)
    frames = [frame for frame in frames if frame.split in chosen]
    accumulators: dict[str, BravoSubsetAccumulator] = {}
    for frame in tqdm(frames, desc="pixood-bravo evaluate", unit="img", disable=not progress):
        labels = read_single_channel(frame.gt, np.uint8, "label map")
        ood = read_single_channel(frame.ood, np.uint8, "OOD mask")
        if ood.shape != labels.shape:
            raise LayoutError(
                f"{frame.ood}: size {ood.shape} differs from its labels {labels.shape}"
            )
        gt, invalid = synth_ground_truth(labels, ood)
        pred, conf = read_prediction(frame.pred, frame.conf, image_size=labels.shape)
        if frame.split not in accumulators:
            spec = subset_spec("synth", frame.split)
            accumulators[frame.split] = BravoSubsetAccumulator(spec.semantic, spec.ood)
        accumulators[frame.split].update(gt, pred, conf, invalid)
    order = [s for s in SYNTH_ROLES if s in accumulators]
    order += sorted(s for s in accumulators if s not in SYNTH_ROLES)
    return results_from_accumulators(accumulators), order, skipped


def evaluate_folder(
    gt_root: str | Path,
    submission_root: str | Path,
    subsets: Sequence[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Evaluate `submission_root` against the BRAVO-layout or pixood-synth `gt_root`, in the
    subsets it has predictions of (all requested ones with `subsets`)."""
    gt_root, submission_root = Path(gt_root), Path(submission_root)
    layout = detect_layout(gt_root, "ground-truth folder")
    if not submission_root.is_dir():
        problem = "is not a directory" if submission_root.exists() else "not found"
        raise LayoutError(f"submission folder {problem}: {submission_root}")
    if layout == BRAVO:
        unknown = [s for s in subsets or () if s not in SUBSETS]
        if unknown:
            raise LayoutError(
                f"unknown BRAVO subset(s) {', '.join(unknown)}; known: {', '.join(SUBSETS)}"
            )
        predicted = predicted_subsets(gt_root, submission_root)
        if not predicted:
            raise LayoutError(f"{gt_root}: no BRAVO ground-truth files found")
        chosen, skipped = choose_subsets(predicted, subsets, gt_root, submission_root)
        results = evaluate_submission(gt_root, submission_root, chosen)
        order = [s for s in SUBSETS if any(k.startswith(f"{s}_") for k in results)]
    else:
        results, order, skipped = evaluate_synth(gt_root, submission_root, subsets, progress)
    return Evaluation(layout, gt_root, submission_root, order, results, skipped)
