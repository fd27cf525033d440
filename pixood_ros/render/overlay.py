"""The one anomaly colour scale and the one overlay: what `~/overlay`, pixood-infer, pixood-bag-eval
and the demo show.

The scale is turbo in 256 levels split at the threshold: scores below it take the lower half
(dark blue to cyan, only in heat maps and the colour bar), scores at or above it the upper half
(green at the threshold, yellow, red at 1), so the colours of flagged pixels always span the
whole upper half whatever the threshold. The overlay leaves every pixel below the threshold (and
NaN) exactly as the camera saw it and blends flagged pixels with their colour at `alpha`: even at
alpha 1 nothing but the flagged pixels changes, and moving the threshold changes what is seen.

`render_overlay` runs once per frame in the node's worker thread (see `outputs.OutputImages`), so
it is written for speed: the camera image is copied by OpenCV, only the rows that hold a flagged
pixel are touched, and each colour plane of those is one table look-up (`_blend_tables`: the plain
formula's value for every level and camera byte, computed once per alpha; read through
`pixood_ros.lookup.lookup_uint16`, OpenCV's where it can), working in reusable scratch planes
(`overlay_scratch`) because on a VM every fresh multi-megabyte array costs thousands of page
faults (1280x720 on a 2-core VM: 0.2 ms when nothing is flagged, about 7 ms when every row holds
a flagged pixel, before the OpenCV look-up). The pixels are exactly those of the plain formula
(`rint((1 - a) * camera + a * colour)` in float32, colour = `SCALE_RGB[flagged_levels(score)]`);
a unit test checks this.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from pixood_ros.lookup import lookup_uint16
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

OVERLAY_ALPHA = 0.6  # the node's default overlay_alpha; videos and figures use it too
HALF = 128  # levels per half of the scale: [0, 128) below the threshold, [128, 256) flagged
_TURBO_BGR = cv2.applyColorMap(np.arange(256, dtype=np.uint8), cv2.COLORMAP_TURBO).reshape(256, 3)
SCALE_RGB = np.ascontiguousarray(_TURBO_BGR[:, ::-1])
_SCALE_BGR_F32 = _TURBO_BGR.astype(np.float32)


def flagged_levels(score: np.ndarray, threshold: float) -> np.ndarray:
    """Levels (int64, 128..255) of scores at or above `threshold`: linear from the threshold
    (128) to 1 (255)."""
    t = np.float32(threshold)
    if t >= np.float32(1.0):
        return np.full(score.shape, 2 * HALF - 1, np.int64)
    step = np.float32(HALF) / (np.float32(1.0) - t)
    fraction = np.subtract(score, t, dtype=np.float32) * step
    return HALF + np.clip(fraction, 0, HALF - 1).astype(np.int64)


def score_levels(score: np.ndarray, threshold: float) -> np.ndarray:
    """Levels (int64, 0..255) of any scores: below the threshold linear from 0 (0) to it (127),
    at or above it `flagged_levels`; NaN gives 0."""
    score = np.nan_to_num(np.asarray(score, np.float32), nan=0.0)
    t = np.float32(threshold)
    flagged = score >= t
    levels = np.zeros(score.shape, np.int64)
    levels[flagged] = flagged_levels(score[flagged], threshold)
    if t > 0:
        below = np.clip(score[~flagged] * (np.float32(HALF) / t), 0, HALF - 1)
        levels[~flagged] = below.astype(np.int64)
    return levels


def score_colours(score: np.ndarray, threshold: float) -> np.ndarray:
    """HxW scores -> HxWx3 RGB uint8 on the anomaly scale (the heat map; NaN is black)."""
    colours = SCALE_RGB[score_levels(score, threshold)]
    colours[np.isnan(score)] = 0
    return colours


OverlayScratch = tuple[np.ndarray, np.ndarray, np.ndarray]


def overlay_scratch(height: int, width: int) -> OverlayScratch:
    """Work planes of `render_overlay` for one frame size: flags, levels, table indices."""
    return (
        np.empty((height, width), np.bool_),
        np.empty((height, width), np.float32),
        np.empty((height, width), np.uint16),
    )


@functools.lru_cache(maxsize=8)
def _blend_tables(alpha: float) -> np.ndarray:
    """(3, 256 * 256) uint8, per BGR plane indexed by row * 256 + camera byte: rows below 128
    give the camera byte, row 128 + k the plain formula's blend with level 128 + k."""
    a = np.float32(alpha)
    camera = np.arange(256, dtype=np.float32)
    tables = np.empty((3, 256, 256), np.uint8)
    tables[:, :HALF] = np.arange(256, dtype=np.uint8)
    blended = camera * (np.float32(1.0) - a) + _SCALE_BGR_F32[HALF:, :, None] * a
    tables[:, HALF:] = np.rint(blended).transpose(1, 0, 2)
    return tables.reshape(3, -1)


