"""What a quality comparison is given: the models, the frames, the options that decide what is
scored, and the error a user mistake raises.

A module of its own so that the command (`run`), the reproduction chain (`reproduce`) and the
scoring (`evaluate`) share these names without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixood_ros.cli import UserError

DEFAULT_SPLITS = ("ood_val", "ood_small", "ood_roadlike", "ood_shift")


class BenchmarkError(UserError):
    """A user mistake (missing file, bad option, unknown split): one line, exit code 2."""


@dataclass
class ModelSpec:
    name: str
    path: Path


def parse_model_spec(text: str) -> ModelSpec:
    """`NAME=PATH` or `PATH` (named after the scorer in its metadata later)."""
    name, sep, path = text.partition("=")
    if sep and name and path:
        return ModelSpec(name, Path(path))
    return ModelSpec("", Path(text))


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


@dataclass
class Comparison:
    """The models to compare on which splits of which data set; `chain` is the list of commands
    that made them when `--reproduce` did (shown under the tables)."""

    models: list[ModelSpec]
    data: Path
    splits: list[str]
    chain: list[str] | None = None
