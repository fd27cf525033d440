"""Test helpers: a real rclpy graph (own Context, Fast DDS on loopback) around the PixOOD node.

`NodeGraph` spins the node under test (in-process) and a tester node with an image publisher
and reliable subscribers on every output, in one executor thread. Everything is bounded by
timeouts; `close()` tears the context down so each test starts from a fresh graph.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import defaultdict
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from pixood_ros import image_conversion as ic
from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE, anomaly_map
from pixood_ros.render.outputs import ENCODINGS, anomaly_mask, render_overlay

OUTPUTS = tuple(ENCODINGS)


def reliable(depth: int = 50) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
    )


def stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def make_image_msg(
    pixels: np.ndarray, encoding: str, stamp: int, frame_id: str = "cam", padding: int = 0
) -> Image:
    """An Image message from native pixels (little-endian), optionally with row padding."""
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    rows = pixels.astype(pixels.dtype.newbyteorder("<")).reshape(pixels.shape[0], -1)
    rows = rows.view(np.uint8)
    if padding:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], padding), np.uint8)], axis=1)
    msg.step = rows.shape[1]
    msg.data = rows.tobytes()
    return msg


def make_compressed_msg(data: bytes, fmt: str, stamp: int, frame_id: str = "cam"):
    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.format = fmt
    msg.data = data
    return msg


class NodeGraph:
    """Publisher -> node under test -> reliable subscribers, spun in a background thread."""

    def __init__(
        self,
        node_factory,
        parameters: dict[str, Any] | None = None,
        input_topics: tuple[str, ...] = ("image",),
        output_prefixes: tuple[str, ...] = ("/pixood_node/",),
        input_type: type = Image,
        subscribe_outputs: bool = True,
        extra_node: Any = None,
        outputs: tuple[str, ...] = OUTPUTS,
    ) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
        overrides = [Parameter(k, value=v) for k, v in (parameters or {}).items()]
        self.node = (
            node_factory(context=self.context, parameter_overrides=overrides)
            if node_factory
            else None
        )
        self.tester = rclpy.create_node("pixood_tester", context=self.context)
        self.lock = threading.Condition()
        self.received: dict[str, dict[int, Image]] = defaultdict(dict)
        self.arrivals: list[tuple[str, int, float]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.publishers = {
            topic: self.tester.create_publisher(input_type, f"/{topic}", reliable(10))
            for topic in input_topics
        }
        self.subscriptions = []
        if subscribe_outputs:
            for prefix in output_prefixes:
                for name in outputs:
                    topic = f"{prefix}{name}"
                    self.subscriptions.append(
                        self.tester.create_subscription(
                            Image, topic, lambda m, t=topic: self._on_output(t, m), reliable()
                        )
                    )
        self.tester.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable(10)
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        if self.node is not None:
            self.executor.add_node(self.node)
        self.executor.add_node(self.tester)
        if extra_node is not None:
            self.executor.add_node(extra_node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.spin()

    def _on_output(self, topic: str, msg: Image) -> None:
        with self.lock:
            self.received[topic][stamp_ns(msg.header)] = msg
            self.arrivals.append((topic, stamp_ns(msg.header), time.monotonic()))
            self.lock.notify_all()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics.append(msg)
            self.diagnostics[:] = self.diagnostics[-20:]
            self.lock.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(min(remaining, 0.05))
        return True

    def wait_until(self, predicate, timeout: float = 10.0) -> bool:
        """Poll a predicate that does not depend on received messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_connected(self, outputs_prefix_count: int | None = None, timeout: float = 10.0):
        """Until every input publisher and every output subscription is matched."""
        expected = len(self.subscriptions)

        def connected() -> bool:
            inputs = all(p.get_subscription_count() > 0 for p in self.publishers.values())
            outs = sum(s.get_publisher_count() > 0 for s in self.subscriptions)
            return inputs and outs >= expected

        assert self.wait_until(connected, timeout), "graph did not connect"

    def outputs_for(self, stamp: int, prefix: str = "/pixood_node/") -> dict[str, Image]:
        with self.lock:
            return {
                name: self.received[f"{prefix}{name}"][stamp]
                for name in OUTPUTS
                if stamp in self.received[f"{prefix}{name}"]
            }

    def wait_outputs(
        self, stamp: int, prefix: str = "/pixood_node/", names=OUTPUTS, timeout: float = 10.0
    ) -> dict[str, Image]:
        ok = self.wait_for(
            lambda: all(stamp in self.received[f"{prefix}{n}"] for n in names), timeout
        )
        assert ok, f"no complete output set for stamp {stamp} on {prefix}"
        return self.outputs_for(stamp, prefix)

    def publish(self, msg: Any, topic: str = "image") -> None:
        self.publishers[topic].publish(msg)

    def close(self) -> None:
        if self.node is not None and getattr(self.node, "lifecycle_state", "") in (
            "active",
            "inactive",
        ):
            self.node.trigger_shutdown()
        self.executor.shutdown(timeout_sec=2.0)
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5.0)
        if self.node is not None:
            self.node.destroy_node()
        self.tester.destroy_node()


