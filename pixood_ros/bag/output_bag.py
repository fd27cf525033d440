"""The evaluation's output bag: the node's topics (docs/architecture.md §5) with the input
headers, so `ros2 bag play` of it shows in rviz exactly what the node would have published live.

The pictures are the node's own (`pixood_ros.render.outputs`: same mask rule and overlay); the
overlay arrives rendered (the video shows the same picture). Topics, under namespace `ns` (the
node's private namespace, default `/pixood_node`), in the compact form by default (zstd-compressed
mcap chunks or sqlite3 messages, scores as 16-bit PNG, overlay as JPEG:
`pixood_ros.bag.output_codec`) or, with
`raw`, exactly as the node publishes them: `anomaly_score` 32FC1, `anomaly_mask` mono8 (0/255),
`semantic` mono8, `confidence` 32FC1, `overlay` bgr8. The input frames are copied alongside as
stored, so the replay is self-contained.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

from pixood_ros.bag import bagio, output_codec
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.contract import NODE_NAMESPACE
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
        self,
        path: Path,
        storage: str,
        ns: str,
        input_topic: str,
        input_type: str,
        *,
        raw: bool = False,
    ) -> None:
        self.path = path
        self.raw = raw
        # sqlite3 objects work only in the thread that made them: every call on the writer runs
        # in this one thread, whichever thread writes a frame or closes the bag
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="output-bag")
        try:
            self._call(self._open, storage, ns, input_topic, input_type)
        except BaseException:
            self._thread.shutdown()
            raise
        self.topics = {c.topic: c.msgtype for c in [self._input, *self._outputs.values()]}
        self.frames = 0

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        return self._thread.submit(function, *args).result()

    def _open(self, storage: str, ns: str, input_topic: str, input_type: str) -> None:
        self._writer = bagio.open_writer(self.path, storage)
        if not self.raw:  # zstd: whole mcap chunks, or each message of a sqlite3 bag
            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._writer.open()
        self._input = self._writer.add_connection(
            input_topic, input_type, typestore=bagio.TYPESTORE
        )
        self._outputs = {}
        for name in OUTPUT_NAMES:
            suffix, msgtype = output_codec.stored_form(name, self.raw)
            self._outputs[name] = self._writer.add_connection(
                output_topic(ns, suffix), msgtype, typestore=bagio.TYPESTORE
            )

    def write(
        self, frame: BagMessage, result: Any, threshold: float, overlay_bgr: np.ndarray
    ) -> None:
        """The input frame as stored and the node's outputs of it, at the frame's bag time (all
        or, when interrupted, none of them: in the main thread the signal waits for the frame;
        other threads are never interrupted)."""
        pixels = {
            "anomaly_score": result.anomaly_score,
            "anomaly_mask": anomaly_mask(result.anomaly_score, threshold),
            "semantic": result.semantic,
            "confidence": result.confidence,
            "overlay": overlay_bgr,
        }
        raw = {
            name: output_codec.encode(name, pixels[name], frame.msg.header, self.raw)
            for name in self._outputs
        }
        main = threading.current_thread() is threading.main_thread()
        with deferred() if main else contextlib.nullcontext():
            self._call(self._write_frame, frame, raw)
            self.frames += 1

    def _write_frame(self, frame: BagMessage, raw: dict[str, bytes]) -> None:
        self._writer.write(self._input, frame.bag_time_ns, frame.raw)
        for name, connection in self._outputs.items():
            self._writer.write(connection, frame.bag_time_ns, raw[name])

    def close(self) -> None:
        """Finish the bag and flush it to disk (OSError when the disk is full)."""
        with deferred():
            try:
                self._call(bagio.finish_writer, self._writer, self.path)
            finally:
                self._thread.shutdown()

    def bytes_on_disk(self) -> int:
        """Size of the finished bag's files."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
