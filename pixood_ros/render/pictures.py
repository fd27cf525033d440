"""Pictures of model outputs for people and for the node: anomaly mask, overlay, heat map,
semantic colours and the side-by-side video frame (numpy and OpenCV only).

One visual language everywhere (`pixood_ros.render.overlay`): the camera image stays as it is
below the threshold, flagged pixels are coloured by score on the upper half of turbo, and heat
maps use the same scale below and above the threshold. The camera panel of a video frame is the
node's `~/overlay` plus the predicted semantic map as a small top-left inset (as the official
PixOOD `plot.py` places it, docs/method.md §8); under the panels a key band gives the colour bar
and the class legend. All colour images here are RGB uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pixood_ros.render.legend import TextStyle, draw_title, key_band
from pixood_ros.render.overlay import OVERLAY_ALPHA, render_overlay, score_colours

INSET_FRACTION = 0.2  # plot.py draws its insets at 1/5 of the image size
MIN_FRAME_HEIGHT = 240  # small frames are enlarged so titles and the key stay readable
GROUND_TRUTH_RGB = (0, 255, 0)


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
    alpha: float = OVERLAY_ALPHA,
) -> np.ndarray:
    """The node's `~/overlay` in RGB, with the semantic map as a top-left inset when given."""
    out = np.ascontiguousarray(render_overlay(rgb, score, alpha, threshold)[:, :, ::-1])
    if semantic is not None and palette is not None:
        add_inset(out, colorize_semantic(semantic, palette))
    return out


def outline_anomalies(image: np.ndarray, ood_gt: np.ndarray, thickness: int) -> None:
    """Draw the outline of the ground-truth anomalies (`ood_gt` == 1) in green on `image`."""
    contours, _ = cv2.findContours(
        (ood_gt == 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(image, contours, -1, GROUND_TRUTH_RGB, thickness)


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
    *,
    class_names: Sequence[str] | None = None,
    alpha: float = OVERLAY_ALPHA,
    ood_gt: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
) -> np.ndarray:
    """One RGB video frame: camera overlay (+ semantic inset) | heat map | mask, titled, with
    the key band (colour bar; class legend when `class_names` are given) underneath and, with
    `ood_gt`, the ground-truth anomaly outline on the mask. `overlay` is the node's BGR overlay
    of this frame when the caller has rendered it already (else it is rendered here).

    Panels are scaled together to at most `max_width` (video encoders and screens choke on
    3x1920 px), small ones enlarged towards MIN_FRAME_HEIGHT, and the frame has even sizes
    (H.264 with yuv420p needs them).
    """
    height, width = score.shape
    mask = cv2.cvtColor(anomaly_mask(score, threshold), cv2.COLOR_GRAY2RGB)
    scale = _panel_scale(height, 3 * width, max_width)
    if ood_gt is not None and np.any(ood_gt == 1):
        outline_anomalies(mask, ood_gt, max(1, round(2 / scale)))
    if overlay is None:
        camera = overlay_anomalies(rgb, score, threshold, semantic, palette, alpha)
    else:
        camera = np.ascontiguousarray(overlay[:, :, ::-1])
        add_inset(camera, colorize_semantic(semantic, palette))
    panels = [
        camera,
        score_colours(score, threshold),
        mask,
    ]
    mask_title = "mask" if ood_gt is None else "mask (green: ground truth)"
    titles = ("camera + anomalies", "anomaly score", mask_title)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA
    style = TextStyle.for_height(new_h)
    sized = []
    for panel, title in zip(panels, titles, strict=True):
        if (new_w, new_h) != (width, height):
            panel = cv2.resize(panel, (new_w, new_h), interpolation=interpolation)
        draw_title(panel, title, style)
        sized.append(panel)
    frame = np.concatenate(
        [np.concatenate(sized, axis=1), key_band(3 * new_w, style, threshold, class_names, palette)]
    )
    return _even(frame)


def _panel_scale(height: int, width: int, max_width: int) -> float:
    """Shrink to `max_width`; enlarge small frames by a whole factor while it fits."""
    if width > max_width:
        return max_width / width
    factor = min(-(-MIN_FRAME_HEIGHT // height), max_width // width)
    return float(max(1, factor))


def _even(frame: np.ndarray) -> np.ndarray:
    """Cut a last odd row or column."""
    height, width = frame.shape[:2]
    return frame[: max(2, height // 2 * 2), : max(2, width // 2 * 2)]
