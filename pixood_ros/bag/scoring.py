"""Streaming metrics of one evaluation run, built from `pixood_ros.metrics` accumulators so a long
bag never needs its frames in memory (histograms and per-component numbers only).

- pixel AP / AUROC / FPR95 (+ best F1) from the binned `PixelMetricAccumulator`;
- component sIoU / PPV / mean F1 (SMIYC rules), at the data set's best-F1 threshold of the
  binned curve (`best-f1`, SMIYC's operating point at 1/65536, found after the last frame from a
  compact temporary score file: `pixood_ros.bag.best_f1`) or at the node's mask threshold
  (`mask`: score >= threshold, `pixood_ros.render.outputs.anomaly_mask`, the mask a robot
  really gets);
- all anomaly metrics inside the scored region (`pixood_ros.metrics.region`: every labelled
  pixel, or the model's eval-label classes + anomalies), and the pixel ones also over the whole
  frame (every labelled pixel, no ground-truth gating: what a robot's mask really does);
- TPR, FPR and precision of the node's mask (score >= threshold), read off the same curves;
- mIoU, pixel accuracy and ECE when semantic ground truth is present;
- a score histogram (all pixels, and split by label when OOD ground truth is present).

Each frame's scores are binned once (`pixood_ros.bag.histogram`) for all its histograms.

What is scored is one value object, `ScoringOptions` (`pixood_ros.bag.scoring_options`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros.bag import histogram
from pixood_ros.bag.best_f1 import (
    ScoreSpill,
    components_at_threshold,
    exact_point,
    smiyc_codes,
    smiyc_point,
)
from pixood_ros.bag.scoring_options import (
    BEST_F1,
    COMPONENT_THRESHOLDS,
    MASK,
    ScoringOptions,
    component_track,
)
from pixood_ros.bag.scoring_options import add_scoring_arguments as add_scoring_arguments
from pixood_ros.cli import UserError
from pixood_ros.datasets import LAYOUTS
from pixood_ros.metrics import PixelMetricAccumulator
from pixood_ros.metrics import region as regions
from pixood_ros.metrics.components import ComponentMetricAccumulator
from pixood_ros.metrics.curves import BinaryCurve, DegenerateLabelsError, curve_from_histograms
from pixood_ros.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from pixood_ros.metrics.region import ScoredRegion
from pixood_ros.metrics.semantic import CalibrationAccumulator, ConfusionMatrixAccumulator
from pixood_ros.metrics.semantic_frame import add_semantic_frame
from pixood_ros.metrics.smiyc import SmiycPixelAccumulator

HISTOGRAM_BINS = 100
NO_SEMANTIC_LABELS = "semantic metrics: n/a (no semantic labels)"
SMIYC_NOTE = (
    "SMIYC protocol (float16 storage, per-frame percentile bins, trapezoid AP; no AUROC); the "
    "whole frame and the mask's operating point stay exact"
)
ALL_PIXELS = ScoredRegion("all", None, "requested (all)")


def scored_region(eval_region: str, info: Any, has_semantic_gt: bool) -> ScoredRegion:
    """The region `eval_region` means for this model (`ModelInfo`) and ground truth; a
    UserError when the requested one is impossible."""
    try:
        return regions.choose_region(
            eval_region, info.eval_labels, len(info.class_names), has_semantic_gt
        )
    except ValueError as exc:
        raise UserError(f"--eval-region: {exc}") from exc


def make_metrics(
    scoring: ScoringOptions,
    threshold: float,
    region: ScoredRegion,
    num_classes: int,
    spill_dir: Path | None,
    dataset: str | None = None,
) -> EvalMetrics:
    """The metrics of one run, as every tool (offline, live, demo) configures them; `dataset`
    (the published layout a bag was made from) gives `--track auto` that data set's track."""
    track, track_note = scoring.track, None
    if track == "auto" and dataset in LAYOUTS:
        track = LAYOUTS[dataset].track
        track_note = f"component track {track}: the bag was made from {dataset}"
    return EvalMetrics(
        threshold,
        num_classes=num_classes,
        track=track,
        track_note=track_note,
        protocol=scoring.protocol,
        min_pred_size=scoring.min_pred_size,
        min_gt_size=scoring.min_gt_size,
        component_threshold=scoring.component_threshold,
        region=region,
        spill_dir=spill_dir,
    )


