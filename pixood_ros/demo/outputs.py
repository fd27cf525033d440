"""The demo's video of what the node really published: its recorded outputs, paired by header
stamp with the camera frames and ground truth of the bag that was replayed into it
(`pixood_ros.bag.recording`, the same pairing that scored them), drawn as every tool draws them
(`pixood_ros.render.pictures.side_by_side`: overlay | score | mask, colour bar, class legend),
with the ground-truth anomaly outline on the mask panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros import image_conversion
from pixood_ros.bag.recording import recorded_frames
from pixood_ros.engine.metadata import ModelInfo
from pixood_ros.render import pictures as visualize
from pixood_ros.render.video import VideoWriter


@dataclass
class RecordedVideo:
    """The video written and what the pass over the recording counted."""

    frames_in_bag: int = 0
    frames_answered: int = 0
    missing_output_stamps: list[int] = field(default_factory=list)
    video_frames: int = 0
    video_codec: str | None = None


def demo_frame(
    rgb: np.ndarray, result: Any, info: ModelInfo, threshold: float, ood_gt: np.ndarray | None
) -> np.ndarray:
    """One RGB video frame of the node's published outputs: its overlay (with the semantic
    inset), score and mask over the whole frame, nothing hidden, the ground-truth outline on
    the mask."""
    return visualize.side_by_side(
        rgb,
        result.anomaly_score,
        result.semantic,
        info.palette,
        threshold,
        class_names=info.class_names,
        ood_gt=ood_gt,
    )


def render_video(
    input_bag: Path,
    recording: Path,
    topics: tuple[str, tuple[str | None, str | None]],
    node_ns: str,
    info: ModelInfo,
    threshold: float,
    video_path: Path,
    video_fps: float,
    progress: bool = True,
) -> RecordedVideo:
    """`demo_frame` of every frame the node answered (all model outputs recorded); `topics` is
    (camera topic, (OOD topic, semantic topic)) of the input bag. The video shows whole
    frames, as the node publishes them."""
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
            ood, _ = recorded.labels(result.anomaly_score.shape)
            rgb = image_conversion.message_to_rgb(recorded.frame.msg)
            video.write(demo_frame(rgb, result, info, threshold, ood))
    found.video_frames, found.video_codec = video.frames, video.codec
    return found
