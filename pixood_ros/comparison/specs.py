"""What a quality comparison is given: the models, the frames, the options that decide what is
scored, and the error a user mistake raises.

A module of its own so that the command (`run`), the reproduction chain (`reproduce`) and the
scoring (`evaluate`) share these names without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixood_ros.anomaly_modes import ANOMALY_MODES, EVAL_LABELS
from pixood_ros.cli import UserError

DEFAULT_SPLITS = ("ood_val", "ood_small", "ood_roadlike", "ood_shift")


class BenchmarkError(UserError):
    """A user mistake (missing file, bad option, unknown split): one line, exit code 2."""


@dataclass
class ModelSpec:
    """One row: a model file and the anomaly map it is scored on (`eval_labels`: the raw
    `anomaly_score`; `unknown`: `unknown_score`, e.g. the classic all-class MSP of an msp model)."""

    name: str
    path: Path
    mode: str = EVAL_LABELS


def parse_model_spec(text: str) -> ModelSpec:
    """`[NAME=]PATH[@MODE]` (without NAME: named after the scorer in its metadata later)."""
    body, at, mode = text.rpartition("@")
    if not (at and mode in ANOMALY_MODES):
        body, mode = text, EVAL_LABELS
    name, sep, path = body.partition("=")
    if sep and name and path:
        return ModelSpec(name, Path(path), mode)
    return ModelSpec("", Path(body), mode)


@dataclass(frozen=True)
class ScoringOptions:
    """How the models are run and scored; field names are the command's option names."""

    providers: list[str] | None = None
    eval_region: str = "auto"
    track: str = "auto"
    min_pred_size: int | None = None
    min_gt_size: int | None = None
    max_frames: int | None = None
    progress: bool = True
    protocol: str = "exact"


@dataclass
class Comparison:
    """The models to compare on which splits of which data set (`splits` None: all of it);
    `chain` is the list of commands that made them when `--reproduce` did and `legend` what
    its row names mean (both shown under the tables)."""

    models: list[ModelSpec]
    data: Path
    splits: list[str] | None
    chain: list[str] | None = None
    legend: list[str] | None = None
