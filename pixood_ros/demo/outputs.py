"""The demo's video of what the node really published: its recorded outputs, paired by header
stamp with the camera frames and ground truth of the bag that was replayed into it
(`pixood_ros.bag.recording`, the same pairing that scored them), drawn three panels a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pixood_ros import image_conversion
from pixood_ros.bag.recording import recorded_frames
from pixood_ros.engine.metadata import ModelInfo
from pixood_ros.metrics import region as regions
from pixood_ros.render import pictures as visualize
from pixood_ros.render.video import VideoWriter

PANEL_TITLES = ("camera + anomalies", "anomaly score", "mask (green: ground truth)")
NOT_SCORED_GREY = 72  # grey level added to darkened pixels outside the scored region
GT_COLOUR_RGB = (0, 255, 0)
MIN_VIDEO_HEIGHT = 240  # small frames are enlarged so titles and masks stay readable


@dataclass
class RecordedVideo:
    """The video written and what the pass over the recording counted."""

    frames_in_bag: int = 0
    frames_answered: int = 0
    missing_output_stamps: list[int] = field(default_factory=list)
    video_frames: int = 0
    video_codec: str | None = None


def demo_frame(
    rgb: np.ndarray,
    result: Any,
    info: ModelInfo,
    threshold: float,
    ood_gt: np.ndarray | None = None,
    not_scored: np.ndarray | None = None,
) -> np.ndarray:
    """One RGB video frame: camera overlay (semantic inset) | turbo heat map | mask, with panel
    titles and the ground-truth anomaly outline drawn on the mask panel; pixels the metrics do
    not score (`not_scored`, e.g. off the road for a road + sidewalk model) are drawn with score 0
    and greyed out in the heat map and the mask, so the picture shows what the numbers are about
    (a road + sidewalk model calls every building "not road": tinting the whole skyline would
    hide the obstacles)."""
    height, width = rgb.shape[:2]
    score = result.anomaly_score
    if not_scored is not None:
        score = np.where(not_scored, np.float32(0.0), score)
    frame = visualize.side_by_side(rgb, score, result.semantic, info.palette, threshold)
    if frame.shape[0] < MIN_VIDEO_HEIGHT:
        factor = -(-MIN_VIDEO_HEIGHT // frame.shape[0])
        frame = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    scale = frame.shape[1] / (3 * width)
    panel_w = frame.shape[1] / 3
    if not_scored is not None and np.any(not_scored):
        size = (frame.shape[1] // 3, frame.shape[0])
        grey = cv2.resize(not_scored.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        for panel in (1, 2):
            view = frame[:, panel * size[0] : (panel + 1) * size[0]]
            view[grey > 0] = view[grey > 0] // 4 + NOT_SCORED_GREY
    if ood_gt is not None and np.any(ood_gt == 1):
        outline = (ood_gt == 1).astype(np.uint8)
        contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        shifted = [
            np.rint(c.astype(np.float32) * scale + [2 * panel_w, 0]).astype(np.int32)
            for c in contours
        ]
        cv2.drawContours(frame, shifted, -1, GT_COLOUR_RGB, max(1, round(2 * scale)))
    font_scale = max(0.4, min(0.7, frame.shape[0] / 400))
    thickness = 1
    for index, title in enumerate(PANEL_TITLES):
        (text_w, text_h), base = cv2.getTextSize(
            title, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness
        )
        x = int(index * panel_w + panel_w - text_w - 6)  # top right: the inset is top left
        y = 4
        frame[y : y + text_h + base + 4, max(0, x - 3) : x + text_w + 3] //= 3
        cv2.putText(
            frame,
            title,
            (x, y + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return frame


def render_video(
    input_bag: Path,
    recording: Path,
    topics: tuple[str, tuple[str | None, str | None]],
    node_ns: str,
    info: ModelInfo,
    threshold: float,
    region: regions.ScoredRegion,
    video_path: Path,
    video_fps: float,
    progress: bool = True,
) -> RecordedVideo:
    """`demo_frame` of every frame the node answered (all model outputs recorded); `topics` is
    (camera topic, (OOD topic, semantic topic)) of the input bag."""
    from pixood_ros.engine import SegmentationResult

    camera, labels = topics
    found = RecordedVideo()
    frames = recorded_frames(input_bag, recording, camera, labels, node_ns)
    with VideoWriter(video_path, video_fps) as video:
        for recorded in tqdm(frames, desc="draw video", unit="frame", disable=not progress):
            found.frames_in_bag += 1
            if not recorded.answered:
                found.missing_output_stamps.append(recorded.frame.stamp_ns)
                continue
            found.frames_answered += 1
            result = SegmentationResult(**recorded.outputs)
            ood, semantic = recorded.labels(result.anomaly_score.shape)
            outside = None
            if ood is not None and region.classes is not None and semantic is not None:
                outside = region.restrict(ood, semantic) == regions.VOID
            rgb = image_conversion.message_to_rgb(recorded.frame.msg)
            video.write(demo_frame(rgb, result, info, threshold, ood, outside))
    found.video_frames, found.video_codec = video.frames, video.codec
    return found
