"""Score a submission folder against ground truth the BRAVO way, for both layouts.

BRAVO-layout ground truth goes straight to `pixood_ros.bravo.submission.evaluate_submission`
(the toolkit's own rules). For a pixood-synth root each split is one subset, scored with the same
accumulators and aggregation (`BravoSubsetAccumulator`, `results_from_accumulators`) in the role
`layout.SYNTH_ROLES` gives it; its ground truth is translated to what the toolkit expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pixood_ros.bravo.files import read_prediction, read_single_channel
from pixood_ros.bravo.submission import evaluate_submission, results_from_accumulators
from pixood_ros.metrics.bravo import SUBSETS, BravoSubsetAccumulator

from .layout import (
    BRAVO,
    SYNTH_ROLES,
    LayoutError,
    detect_layout,
    select_subsets,
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
    semantic_hmean, ood_hmean, bravo_index when both groups are present)."""

    layout: str
    gt_root: Path
    submission_root: Path
    subsets: list[str]
    results: dict[str, object]


def synth_ground_truth(labels: np.ndarray, ood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gt, invalid) in the toolkit's terms from pixood-synth labels (255 void) and OOD mask
    (0 in-distribution, 1 anomaly, 255 void): anomalies are the invalid pixels and get a
    non-void stand-in id so they are sampled; OOD-void pixels are void."""
    anomaly = ood == 1
    gt = labels.copy()
    gt[anomaly & (gt == VOID)] = ANOMALY_GT_STANDIN
    gt[ood == VOID] = VOID
    return gt, anomaly.astype(np.uint8)


def evaluate_synth(
    gt_root: Path,
    submission_root: Path,
    subsets: Sequence[str] | None = None,
    progress: bool = True,
) -> tuple[dict[str, object], list[str]]:
    """(results, splits in report order): BRAVO metrics of a submission for a pixood-synth
    root, one subset per split."""
    frames = select_subsets(
        synth_frames(gt_root, submission_root),
        lambda f: f.split,
        subsets,
        f"{gt_root}: no ground truth for split(s)",
    )
    if not frames:
        raise LayoutError(
            f"{gt_root}: no ground truth found (gtFine/<split>/<city>/*_gtFine_labelTrainIds.png)"
        )
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
    return results_from_accumulators(accumulators), order


def evaluate_folder(
    gt_root: str | Path,
    submission_root: str | Path,
    subsets: Sequence[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Evaluate `submission_root` against the BRAVO-layout or pixood-synth `gt_root`."""
    gt_root, submission_root = Path(gt_root), Path(submission_root)
    layout = detect_layout(gt_root, "ground-truth folder")
    if not submission_root.is_dir():
        raise LayoutError(f"submission folder not found: {submission_root}")
    if layout == BRAVO:
        unknown = [s for s in subsets or () if s not in SUBSETS]
        if unknown:
            raise LayoutError(
                f"unknown BRAVO subset(s) {', '.join(unknown)}; known: {', '.join(SUBSETS)}"
            )
        results = evaluate_submission(gt_root, submission_root, subsets or None)
        order = [s for s in SUBSETS if any(k.startswith(f"{s}_") for k in results)]
    else:
        results, order = evaluate_synth(gt_root, submission_root, subsets, progress)
    return Evaluation(layout, gt_root, submission_root, order, results)
