"""Procedural road-scene data set (pixood-synth): images, Cityscapes train-id labels, OOD masks.

No real data set can be downloaded where this project is developed, so this generator is our own
data set for tests, the demo model, the sample bag and the benchmarks.
"""

from __future__ import annotations

from .classes import CLASS_NAMES, PALETTE, VOID, colorize_labels
from .dataset import SynthError, frame_rng, write_dataset
from .scene import ANOMALY_SPLITS, SPLITS, Scene, render_scene

__all__ = [
    "ANOMALY_SPLITS",
    "CLASS_NAMES",
    "PALETTE",
    "SPLITS",
    "VOID",
    "Scene",
    "SynthError",
    "colorize_labels",
    "frame_rng",
    "render_scene",
    "write_dataset",
]
