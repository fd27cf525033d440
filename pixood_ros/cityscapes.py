"""The Cityscapes train-id label space: the one list of class names and colours in the project.

The synthetic data set, the training pipeline (which writes them into every exported model's
metadata), the test fixtures and the documentation all use these, so they can never drift apart.
"""

from __future__ import annotations

IGNORE_INDEX = 255
"""Label of pixels that belong to no class (void); ignored by training and metrics."""

CLASS_NAMES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
"""RGB colour of each class, in train-id order (the official Cityscapes colours)."""
