"""The evaluation's output bag: the node's topics (docs/architecture.md §5) with the input
headers, so `ros2 bag play` of it shows in rviz exactly what the node would have published live.

The images are built with the node's own `pixood_ros.render.outputs` (same encodings, mask
rule and overlay), only with rosbags' message class; the overlay arrives rendered (the video
shows the same picture). Topics, under namespace `ns` (the node's private namespace, default
`/pixood_node`): `anomaly_score` 32FC1, `anomaly_mask` mono8 (0/255), `semantic` mono8,
`confidence` 32FC1, `overlay` bgr8; the input frames are copied alongside as stored, so the
replay is self-contained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros.bag import bagio
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.contract import NODE_NAMESPACE
from pixood_ros.image_conversion import array_to_image
from pixood_ros.interruption import deferred
from pixood_ros.render.outputs import ENCODINGS, anomaly_mask

OUTPUT_NAMES = tuple(ENCODINGS)
DEFAULT_NAMESPACE = NODE_NAMESPACE  # the node's name: its ~/ topics live here
DEFAULT_OVERLAY_ALPHA = 0.6  # the node's overlay_alpha default (config/pixood.yaml)


def output_topic(ns: str, name: str) -> str:
    return f"{ns.rstrip('/')}/{name}" if ns.strip("/") else f"/{name}"


class OutputBag:
    """Writes one set of node outputs per evaluated frame; use as a context manager."""

    def __init__(
        self, path: Path, storage: str, ns: str, input_topic: str, input_type: str
    ) -> None:
        self.path = path
        self._writer = bagio.open_writer(path, storage)
        self._writer.open()
        self._input = self._writer.add_connection(
            input_topic, input_type, typestore=bagio.TYPESTORE
        )
        self._outputs = {
            name: self._writer.add_connection(
                output_topic(ns, name), bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
            )
            for name in OUTPUT_NAMES
        }
        self.topics = {c.topic: c.msgtype for c in [self._input, *self._outputs.values()]}
        self.frames = 0

    def write(
        self, frame: BagMessage, result: Any, threshold: float, overlay_bgr: np.ndarray
    ) -> None:
        """The input frame as stored and the node's outputs of it, at the frame's bag time (all
        or, when interrupted, none of them: the signal waits for the frame)."""
        pixels = {
            "anomaly_score": result.anomaly_score,
            "anomaly_mask": anomaly_mask(result.anomaly_score, threshold),
            "semantic": result.semantic,
            "confidence": result.confidence,
            "overlay": overlay_bgr,
        }
        msg_type = bagio.TYPESTORE.types[bagio.IMAGE_TYPE]
        raw = {
            name: bagio.serialize(
                array_to_image(pixels[name], ENCODINGS[name], frame.msg.header, msg_type=msg_type)
            )
            for name in self._outputs
        }
        with deferred():
            self._writer.write(self._input, frame.bag_time_ns, frame.raw)
            for name, connection in self._outputs.items():
                self._writer.write(connection, frame.bag_time_ns, raw[name])
            self.frames += 1

    def close(self) -> None:
        """Finish the bag and flush it to disk (OSError when the disk is full)."""
        with deferred():
            bagio.finish_writer(self._writer, self.path)

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
