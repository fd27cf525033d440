"""The options of `pixood-bag-eval` as value objects, one per concern, built from the command
line with `pixood_ros.cli.options_from`: each part of the tool takes only the object it needs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE
from pixood_ros.bag.output_bag import DEFAULT_NAMESPACE, DEFAULT_OVERLAY_ALPHA
from pixood_ros.bag.scoring_options import ScoringOptions
from pixood_ros.cli import options_from
from pixood_ros.contract import NODE_NAMESPACE
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD


@dataclass(frozen=True)
class GroundTruthOptions:
    """Where the ground truth comes from and how it is paired with the frames."""

    gt_topic: str | None = None
    semantic_gt_topic: str | None = None
    gt_dir: Path | None = None
    use_gt: bool = True
    tolerance_ns: int = 0


@dataclass(frozen=True)
class OutputOptions:
    """What the offline replay writes besides the report."""

    video: bool = False
    output_bag: bool = True
    output_storage: str = "mcap"
    raw_outputs: bool = False
    output_ns: str = DEFAULT_NAMESPACE
    overlay_alpha: float = DEFAULT_OVERLAY_ALPHA


@dataclass(frozen=True)
class LiveOptions:
    """How the bag is replayed into the running node (`--live`)."""

    node_ns: str = NODE_NAMESPACE
    rate: float = 1.0
    record: bool = False
    timeout: float = 5.0


@dataclass(frozen=True)
class EvalOptions:
    """One evaluation: the model and bag, the image topic, the anomaly mode (offline: what the
    engine's results are turned into, as the node does; live: the node's own parameter decides),
    the mask threshold and where results go, with the ground-truth, output and scoring options
    as parts of their own."""

    model: Path
    bag: Path
    out_dir: Path
    topic: str | None = None
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
    anomaly_mode: str = DEFAULT_ANOMALY_MODE
    max_frames: int | None = None
    providers: list[str] | None = None
    threads: int = 0  # ONNX Runtime CPU threads, 0 = sized for the machine (offline)
    overwrite: bool = False
    progress: bool = True
    gt: GroundTruthOptions = field(default_factory=GroundTruthOptions)
    outputs: OutputOptions = field(default_factory=OutputOptions)
    scoring: ScoringOptions = field(default_factory=ScoringOptions)


def eval_options(args: argparse.Namespace) -> EvalOptions:
    """The options of a parsed `pixood-bag-eval` command line."""
    gt = options_from(
        GroundTruthOptions,
        args,
        use_gt=not args.no_gt,
        tolerance_ns=round(args.stamp_tolerance * 1e9),
    )
    return options_from(
        EvalOptions,
        args,
        progress=not args.no_progress,
        gt=gt,
        outputs=options_from(OutputOptions, args),
        scoring=ScoringOptions.from_args(args),
    )


def live_options(args: argparse.Namespace) -> LiveOptions:
    return options_from(LiveOptions, args)
