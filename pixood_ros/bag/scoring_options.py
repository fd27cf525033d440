"""What an anomaly evaluation scores, as one value object (`ScoringOptions`) with one set of
options and help texts (`add_scoring_arguments`) in pixood-bag-eval, the demo and
pixood-benchmark."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pixood_ros.cli import count, options_from
from pixood_ros.metrics import region as regions
from pixood_ros.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from pixood_ros.metrics.region import ScoredRegion

BEST_F1 = "best-f1"
MASK = "mask"
COMPONENT_THRESHOLDS = (BEST_F1, MASK)
TRACKS = ("auto", "anomaly", "obstacle")


def component_track(track: str, region: ScoredRegion) -> str:
    """SMIYC size filters: `auto` = obstacle (50 / 10 px) when only the eval-label region is
    scored (the obstacle-track protocol), else anomaly (500 / 100 px)."""
    if track not in TRACKS:
        raise ValueError(f"unknown track {track!r}; choose one of {', '.join(TRACKS)}")
    if track == "auto":
        return "obstacle" if region.classes is not None else "anomaly"
    return track


@dataclass(frozen=True)
class ScoringOptions:
    """What an anomaly evaluation scores: the region, the component size filters and the
    component operating point."""

    eval_region: str = regions.AUTO
    track: str = "auto"
    min_pred_size: int | None = None
    min_gt_size: int | None = None
    component_threshold: str = BEST_F1
    protocol: str = DEFAULT_PROTOCOL

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ScoringOptions:
        """The options `add_scoring_arguments` added (defaults for those it left out)."""
        return options_from(cls, args)

    def argv(self) -> list[str]:
        """The same options as a command line (for a tool that runs another one's main)."""
        args = [
            "--eval-region",
            self.eval_region,
            "--component-threshold",
            self.component_threshold,
        ]
        if self.protocol != DEFAULT_PROTOCOL:
            args += ["--protocol", self.protocol]
        if self.track != "auto":
            args += ["--track", self.track]
        if self.min_pred_size is not None:
            args += ["--min-pred-size", str(self.min_pred_size)]
        if self.min_gt_size is not None:
            args += ["--min-gt-size", str(self.min_gt_size)]
        return args


def add_scoring_arguments(
    parser: argparse.ArgumentParser,
    track_option: bool = True,
    component_option: bool = False,
    protocol_option: bool = False,
) -> None:
    """The options that decide what an anomaly evaluation scores, with one meaning and help text
    in pixood-bag-eval, pixood-benchmark and the demo: --eval-region, --track (optional: the
    demo always uses auto), --min-pred-size, --min-gt-size and (optional: the benchmark always
    uses best-f1) --component-threshold and (optional: pixood-benchmark has its own) --protocol."""
    parser.add_argument(
        "--eval-region",
        type=regions.spelling,
        choices=regions.REGIONS,
        default=regions.AUTO,
        help="pixels the anomaly metrics score: all = every labelled pixel; eval-labels = only "
        "pixels whose semantic ground truth is one of the model's eval labels (e.g. road + "
        "sidewalk) plus the anomalies, SMIYC's obstacle-track ROI; auto = eval-labels when "
        "semantic ground truth is available and the model's eval labels are a subset of its "
        "classes, else all (default: auto; reports say which and why)",
    )
    if track_option:
        parser.add_argument(
            "--track",
            choices=TRACKS,
            default="auto",
            help="SMIYC component size filters: anomaly 500/100 px, obstacle 50/10 px; auto = "
            "obstacle when only the eval-label region is scored, else anomaly (default: auto)",
        )
    parser.add_argument(
        "--min-pred-size",
        type=count,
        help="override: smallest predicted anomaly component counted, px (default: the track's)",
    )
    parser.add_argument(
        "--min-gt-size",
        type=count,
        help="override: ground-truth components smaller than this become void, px (default: the "
        "track's)",
    )
    if component_option:
        parser.add_argument(
            "--component-threshold",
            choices=COMPONENT_THRESHOLDS,
            default=BEST_F1,
            help="threshold of the component metrics (sIoU/PPV/F1): best-f1 = the data set's "
            "best-F1 pixel threshold (at 1/65536) as SMIYC does, found after the last frame "
            "with a second pass over a compact temporary score file in the output folder "
            "(~0.1 byte per pixel, removed at the end); mask = --threshold, the node's mask "
            "(default: best-f1)",
        )
    if protocol_option:
        parser.add_argument(
            "--protocol",
            choices=PROTOCOLS,
            default=DEFAULT_PROTOCOL,
            help="exact (default): pixel metrics of the 65536-bin histogram, components at its "
            "best-F1 edge with score >= t; smiyc: the SMIYC toolkit's pixel protocol (float16 "
            "storage, per-frame percentile bins, trapezoid AP, no AUROC) and components at its "
            "binned best-F1 threshold with score > t (docs/evaluation.md §3.7); the whole-frame "
            "figures and the mask's operating point stay exact",
        )
