"""What "anomalous" means for a pixel, chosen at run time: the one implementation of the anomaly
modes that the node, pixood-infer, pixood-bag-eval, the demo and the BRAVO tools share.

A model's raw `anomaly_score` is 1 - max over its *eval labels* of the calibrated class scores.
The shipped models' eval labels are road + sidewalk (the SMIYC obstacle-track convention), so that
score flags everything that is not road (sky, trees, cars): right for evaluation on ground-truth
road, useless as a whole-frame mask on a robot. The modes (`anomaly_map`):

- `unknown`: 1 - max over ALL classes (the model output `unknown_score`): a pixel no known class
  explains (the published anomaly-track setting). A car is known, so it is not flagged.
- `surface`: the raw eval-label score, kept only on the drivable surface as the model itself
  predicts it: per image row, everything between the leftmost and rightmost pixel predicted as an
  eval-label class (so an object standing on the road is kept); 0 everywhere else (sky, trees).
- `unknown_on_surface`: `unknown` kept on that surface only: unknown objects on the road
  (what a vehicle has to stop for).
- `eval_labels`: the raw score, unchanged (what the model file outputs, the SMIYC obstacle-track
  view; meaningful only where ground truth says "road"). The comparison and metrics score this.

The mask of every tool is `anomaly_map(...) >= threshold`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pixood_ros.cli import UserError
from pixood_ros.contract import UNKNOWN_SCORE_OUTPUT
from pixood_ros.lookup import lookup_uint8
from pixood_ros.tables import fmt

UNKNOWN = "unknown"
SURFACE = "surface"
UNKNOWN_ON_SURFACE = "unknown_on_surface"
EVAL_LABELS = "eval_labels"
ANOMALY_MODES = (UNKNOWN, SURFACE, UNKNOWN_ON_SURFACE, EVAL_LABELS)
DEFAULT_ANOMALY_MODE = SURFACE
NEEDS_UNKNOWN_SCORE = (UNKNOWN, UNKNOWN_ON_SURFACE)

MODE_HELP = (
    f"what counts as anomalous: '{UNKNOWN}' = no known class explains the pixel; "
    f"'{SURFACE}' = the model's eval-label anomaly, only on the drivable surface it predicts "
    f"(0 elsewhere); '{UNKNOWN_ON_SURFACE}' = unknown objects on that surface; "
    f"'{EVAL_LABELS}' = the raw eval-label score (SMIYC obstacle track, for evaluation on "
    f"ground-truth road). Default {DEFAULT_ANOMALY_MODE}"
)


def anomaly_mode_parent() -> argparse.ArgumentParser:
    """The `--anomaly-mode` option of every command that makes masks (argparse parent)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--anomaly-mode", choices=ANOMALY_MODES, default=DEFAULT_ANOMALY_MODE, help=MODE_HELP
    )
    return parser


class AnomalyModeError(UserError, ValueError):
    """An unknown mode name, or a mode the model file cannot serve; the message is one line."""


def supported_modes(has_unknown_score: bool) -> tuple[str, ...]:
    """The modes a model file serves: all of them when it has the `unknown_score` output."""
    if has_unknown_score:
        return ANOMALY_MODES
    return tuple(mode for mode in ANOMALY_MODES if mode not in NEEDS_UNKNOWN_SCORE)


def check_mode(mode: str, supported: Sequence[str] = ANOMALY_MODES, model: str = "") -> str:
    """`mode` if it is a mode and `supported` has it; else AnomalyModeError naming the fix."""
    if mode not in ANOMALY_MODES:
        raise AnomalyModeError(f"anomaly mode {mode!r} is not one of {', '.join(ANOMALY_MODES)}")
    if mode not in supported:
        where = f"{model} " if model else "the model file "
        raise AnomalyModeError(
            f"anomaly mode {mode!r} needs the model output '{UNKNOWN_SCORE_OUTPUT}', which "
            f"{where}lacks: re-export it with pixood-export (or use anomaly mode "
            f"{' or '.join(m for m in supported if m in ANOMALY_MODES)})"
        )
    return mode


