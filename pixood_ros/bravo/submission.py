"""Local BRAVO evaluation of a raw submission folder against a ground-truth folder laid out as
the BRAVO data set (`bravo_<split>/...`), giving the numbers the challenge server would."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np

from pixood_ros.frames import read_image
from pixood_ros.metrics.bravo import SUBSETS, BravoSubsetAccumulator, summarize

from .files import SPLIT_SUFFIXES, SplitSuffixes, SubmissionError, read_prediction, subset_of


def _grey(path: Path) -> np.ndarray:
    image = read_image(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SubmissionError(f"{path}: missing or not a readable image")
    return image


def ground_truth_files(gt_root: Path) -> Iterator[tuple[str, str, SplitSuffixes]]:
    """(subset, base name relative to the root, the split's suffixes) of every ground-truth
    image under `gt_root`; base + suffix names the mask, the prediction and the confidence."""
    for split, suffixes in SPLIT_SUFFIXES.items():
        for gt_path in sorted((gt_root / f"bravo_{split}").rglob(f"*{suffixes.gt}")):
            rel = gt_path.relative_to(gt_root).as_posix()
            yield subset_of(rel), rel[: -len(suffixes.gt)], suffixes


def predicted_subsets(gt_root: str | Path, submission_root: str | Path) -> dict[str, bool]:
    """For every subset with ground truth: whether the submission holds any prediction of it."""
    predicted: dict[str, bool] = {}
    for subset, base, suffixes in ground_truth_files(Path(gt_root)):
        found = (Path(submission_root) / (base + suffixes.pred)).is_file()
        predicted[subset] = predicted.get(subset, False) or found
    return predicted


def evaluate_submission(
    gt_root: str | Path, submission_root: str | Path, subsets: Iterable[str] | None = None
) -> dict[str, object]:
    """Evaluate every ground-truth image found under `gt_root`; a missing prediction is an
    error (the server rejects incomplete submissions). Returns ``{subset}_{metric}`` entries
    and, when both semantic and OOD subsets were present, the summary (semantic_hmean,
    ood_hmean, bravo_index)."""
    gt_root, submission_root = Path(gt_root), Path(submission_root)
    wanted = set(SUBSETS if subsets is None else subsets)
    unknown = wanted - set(SUBSETS)
    if unknown:
        raise SubmissionError(f"unknown BRAVO subsets: {sorted(unknown)}")
    accumulators: dict[str, BravoSubsetAccumulator] = {}
    for subset, base, suffixes in ground_truth_files(gt_root):
        if subset not in wanted:
            continue
        gt = _grey(gt_root / (base + suffixes.gt))
        invalid = _grey(gt_root / (base + suffixes.mask))
        pred, conf = read_prediction(
            submission_root / (base + suffixes.pred),
            submission_root / (base + suffixes.conf),
            image_size=gt.shape,
        )
        acc = accumulators.setdefault(subset, BravoSubsetAccumulator.for_subset(subset))
        acc.update(gt, pred, conf, invalid)
    if not accumulators:
        raise SubmissionError(f"{gt_root}: no BRAVO ground-truth files found")
    return results_from_accumulators(accumulators)


def results_from_accumulators(
    accumulators: Mapping[str, BravoSubsetAccumulator],
) -> dict[str, object]:
    """``{subset}_{metric}`` entries of every filled accumulator plus, when both semantic and
    OOD subsets are present, the summary (semantic_hmean, ood_hmean, bravo_index, per-subset
    hmeans). Shared by every data-set layout evaluated the BRAVO way."""
    results: dict[str, object] = {}
    for subset, acc in accumulators.items():
        results.update({f"{subset}_{k}": v for k, v in acc.compute().items()})
    accs = accumulators.values()
    if any(a.semantic for a in accs) and any(a.ood for a in accs):
        results.update(summarize(results, subsets=list(accumulators)))
    return results
