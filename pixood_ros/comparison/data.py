"""The frames a comparison scores: the splits of a pixood-synth data set, or one public data set
in its published layout (SMIYC RoadAnomaly21 / RoadObstacle21, Fishyscapes Lost & Found),
which is one split named after the layout and has no semantic labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixood_ros.comparison.specs import DEFAULT_SPLITS, BenchmarkError
from pixood_ros.datasets import (
    DatasetError,
    Layout,
    dataset_files,
    dataset_source,
    detect_layout,
)
from pixood_ros.frames import Source, SourceError, synth_source

SYNTH = "pixood-synth"


@dataclass(frozen=True)
class BenchmarkData:
    root: Path
    kind: str  # SYNTH or a layout name
    splits: list[str]
    layout: Layout | None = None

    @property
    def has_semantic(self) -> bool:
        return self.layout is None

    def track(self, requested: str) -> str | None:
        """The data set's own SMIYC track under `--track auto` (None: the region rule)."""
        return self.layout.track if requested == "auto" and self.layout else None

    def source(self, split: str) -> Source:
        try:
            if self.layout is None:
                return synth_source(self.root, split)
            return dataset_source(dataset_files(self.root, self.layout, require_masks=True))
        except SourceError as exc:
            raise BenchmarkError(str(exc)) from exc


def open_data(root: Path, splits: list[str] | None) -> BenchmarkData:
    """The data set at `root`; `splits` None means all of it (synth: the default ood splits)."""
    if (root / "meta.json").is_file():
        return BenchmarkData(root, SYNTH, list(splits or DEFAULT_SPLITS))
    try:
        layout = detect_layout(root) if root.is_dir() else None
    except DatasetError as exc:
        raise BenchmarkError(str(exc)) from exc
    if layout is None:
        raise BenchmarkError(
            f"{root} is neither a pixood-synth data set (no meta.json) nor a data set in a "
            "published layout (SMIYC images/ + labels_masks/, Fishyscapes original/ + labels/)"
        )
    if splits and list(splits) != [layout.name]:
        raise BenchmarkError(f"{root} is {layout.title}: one split, {layout.name}; drop --splits")
    return BenchmarkData(root, layout.name, [layout.name], layout)