class EvalMetrics:
    """Accumulates everything the report needs, frame by frame; `close()` (or a `with` block)
    removes the temporary score file of the best-F1 component pass."""

    def __init__(
        self,
        threshold: float,
        num_classes: int,
        track: str = "auto",
        min_pred_size: int | None = None,
        min_gt_size: int | None = None,
        *,
        component_threshold: str = BEST_F1,
        region: ScoredRegion = ALL_PIXELS,
        spill_dir: Path | None = None,
        track_note: str | None = None,
        protocol: str = DEFAULT_PROTOCOL,
    ) -> None:
        if component_threshold not in COMPONENT_THRESHOLDS:
            raise ValueError(
                f"component threshold must be one of {', '.join(COMPONENT_THRESHOLDS)}, "
                f"got {component_threshold!r}"
            )
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.protocol = protocol
        # SMIYC's percentile-binned pixel curve of the region (its pixel section, its components)
        self.smiyc = SmiycPixelAccumulator() if protocol == "smiyc" else None
        self.threshold = float(threshold)
        self.num_classes = int(num_classes)
        self.region = region
        track = component_track(track, region)
        self.track = track
        self.track_note = track_note
        self.component_threshold = component_threshold
        self.pixel = PixelMetricAccumulator()
        # every labelled pixel; the same counts when the region is every labelled pixel
        self.pixel_whole_frame = self.pixel if region.classes is None else PixelMetricAccumulator()
        self.components = ComponentMetricAccumulator(
            threshold=self.threshold,
            track=track,
            min_pred_size=min_pred_size,
            min_gt_size=min_gt_size,
            inclusive=True,
        )  # streams the `mask` rule; also validates the track and holds the size filters
        self._spill = ScoreSpill(spill_dir) if component_threshold == BEST_F1 else None
        self._component_summary: dict[str, object] | None = None
        self.confusion = ConfusionMatrixAccumulator(self.num_classes)
        self.calibration = CalibrationAccumulator()
        self._score_hist = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self._uncounted: np.ndarray | None = None  # fine bins add_ood may still count
        self._binned: tuple[np.ndarray, np.ndarray | None] | None = None
        self.frames_with_ood_gt = 0
        self.frames_with_semantic_gt = 0

    def _fine_bins(self, score: np.ndarray) -> np.ndarray | None:
        """The frame's fine score bins, computed once for all its histograms (None when the
        scores leave [0, 1]: the accumulators' own path clips or raises as before)."""
        if self._binned is None or self._binned[0] is not score:
            bins = histogram.fine_bins(score) if histogram.usable(score) else None
            self._binned = (score, bins)
        return self._binned[1]

    def add_scores(self, score: np.ndarray) -> None:
        """Count the frame in the all-pixels histogram (with add_ood's histogram when the frame
        has OOD ground truth: one bincount per frame)."""
        self._count_uncounted()
        bins = self._fine_bins(score)
        if bins is None:
            self._score_hist += histogram.clipped(score, HISTOGRAM_BINS)
        else:
            self._uncounted = bins

    def _count_uncounted(self, fine: np.ndarray | None = None) -> None:
        if self._uncounted is not None:
            if fine is None:
                fine = histogram.all_pixels(self._uncounted)
            self._score_hist += histogram.coarse(fine, HISTOGRAM_BINS)
            self._uncounted = None

    @property
    def score_hist(self) -> np.ndarray:
        """All pixels' scores in HISTOGRAM_BINS equal bins."""
        self._count_uncounted()
        return self._score_hist

    def add_ood(
        self, score: np.ndarray, ood: np.ndarray, semantic_gt: np.ndarray | None = None
    ) -> None:
        """Score one frame inside the region; raises ValueError (from pixood_ros.metrics) for
        labels outside 0/1/255, or when the region needs the frame's semantic ground truth and
        it is missing."""
        if self._component_summary is not None:
            raise RuntimeError("frames added after the metrics were summarised")
        labels = self.region.restrict(ood, semantic_gt)
        bins = self._fine_bins(score)
        if bins is not None and score.shape == ood.shape and histogram.valid_labels(ood):
            counts = histogram.labelled(bins, ood, labels)
            if self._uncounted is bins:
                self._count_uncounted(counts[4])
            self.pixel.pos_counts += counts[0]
            self.pixel.neg_counts += counts[1]
            if self.pixel_whole_frame is not self.pixel:
                self.pixel_whole_frame.pos_counts += counts[2]
                self.pixel_whole_frame.neg_counts += counts[3]
        else:
            self.pixel.update(score, labels)
            if self.pixel_whole_frame is not self.pixel:
                self.pixel_whole_frame.update(score, ood)
        if self.smiyc is not None:
            self.smiyc.update(score, labels)
        if self._spill is not None:
            self._spill.append(self._spill_codes(score, bins, labels), labels)
        else:
            self.components.update(score, labels)
        self.frames_with_ood_gt += 1

    def _spill_codes(
        self, score: np.ndarray, bins: np.ndarray | None, labels: np.ndarray
    ) -> np.ndarray:
        """uint16 codes the component threshold compares: the fine bins (exact protocol) or
        SMIYC's stored float16 scores; scores outside [0, 1] only on void pixels (else the
        accumulators raised) count as 0 there."""
        if self.smiyc is None and bins is not None:
            return bins
        if bins is None:
            score = np.where(labels == regions.VOID, 0, score)
        return smiyc_codes(score) if self.smiyc is not None else histogram.fine_bins(score)

    @property
    def spilled_bytes(self) -> int:
        """Bytes of the temporary score file of the best-F1 component pass (0 without it)."""
        return self._spill.bytes_written if self._spill is not None else 0

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()

    def __enter__(self) -> EvalMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def component_summary(self) -> dict[str, object]:
        """Component metrics (computed once, after the last frame) with the threshold rule,
        its value and, for best-f1, the reason when it is undefined."""
        if self._component_summary is not None:
            return self._component_summary
        predicted = "score >= value"
        if self._spill is None:
            values = dict(self.components.compute())
            rule = {"rule": MASK, "value": self.threshold, "note": "the node's mask threshold"}
        else:
            point = smiyc_point(self.smiyc) if self.smiyc else exact_point(self.pixel_curve())
            if point is None:
                values = {}
                rule = {"rule": BEST_F1, "value": None, "note": "undefined: no anomaly pixels"}
            else:
                values = components_at_threshold(
                    self._spill,
                    point,
                    track=self.track,
                    min_pred_size=self.components.min_pred_size,
                    min_gt_size=self.components.min_gt_size,
                )
                rule = {"rule": BEST_F1, "value": point.value, "note": point.note}
                predicted = point.predicted
            self._spill.close()
        rule.update(
            predicted=predicted,
            track=self.track,
            min_pred_size=self.components.min_pred_size,
            min_gt_size=self.components.min_gt_size,
        )
        self._component_summary = {**_clean(values), "component_threshold": rule}
        return self._component_summary

    def add_semantic(
        self, semantic: np.ndarray, confidence: np.ndarray, labels: np.ndarray
    ) -> None:
        """Raises ValueError for class ids outside the model's classes (255 = void is fine)."""
        add_semantic_frame(self.confusion, self.calibration, semantic, labels, confidence)
        self.frames_with_semantic_gt += 1

    def pixel_curve(self, whole_frame: bool = False) -> BinaryCurve | None:
        """The region's curve (or the whole frame's); None before any OOD ground truth."""
        if self.frames_with_ood_gt == 0:
            return None
        pixel = self.pixel_whole_frame if whole_frame else self.pixel
        edges = np.arange(pixel.bins, dtype=np.float64) / pixel.bins
        return curve_from_histograms(pixel.pos_counts, pixel.neg_counts, edges)

    def label_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """(anomaly, in-distribution) pixel counts in HISTOGRAM_BINS equal score bins."""
        group = self.pixel.bins // HISTOGRAM_BINS
        pos = self.pixel.pos_counts[: group * HISTOGRAM_BINS].reshape(HISTOGRAM_BINS, -1).sum(1)
        neg = self.pixel.neg_counts[: group * HISTOGRAM_BINS].reshape(HISTOGRAM_BINS, -1).sum(1)
        pos[-1] += self.pixel.pos_counts[group * HISTOGRAM_BINS :].sum()
        neg[-1] += self.pixel.neg_counts[group * HISTOGRAM_BINS :].sum()
        return pos, neg

    def summary(self, class_names: list[str]) -> dict[str, object]:
        """JSON-ready metrics; a metric that is undefined (e.g. no anomaly pixel) is null with
        the reason under `notes`."""
        out: dict[str, object] = {
            "threshold": self.threshold,
            "region": self.region.as_dict(class_names),
            "notes": [],
        }
        notes: list[str] = out["notes"]  # type: ignore[assignment]
        if self.frames_with_ood_gt:
            for key, whole_frame in (("pixel", False), ("pixel_whole_frame", True)):
                out[key], out[f"{key}_at_threshold"] = self._pixel_summary(whole_frame, notes)
            components = dict(self.component_summary())
            if components["component_threshold"]["value"] is None:  # type: ignore[index]
                notes.append("component metrics undefined: best-F1 needs anomaly pixels")
            out["components"] = {**components, "frames": self.frames_with_ood_gt}
            if self.track_note:
                notes.append(self.track_note)
            if not self.frames_with_semantic_gt:
                notes.append(NO_SEMANTIC_LABELS)
        if self.frames_with_semantic_gt:
            iou = self.confusion.iou()
            semantic: dict[str, object] = {"frames": self.frames_with_semantic_gt}
            if np.all(np.isnan(iou)):
                notes.append("semantic metrics undefined: all semantic labels are void")
            else:
                semantic["miou"] = self.confusion.miou()
                semantic["pixel_accuracy"] = self.confusion.pixel_accuracy()
                semantic["ece"] = self.calibration.compute()
                semantic["per_class_iou"] = {
                    name: _finite_or_none(v)
                    for name, v in zip(class_names, iou.tolist(), strict=True)
                }
            out["semantic"] = semantic
        return out

    def _pixel_summary(self, whole_frame: bool, notes: list[str]) -> tuple[dict, dict]:
        """(pixel metrics, the mask's operating point) of the region or the whole frame."""
        pixel = self.pixel_whole_frame if whole_frame else self.pixel
        where = "pixel (whole frame)" if whole_frame else "pixel"
        if whole_frame and pixel is self.pixel:
            notes = []  # the region is the whole frame: its notes are said once
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                if self.smiyc is not None and not whole_frame:
                    values = self.smiyc.compute()
                    notes.append(f"{where} metrics: {SMIYC_NOTE}")
                else:
                    values = pixel.compute(on_degenerate="nan")
            except DegenerateLabelsError as exc:
                values = {}
                notes.append(f"{where} metrics: {exc}")
        for key, value in values.items():
            if key == "auroc" and self.smiyc is not None and not whole_frame:
                continue  # SMIYC's protocol has none (SMIYC_NOTE)
            if isinstance(value, float) and math.isnan(value):
                notes.append(f"{where} {key} undefined: the labels lack anomaly or normal pixels")
        curve = self.pixel_curve(whole_frame)
        assert curve is not None
        return {**_clean(values), "frames": self.frames_with_ood_gt}, operating_point(
            curve, self.threshold
        )


def operating_point(curve: BinaryCurve, threshold: float) -> dict[str, float | int | None]:
    """TPR (anomaly recall), FPR (share of in-distribution pixels flagged) and precision of the
    mask score >= `threshold`, read off `curve`: its point of the lowest curve threshold still
    >= `threshold` (on a binned curve: bins whose lower edge is, 1/65536 resolution). A rate
    without pixels to count is None."""
    reached = np.flatnonzero(curve.thresholds >= threshold)
    tp = int(curve.tp[reached[-1]]) if reached.size else 0
    fp = int(curve.fp[reached[-1]]) if reached.size else 0
    return {
        "threshold": float(threshold),
        "tpr": tp / curve.n_pos if curve.n_pos else None,
        "fpr": fp / curve.n_neg if curve.n_neg else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "flagged_anomaly_px": tp,
        "flagged_normal_px": fp,
    }


def _finite_or_none(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _clean(values: dict) -> dict:
    """JSON-ready: numpy integers as int, NaN and infinities as None."""
    return {
        k: int(v) if isinstance(v, np.integer) else _finite_or_none(v) for k, v in values.items()
    }
