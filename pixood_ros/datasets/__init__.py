"""Public anomaly-segmentation data sets in their published folder layouts (SMIYC
RoadAnomaly21 / RoadObstacle21, Fishyscapes Lost & Found): `layouts` says where the files lie,
`source` reads them as frames with OOD masks."""

from __future__ import annotations

from .layouts import LAYOUTS, DatasetError, Layout, detect_layout, get_layout
from .source import DatasetFiles, dataset_files, dataset_source, resolve_layout

__all__ = [
    "LAYOUTS",
    "DatasetError",
    "DatasetFiles",
    "Layout",
    "dataset_files",
    "dataset_source",
    "detect_layout",
    "get_layout",
    "resolve_layout",
]
