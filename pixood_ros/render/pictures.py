"""Pictures of model outputs for people and for the node: anomaly mask, overlay, heat map,
semantic colours (numpy and OpenCV only).

The overlay follows the official PixOOD `plot.py` (docs/method.md §8): pixels at or above the
threshold become 0.3·image + 0.7·turbo(score), the rest stay the camera image, and the predicted
semantic map sits as a small inset in the top-left corner. `side_by_side` puts camera overlay |
heat map | mask next to each other for videos. All colour images here are RGB uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

INSET_FRACTION = 0.2  # plot.py draws its insets at 1/5 of the image size
IMAGE_WEIGHT = 0.3
COLOUR_WEIGHT = 0.7


def turbo(score: np.ndarray) -> np.ndarray:
    """HxW float in [0, 1] -> HxWx3 RGB uint8 with the turbo colour map (0 blue, 1 red)."""
    levels = np.clip(np.nan_to_num(score, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_TURBO)[..., ::-1]


def colorize_semantic(semantic: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """HxW class ids -> HxWx3 RGB with the model's palette; ids outside it are black."""
    lut = np.zeros((256, 3), np.uint8)
    colours = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
    lut[: len(colours)] = colours
    return lut[semantic.astype(np.uint8)]


def anomaly_mask(
    anomaly_score: np.ndarray, threshold: float, out: np.ndarray | None = None
) -> np.ndarray:
    """0/255 mono8 mask: 255 where the score is at or above `threshold` (NaN gives 0).

    `out` (H, W uint8, C-contiguous) receives the mask when given (the node reuses its buffers).
    """
    # The boolean comparison reinterpreted as 0/1 bytes, scaled in place: two vectorised passes
    # (np.where with two scalars was ~40x slower at 1280x720).
    flags = None if out is None else out.view(np.bool_)
    mask = np.greater_equal(anomaly_score, np.float32(threshold), out=flags).view(np.uint8)
    mask *= np.uint8(255)
    return mask


def overlay_anomalies(
    rgb: np.ndarray,
    score: np.ndarray,
    threshold: float,
    semantic: np.ndarray | None = None,
    palette: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """plot.py-style overlay: anomalous pixels tinted by turbo(score), semantic inset top-left."""
    out = rgb.copy()
    anomalous = score >= threshold
    if anomalous.any():
        tint = turbo(score[anomalous][:, None])[:, 0].astype(np.float32)
        blended = IMAGE_WEIGHT * rgb[anomalous].astype(np.float32) + COLOUR_WEIGHT * tint
        out[anomalous] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    if semantic is not None and palette is not None:
        add_inset(out, colorize_semantic(semantic, palette))
    return out


def add_inset(image: np.ndarray, inset: np.ndarray, fraction: float = INSET_FRACTION) -> None:
    """Paste `inset`, shrunk to `fraction` of the image size (nearest: class colours stay pure),
    into the top-left corner of `image`, with a 1-pixel white frame."""
    height, width = image.shape[:2]
    inset_h, inset_w = max(1, round(height * fraction)), max(1, round(width * fraction))
    small = cv2.resize(inset, (inset_w, inset_h), interpolation=cv2.INTER_NEAREST)
    image[:inset_h, :inset_w] = small
    if inset_h < height and inset_w < width:
        image[inset_h, : inset_w + 1] = 255
        image[: inset_h + 1, inset_w] = 255


def side_by_side(
    rgb: np.ndarray,
    score: np.ndarray,
    semantic: np.ndarray,
    palette: Sequence[Sequence[int]],
    threshold: float,
    max_width: int = 1920,
) -> np.ndarray:
    """camera overlay (+ semantic inset) | turbo heat map | anomaly mask, one RGB frame.

    Panels are scaled down together so the frame is at most `max_width` wide (video encoders and
    screens choke on 3x1920 px), and to even sizes (H.264 with yuv420p needs them).
    """
    panels = [
        overlay_anomalies(rgb, score, threshold, semantic, palette),
        turbo(score),
        cv2.cvtColor(anomaly_mask(score, threshold), cv2.COLOR_GRAY2RGB),
    ]
    frame = np.concatenate(panels, axis=1)
    height, width = frame.shape[:2]
    scale = min(1.0, max_width / width)
    new_w = max(2, int(width * scale) // 2 * 2)
    new_h = max(2, int(height * scale) // 2 * 2)
    if (new_w, new_h) != (width, height):
        frame = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return frame