def drivable_span(semantic: np.ndarray, eval_labels: Iterable[int]) -> np.ndarray:
    """bool HxW: per row, the pixels from the leftmost to the rightmost one whose predicted class
    is an eval label. Row spans keep objects standing on the road even where they touch the
    road's edge (filling enclosed holes would lose them) and never reach above the horizon."""
    lookup = np.zeros(256, bool)
    lookup[list(eval_labels)] = True
    drivable = lookup_uint8(lookup, semantic) if semantic.dtype == np.uint8 else lookup[semantic]
    width = drivable.shape[1]
    has_any = drivable.any(axis=1)
    left = np.argmax(drivable, axis=1)
    right = width - 1 - np.argmax(drivable[:, ::-1], axis=1)
    small = np.int16 if width <= np.iinfo(np.int16).max else np.int64  # 3x faster compares
    columns = np.arange(width, dtype=small)
    span = np.greater_equal(columns, left.astype(small)[:, None])
    span &= np.less_equal(columns, right.astype(small)[:, None])
    span &= has_any[:, None]
    return span


def anomaly_map(
    result: Any, mode: str, eval_labels: Iterable[int], out: np.ndarray | None = None
) -> np.ndarray:
    """float32 HxW in [0, 1]: the anomaly score of `mode` for one `SegmentationResult`.

    `out` (float32 HxW) receives it when given (the node writes into its published message); it
    may not be one of `result`'s own arrays unless the mode is `eval_labels`."""
    check_mode(mode)
    if mode in NEEDS_UNKNOWN_SCORE:
        score = getattr(result, UNKNOWN_SCORE_OUTPUT, None)
        if score is None:
            check_mode(mode, supported_modes(False))
    else:
        score = result.anomaly_score
    if out is None:
        out = np.empty(score.shape, np.float32)
    if mode in (SURFACE, UNKNOWN_ON_SURFACE):
        np.multiply(score, drivable_span(result.semantic, eval_labels), out=out)
    elif out is not score:
        np.copyto(out, score)
    return out


class WholeFrameFigures:
    """Per mode, over whole frames (no ground-truth region): the share of in-distribution pixels
    flagged (OOD mask 0) and the anomaly recall (OOD mask 1) at `threshold`; 255 = void. What a
    robot without ground truth gets from its mask, so modes can be compared honestly."""

    def __init__(self, modes: Sequence[str], eval_labels: Iterable[int], threshold: float) -> None:
        self.modes = tuple(modes)
        self.eval_labels = tuple(eval_labels)
        self.threshold = np.float32(threshold)
        self.counts = {mode: np.zeros(4, np.int64) for mode in self.modes}

    def add(self, result: Any, ood: np.ndarray) -> None:
        """Count one frame; `ood` is its OOD mask at the result's size."""
        inlier, anomaly = ood == 0, ood == 1
        for mode in self.modes:
            flagged = anomaly_map(result, mode, self.eval_labels) >= self.threshold
            self.counts[mode] += (
                np.count_nonzero(flagged & inlier),
                np.count_nonzero(inlier),
                np.count_nonzero(flagged & anomaly),
                np.count_nonzero(anomaly),
            )

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """{mode: {in_distribution_flagged, anomaly_recall (fractions; None without such
        pixels), in_distribution_pixels, anomaly_pixels}}."""
        return {
            mode: {
                "in_distribution_flagged": float(flag_id / n_id) if n_id else None,
                "anomaly_recall": float(flag_ood / n_ood) if n_ood else None,
                "in_distribution_pixels": int(n_id),
                "anomaly_pixels": int(n_ood),
            }
            for mode, (flag_id, n_id, flag_ood, n_ood) in self.counts.items()
        }


def describe_figures(summary: dict[str, dict[str, float | int | None]]) -> list[str]:
    """`WholeFrameFigures.summary()` as one terminal line per mode."""

    def percent(value: float | int | None) -> str:
        return fmt(None if value is None else 100 * value, 2) + " %"

    return [
        f"{mode}: {percent(row['in_distribution_flagged'])} of in-distribution pixels flagged, "
        f"anomaly recall {percent(row['anomaly_recall'])} (whole frames)"
        for mode, row in summary.items()
    ]
