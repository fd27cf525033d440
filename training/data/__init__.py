"""Data sets for the three training stages (Cityscapes, generic folders, the synthetic set) and the
on-disk feature cache that stages 2 and 3 read instead of re-running the frozen backbone."""

from .datasets import (
    CityscapesDataset,
    DatasetError,
    FolderDataset,
    SegmentationDataset,
    SynthDataset,
    build_dataset,
)
from .labels import CITYSCAPES_CLASS_NAMES, CITYSCAPES_PALETTE, labelids_to_trainids
from .transforms import network_size

__all__ = [
    "CITYSCAPES_CLASS_NAMES",
    "CITYSCAPES_PALETTE",
    "CityscapesDataset",
    "DatasetError",
    "FolderDataset",
    "SegmentationDataset",
    "SynthDataset",
    "build_dataset",
    "labelids_to_trainids",
    "network_size",
]