def render_overlay(
    rgb: np.ndarray,
    anomaly_score: np.ndarray,
    alpha: float,
    threshold: float = DEFAULT_ANOMALY_THRESHOLD,
    *,
    out: np.ndarray | None = None,
    scratch: OverlayScratch | None = None,
) -> np.ndarray:
    """BGR camera image with the pixels scored at or above `threshold` coloured by their score.

    `out` (H, W, 3 uint8) receives the result; `scratch` comes from `overlay_scratch`. Both are
    allocated when not given (pass them to render a stream without frame-sized allocations).
    """
    height, width = anomaly_score.shape
    if out is None:
        out = np.empty((height, width, 3), np.uint8)
    flags, levels, index = scratch if scratch is not None else overlay_scratch(height, width)
    _copy_bgr(rgb, out)
    t = np.float32(threshold)
    np.greater_equal(anomaly_score, t, out=flags)  # NaN: False
    rows = np.flatnonzero(flags.any(axis=1))
    if rows.size == 0:
        return out
    band = slice(int(rows[0]), int(rows[-1]) + 1)
    flags, levels, index = flags[band], levels[band], index[band]
    if t >= np.float32(1.0):
        levels.fill(HALF - 1)
    else:  # flagged_levels - HALF, NaN (never flagged) to 0
        np.subtract(anomaly_score[band], t, out=levels)
        np.multiply(levels, np.float32(HALF) / (np.float32(1.0) - t), out=levels)
        np.fmin(np.fmax(levels, np.float32(0.0), out=levels), np.float32(HALF - 1), out=levels)
    np.copyto(index, levels, casting="unsafe")
    np.add(index, flags.view(np.uint8) * np.uint16(HALF), out=index)
    np.left_shift(index, np.uint16(8), out=index)  # table row
    camera_rows = out[band]
    tables = _blend_tables(float(alpha))
    for plane in range(3):
        channel = camera_rows[:, :, plane]
        np.copyto(channel, lookup_uint16(tables[plane], np.add(index, channel, dtype=np.uint16)))
    return out


class OverlayRenderer:
    """`render_overlay` into a picture and work planes kept while the frame size stays, for a
    stream of frames (a fresh 1080p set costs ~10 ms of page faults a frame). The picture it
    returns is overwritten by the next call."""

    def __init__(self) -> None:
        self._buffers: tuple[np.ndarray, OverlayScratch] | None = None

    def __call__(
        self, rgb: np.ndarray, anomaly_score: np.ndarray, alpha: float, threshold: float
    ) -> np.ndarray:
        shape = anomaly_score.shape
        if self._buffers is None or self._buffers[0].shape[:2] != shape:
            self._buffers = (np.empty((*shape, 3), np.uint8), overlay_scratch(*shape))
        picture, scratch = self._buffers
        return render_overlay(rgb, anomaly_score, alpha, threshold, out=picture, scratch=scratch)


def _copy_bgr(rgb: np.ndarray, out: np.ndarray) -> None:
    """out = rgb with the channels reversed (OpenCV's copy is several times numpy's)."""
    if rgb.flags.c_contiguous and out.flags.c_contiguous:
        done = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=out)
        if done is out:
            return
    np.copyto(out, rgb[:, :, ::-1])