class SlowSegmenter:
    """The real engine plus a fixed delay: a model slower than the camera."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.active_provider, self.info = inner.active_provider, inner.info

    def __call__(self, rgb, out=None):
        time.sleep(self.delay)
        return self.inner(rgb, out=out)


# --- frames and the outputs the node must publish for them -----------------------------------


def rng_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def assert_outputs_match(
    outputs, rgb, segmenter, header_stamp, frame_id, threshold, alpha=0.6, mode=DEFAULT_ANOMALY_MODE
):
    """The published outputs are the engine's, ~/anomaly_score (and mask, overlay) the score of
    anomaly `mode`."""
    height, width = rgb.shape[:2]
    expected = segmenter(rgb)
    expected.anomaly_score = anomaly_map(expected, mode, segmenter.info.eval_labels)
    for name, msg in outputs.items():
        assert msg.encoding == ENCODINGS[name], name
        assert (msg.height, msg.width) == (height, width), name
        assert stamp_ns(msg.header) == header_stamp and msg.header.frame_id == frame_id, name
    decoded = {name: ic.image_to_array(msg) for name, msg in outputs.items()}
    np.testing.assert_array_equal(decoded["anomaly_score"], expected.anomaly_score)
    np.testing.assert_array_equal(decoded["semantic"], expected.semantic)
    np.testing.assert_array_equal(decoded["confidence"], expected.confidence)
    np.testing.assert_array_equal(
        decoded["anomaly_mask"], anomaly_mask(expected.anomaly_score, threshold)
    )
    assert set(np.unique(decoded["anomaly_mask"])) <= {0, 255}
    np.testing.assert_array_equal(
        decoded["overlay"], render_overlay(rgb, expected.anomaly_score, alpha, threshold)
    )
    # what a viewer sees: pixels below the threshold keep their camera colour
    calm = expected.anomaly_score < threshold
    np.testing.assert_array_equal(decoded["overlay"][calm], rgb[..., ::-1][calm])


def frames_in_several_encodings() -> list[tuple[str, np.ndarray, int]]:
    """(encoding, native pixels, padding) of several encodings and sizes."""
    rgb = rng_image(5, 7, 1)
    mono16 = np.random.default_rng(2).integers(0, 65536, (6, 5), dtype=np.uint16)
    bayer = np.random.default_rng(3).integers(0, 256, (6, 8), dtype=np.uint8)
    yuv = np.random.default_rng(4).integers(16, 236, (4, 8, 2), dtype=np.uint8)
    rgba = np.concatenate([rng_image(9, 3, 5), np.full((9, 3, 1), 255, np.uint8)], axis=2)
    return [
        ("rgb8", rng_image(4, 6, 0), 0),
        ("bgr8", rgb, 3),
        ("rgba8", rgba, 0),
        ("mono8", rng_image(3, 4, 6)[:, :, 0].copy(), 2),
        ("mono16", mono16, 0),
        ("yuv422", yuv, 0),
        ("bayer_rggb8", bayer, 0),
        ("32FC1", np.random.default_rng(7).random((4, 4), dtype=np.float32), 0),
        ("rgb8", rng_image(120, 160, 8), 0),
    ]
