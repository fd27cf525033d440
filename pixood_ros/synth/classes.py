"""Cityscapes train-id classes: the label space of the synthetic data set.

We emit Cityscapes train ids so that every consumer (training, metrics, the ONNX model metadata)
can treat synthetic and real Cityscapes-style data identically.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from pixood_ros.cityscapes import CLASS_NAMES, PALETTE
from pixood_ros.cityscapes import IGNORE_INDEX as VOID
from pixood_ros.render.pictures import colorize_semantic

__all__ = ["CLASS_NAMES", "PALETTE", "VOID", "Cls", "colorize_labels"]


class Cls(IntEnum):
    """Train ids by name, so scene code reads `Cls.CAR` rather than a magic 13."""

    ROAD = 0
    SIDEWALK = 1
    BUILDING = 2
    WALL = 3
    FENCE = 4
    POLE = 5
    TRAFFIC_LIGHT = 6
    TRAFFIC_SIGN = 7
    VEGETATION = 8
    TERRAIN = 9
    SKY = 10
    PERSON = 11
    RIDER = 12
    CAR = 13
    TRUCK = 14
    BUS = 15
    TRAIN = 16
    MOTORCYCLE = 17
    BICYCLE = 18


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """Map an HxW train-id image to Cityscapes colours (void black), for previews."""
    return colorize_semantic(labels, PALETTE)
