"""Tiny folders in the published layouts of SMIYC RoadAnomaly21 / RoadObstacle21 and
Fishyscapes Lost & Found (docs/evaluation.md §3.5), for end-to-end tests of the readers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pixood_ros.datasets import LAYOUTS

# lossless writes, so a test can compare the pixels read back
WRITE_FLAGS = {".webp": [cv2.IMWRITE_WEBP_QUALITY, 101], ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 100]}


def frame_and_mask(index: int, shape: tuple[int, int] = (42, 56)) -> tuple[np.ndarray, np.ndarray]:
    """A frame whose red channel is high on a square anomaly, and its mask (0 / 1 / 255)."""
    h, w = shape
    rng = np.random.default_rng(index)
    rgb = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    top, left = 6 + 2 * index, 10 + 3 * index
    mask[top : top + 12, left : left + 14] = 1
    rgb[mask == 1, 0] = 230
    mask[:3] = 255  # void band (e.g. the ego vehicle)
    return rgb, mask


def write_layout(
    root: Path, name: str, labelled: int = 3, unlabelled: int = 0, published_folder: bool = True
) -> tuple[Path, list[np.ndarray]]:
    """Write `labelled` frames with masks and `unlabelled` without into `root` in the layout
    `name`; returns the folder to pass to the tools (the published data set folder when
    `published_folder`) and the masks in frame order."""
    layout = LAYOUTS[name]
    base = root / layout.folder_names[0] if published_folder else root
    (base / layout.image_dir).mkdir(parents=True)
    (base / layout.mask_dir).mkdir(parents=True)
    masks = []
    for index in range(labelled + unlabelled):
        stem = f"validation_{index:04d}" if index < labelled else f"test_{index:04d}"
        rgb, mask = frame_and_mask(index)
        image = base / layout.image_dir / f"{stem}{layout.image_suffix}"
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(image), bgr, WRITE_FLAGS.get(layout.image_suffix, []))
        if index < labelled:
            cv2.imwrite(str(base / layout.mask_dir / f"{stem}{layout.mask_suffix}"), mask)
            masks.append(mask)
    return (base if published_folder else root), masks
