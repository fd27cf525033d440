"""Score what the node really published: its recorded output bag, paired by header stamp with the
camera frames and ground truth of the bag that was replayed into it.

`pixood-bag-eval --live --record` records the node's five output topics (with the input headers)
but only scores the anomaly map; the demo also wants the semantic metrics, the curves and a video
a person can watch, all from the node's own outputs (not from a second, offline inference).
Both bags are read in one time-ordered stream (`rosbags` AnyReader over the two bags: the input
bag's and the recording's log times are both the header stamps), so nothing is held in memory
beyond one frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pixood_ros import image_conversion
from pixood_ros.bag import bagio, report
from pixood_ros.bag.make_bag import DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC
from pixood_ros.bag.output_bag import OUTPUT_NAMES, output_topic
from pixood_ros.bag.pairing import pair_by_stamp
from pixood_ros.bag.scoring import BEST_F1, EvalMetrics
from pixood_ros.contract import MODEL_OUTPUTS
from pixood_ros.engine.metadata import ModelInfo
from pixood_ros.metrics import region as regions
from pixood_ros.render import pictures as visualize
from pixood_ros.render.video import VideoWriter

OUTPUTS = MODEL_OUTPUTS
PANEL_TITLES = ("camera + anomalies", "anomaly score", "mask (green: ground truth)")
NOT_SCORED_GREY = 72  # grey level added to darkened pixels outside the scored region
GT_COLOUR_RGB = (0, 255, 0)
MIN_VIDEO_HEIGHT = 240  # small frames are enlarged so titles and masks stay readable


@dataclass
class RecordedEvaluation:
    metrics: EvalMetrics
    summary: dict[str, Any] = field(default_factory=dict)  # metrics.summary(), the report's
    frames_in_bag: int = 0
    frames_answered: int = 0
    missing_output_stamps: list[int] = field(default_factory=list)
    video_frames: int = 0
    video_codec: str | None = None
    plots: dict[str, str] = field(default_factory=dict)


@dataclass
class _Result:
    """The node's outputs of one frame, shaped like `Segmenter`'s result."""

    anomaly_score: np.ndarray
    semantic: np.ndarray
    confidence: np.ndarray


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


def _decode(message: Any) -> np.ndarray:
    return np.asarray(image_conversion.image_to_array(message.msg))


def evaluate_recording(
    input_bag: Path,
    recorded_bag: Path,
    node_ns: str,
    info: ModelInfo,
    threshold: float,
    out_dir: Path,
    *,
    video_path: Path | None,
    video_fps: float,
    region: str = regions.AUTO,
    track: str = "auto",
    component_threshold: str = BEST_F1,
    min_pred_size: int | None = None,
    min_gt_size: int | None = None,
    progress: bool = True,
) -> RecordedEvaluation:
    """Metrics, curves (in `out_dir`) and the overlay video of the recorded node outputs, scored
    exactly as `pixood-bag-eval` scores them (same `EvalMetrics`, region and thresholds)."""
    from rosbags.highlevel import AnyReader

    output_topics = {name: output_topic(node_ns, name) for name in OUTPUTS}
    for path in (input_bag, recorded_bag):
        bagio.check_bag_path(path)
    reader = AnyReader([input_bag, recorded_bag], default_typestore=bagio.TYPESTORE)
    reader.open()
    video = VideoWriter(video_path, video_fps) if video_path is not None else None
    evaluation: RecordedEvaluation | None = None
    try:
        topics = {c.topic for c in reader.connections}
        label_topics = [t for t in (DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC) if t in topics]
        scored = regions.choose_region(
            region, info.eval_labels, info.num_classes, DEFAULT_SEMANTIC_TOPIC in topics
        )
        metrics = EvalMetrics(
            threshold,
            num_classes=info.num_classes,
            track=track,
            min_pred_size=min_pred_size,
            min_gt_size=min_gt_size,
            component_threshold=component_threshold,
            region=scored,
            spill_dir=out_dir,
        )
        evaluation = RecordedEvaluation(metrics)
        node_topics = [output_topic(node_ns, name) for name in OUTPUT_NAMES]
        camera = bagio.choose_image_topic(reader, None, [*label_topics, *node_topics])
        paired = [*label_topics, *output_topics.values()]
        total = bagio.message_counts(reader).get(camera, 0)
        stream = pair_by_stamp(bagio.iter_messages(reader, [camera, *paired]), camera, paired)
        for frame, found in tqdm(
            stream, total=total, desc="score recorded outputs", unit="frame", disable=not progress
        ):
            evaluation.frames_in_bag += 1
            if any(found[t] is None for t in output_topics.values()):
                evaluation.missing_output_stamps.append(frame.stamp_ns)
                continue
            evaluation.frames_answered += 1
            result = _Result(*(_decode(found[output_topics[name]]) for name in OUTPUTS))
            metrics.add_scores(result.anomaly_score)
            ood = _decode(found[DEFAULT_GT_TOPIC]) if found.get(DEFAULT_GT_TOPIC) else None
            semantic_gt = None
            if found.get(DEFAULT_SEMANTIC_TOPIC) is not None:
                semantic_gt = _decode(found[DEFAULT_SEMANTIC_TOPIC])
                metrics.add_semantic(result.semantic, result.confidence, semantic_gt)
            if ood is not None:
                metrics.add_ood(result.anomaly_score, ood, semantic_gt)
            if video is not None:
                rgb = image_conversion.message_to_rgb(frame.msg)
                outside = None
                if ood is not None and scored.classes is not None and semantic_gt is not None:
                    outside = scored.restrict(ood, semantic_gt) == regions.VOID
                video.write(demo_frame(rgb, result, info, threshold, ood, outside))
        evaluation.summary = metrics.summary(list(info.class_names))
    finally:
        reader.close()
        if evaluation is not None:
            evaluation.metrics.close()
        if video is not None:
            video.close()
            if evaluation is not None:
                evaluation.video_frames, evaluation.video_codec = video.frames, video.codec
    evaluation.plots = report.write_plots(evaluation.metrics, out_dir)
    return evaluation
