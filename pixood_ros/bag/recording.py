"""What the node published during a live replay (`pixood-bag-eval --live --record`): recorded into a
rosbag2 as received, read back paired with the replayed bag's frames and ground truth, and scored
in this one place (bag-eval's live report and the demo both show these numbers).

Outputs are read in either stored form (`pixood_ros.bag.output_codec`: the node's raw images or
the compact one of bag-eval's output bag). The input bag and the recording are read as one
time-ordered stream (the recording's bag times are the header stamps), paired by header stamp, so
nothing is held in memory beyond a few frames and scoring never competes with the replay for this
process's time.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixood_ros.bag import bagio
from pixood_ros.bag.bag_input import BagInput
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.bag.ground_truth import decode_labels
from pixood_ros.bag.output_bag import OUTPUT_NAMES, output_topic
from pixood_ros.bag.output_codec import COMPRESSED_SUFFIX, decode
from pixood_ros.bag.pairing import pair_by_stamp
from pixood_ros.bag.scoring import EvalMetrics
from pixood_ros.cli import one_line
from pixood_ros.contract import MODEL_OUTPUTS

SCORE = "anomaly_score"


class Recorder:
    """The node's outputs as received, into a rosbag2 (mcap) at their header stamps."""

    def __init__(self, path: Path, ns: str) -> None:
        self.path = path
        self._writer = bagio.open_writer(path, "mcap")
        self._writer.open()
        self._lock = threading.Lock()  # the executor thread writes, the replay thread closes
        self._connections = {
            name: self._writer.add_connection(
                output_topic(ns, name), bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
            )
            for name in OUTPUT_NAMES
        }

    def write(self, name: str, stamp_ns: int, raw: bytes) -> None:
        """`raw`: the message's serialized CDR bytes, written as received."""
        with self._lock:
            self._writer.write(self._connections[name], stamp_ns, raw)

    def close(self) -> None:
        """Finish the recording and flush it to disk (OSError when the disk is full)."""
        with self._lock:
            bagio.finish_writer(self._writer, self.path)


@dataclass
class RecordedFrame:
    """One camera frame of the replayed bag with the node's outputs of it (None: not received)
    and its ground-truth messages (None: the bag has none for it)."""

    frame: BagMessage
    outputs: dict[str, np.ndarray | None]
    ood_msg: BagMessage | None
    semantic_msg: BagMessage | None

    @property
    def answered(self) -> bool:
        """Every model output (score, semantic, confidence) came back."""
        return all(self.outputs[name] is not None for name in MODEL_OUTPUTS)

    def labels(self, shape: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(OOD, semantic) labels of the frame; ValueError when they do not fit `shape`."""
        ood = semantic = None
        if self.ood_msg is not None:
            ood = decode_labels(self.ood_msg.msg, shape, "OOD ground truth")
        if self.semantic_msg is not None:
            semantic = decode_labels(self.semantic_msg.msg, shape, "semantic ground truth")
        return ood, semantic


def recorded_frames(
    bag: Path,
    recording: Path,
    camera: str,
    label_topics: tuple[str | None, str | None],
    node_ns: str,
) -> Iterator[RecordedFrame]:
    """Every frame of `camera` in `bag`, in order, with the outputs recorded under `node_ns` and
    the (OOD, semantic) labels of `label_topics`, all paired by header stamp."""
    labels = [t for t in label_topics if t]
    source = BagInput(bag)
    reader = bagio.open_reader(recording)
    try:
        recorded = {c.topic for c in reader.connections}
        outputs = {  # the form recorded: raw as the node publishes, or compact (output_codec)
            name: next((t for t in forms if t in recorded), forms[0])
            for name in MODEL_OUTPUTS
            for forms in [[output_topic(node_ns, s) for s in (name, name + COMPRESSED_SUFFIX)]]
        }
        output_topics = list(outputs.values())
        stream = heapq.merge(
            source.messages([camera, *labels]),
            bagio.iter_messages(reader, output_topics),
            key=lambda message: message.bag_time_ns,
        )
        for frame, found in pair_by_stamp(stream, camera, [*labels, *output_topics]):
            decoded = {
                name: None if found[topic] is None else decode(name, found[topic].msg)
                for name, topic in outputs.items()
            }
            ood, semantic = (found.get(t) if t else None for t in label_topics)
            yield RecordedFrame(frame, decoded, ood, semantic)
    finally:
        reader.close()
        source.close()


@dataclass
class RecordingScore:
    """What scoring a recording found besides the metrics themselves."""

    frames_in_bag: int = 0
    frames_answered: int = 0
    missing_output_stamps: list[int] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)  # frames whose ground truth was unusable


def score_recording(
    frames: Iterator[RecordedFrame], metrics: EvalMetrics, *, semantic: bool
) -> RecordingScore:
    """Add every answered frame to `metrics`: its anomaly map against the OOD labels and, with
    `semantic` (the model's classes are known), its semantic map and confidence against the
    semantic labels."""
    found = RecordingScore()
    for recorded in frames:
        found.frames_in_bag += 1
        if not recorded.answered:
            found.missing_output_stamps.append(recorded.frame.stamp_ns)
        score = recorded.outputs[SCORE]
        if score is None:
            continue
        found.frames_answered += recorded.answered
        metrics.add_scores(score)
        try:
            ood, semantic_gt = recorded.labels(score.shape)
            if semantic and semantic_gt is not None and recorded.answered:
                outputs = recorded.outputs
                metrics.add_semantic(outputs["semantic"], outputs["confidence"], semantic_gt)
            if ood is not None:
                metrics.add_ood(np.asarray(score, np.float32), ood, semantic_gt)
        except ValueError as exc:
            found.unscored.append(f"stamp {recorded.frame.stamp_ns}: {one_line(exc)}")
    return found
