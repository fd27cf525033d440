"""The ROS 2 side of a live replay: a node of our own that publishes the bag's frames to the
pixood node and listens to (and optionally records) its outputs, keyed by header stamp.

Imports rclpy (on construction only), so the rest of the bag tools run without ROS.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pixood_ros.bag import bagio, cdr
from pixood_ros.bag.options import LiveOptions
from pixood_ros.bag.output_bag import OUTPUT_NAMES, output_topic
from pixood_ros.bag.recording import SCORE, Recorder
from pixood_ros.cli import UserError

PROBE_PERIOD_S = 0.5
PROBE_STAMP_NS = 1  # probe frames are stamped 1 ns, 2 ns, ... after the epoch: no camera's stamps


@dataclass
class Tally:
    """What came back from the node, keyed by the header stamp of the input frame."""

    published_at: dict[int, float] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    score_stamps: set[int] = field(default_factory=set)
    unexpected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    probe_seen: dict[int, set[str]] = field(default_factory=dict)  # probe stamp -> outputs seen


class Player:
    """Use as a context manager: ROS is shut down on every way out."""

    def __init__(
        self, topic: str, msgtype: str, live: LiveOptions, recorder: Recorder | None
    ) -> None:
        self.topic, self.msgtype, self.node_ns = topic, msgtype, live.node_ns
        self.recorder = recorder
        self.tally = Tally()
        self._context = self._node = self._executor = self._spinner = None

    @staticmethod
    def check_available() -> None:
        """UserError when this Python has no ROS 2 (rclpy, sensor_msgs)."""
        try:
            import rclpy  # noqa: F401
            import sensor_msgs.msg  # noqa: F401
        except ImportError as exc:
            raise UserError(f"--live needs rclpy and sensor_msgs ({exc})") from exc

    def __enter__(self) -> Player:
        import rclpy

        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        try:
            self._start(rclpy)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self, rclpy: Any) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        self._node = rclpy.create_node("pixood_bag_player", context=self._context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        ros_type = CompressedImage if self.msgtype == bagio.COMPRESSED_TYPE else Image
        self.publisher = self._node.create_publisher(ros_type, self.topic, reliable)
        self.subscriptions = [
            self._node.create_subscription(
                Image,
                output_topic(self.node_ns, name),
                lambda raw, n=name: self._on_output(n, raw),
                reliable,
                raw=True,
            )
            for name in OUTPUT_NAMES
        ]
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()

    def __exit__(self, *exc: object) -> None:
        import rclpy

        if self._executor is not None:
            self._executor.shutdown()
        if self._spinner is not None:
            self._spinner.join(timeout=2)
        if self._node is not None:
            self._node.destroy_node()
        rclpy.shutdown(context=self._context)

    def _on_output(self, name: str, raw: bytes) -> None:
        """Runs in the executor thread; only the header stamp of the output is read."""
        now = time.perf_counter()
        stamp = cdr.header_stamp_ns(raw)
        tally = self.tally
        with tally.lock:
            if stamp in tally.probe_seen:  # warm-up probe: neither counted nor recorded
                tally.probe_seen[stamp].add(name)
                return
            tally.received[name] = tally.received.get(name, 0) + 1
            sent = tally.published_at.get(stamp)
            if name == SCORE:
                if sent is None:
                    tally.unexpected += 1
                else:
                    tally.latencies_ms.append((now - sent) * 1e3)
                    tally.score_stamps.add(stamp)
        if self.recorder is not None:
            self.recorder.write(name, stamp, raw)

    def publish(self, stamp_ns: int, raw: bytes) -> None:
        """Publish one frame as stored in the bag (rclpy sends bytes without serialising)."""
        with self.tally.lock:
            self.tally.published_at[stamp_ns] = time.perf_counter()
        self.publisher.publish(bytes(raw))

    def wait_for_node(self, timeout: float) -> None:
        """The node must subscribe to our topic and every output subscription of ours must be
        matched to its publisher before the replay starts: the node renders and publishes an
        output only while it has a subscriber, so a replay that starts during discovery loses
        first frames."""
        score_topic = output_topic(self.node_ns, SCORE)
        node = self._node
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self.publisher.get_subscription_count() > 0
                and node.count_publishers(score_topic) > 0
                and all(
                    sub.get_publisher_count() > 0
                    for sub in self.subscriptions
                    if node.count_publishers(sub.topic_name) > 0  # outputs switched on
                )
            ):
                time.sleep(0.2)  # let the remaining discovery handshakes finish
                return
            time.sleep(0.05)
        raise UserError(
            f"no pixood node found within {timeout:g} s: nobody subscribes to {self.topic} or "
            f"publishes {score_topic} (is the node running and active, its input remapped to "
            f"{self.topic}, in ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')}?)"
        )

    def expected_outputs(self) -> set[str]:
        """The outputs the node publishes."""
        return {
            name
            for name, sub in zip(OUTPUT_NAMES, self.subscriptions, strict=True)
            if sub.get_publisher_count() > 0
        }

    def probe(self, raw: bytes, expected: set[str], timeout: float) -> None:
        """Publish the frame `raw` under probe stamps until one comes back on every `expected`
        output topic.

        Discovery is asymmetric: our subscriptions can see the node's publishers before the node
        sees our subscriptions, and the node publishes an output only while it has a subscriber,
        so a replay that started right away lost the first frames on some topics. The probe also
        warms up the node (first-frame latency). Probe outputs are neither counted nor recorded."""
        tally = self.tally
        deadline = time.monotonic() + timeout
        stamp = PROBE_STAMP_NS
        while time.monotonic() < deadline:
            with tally.lock:
                tally.probe_seen[stamp] = set()
            self.publisher.publish(cdr.with_header_stamp(bytes(raw), stamp))
            next_probe = time.monotonic() + PROBE_PERIOD_S
            while time.monotonic() < min(next_probe, deadline):
                with tally.lock:
                    if any(expected <= seen for seen in tally.probe_seen.values()):
                        time.sleep(PROBE_PERIOD_S)  # let late answers to older probes drain
                        return
                time.sleep(0.02)
            stamp += 1

    def wait_for_outputs(self, published: int, expected: set[str], timeout: float) -> None:
        """Until every frame is answered on every expected output topic (the node publishes the
        score first, so stopping at the last score lost the last frame's other outputs), or no
        new output arrived for `timeout` seconds."""
        target = published * max(1, len(expected))
        last_count, last_change = -1, time.monotonic()
        while True:
            with self.tally.lock:
                count = sum(self.tally.received.get(name, 0) for name in expected or {SCORE})
            if count >= target:
                return
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > timeout:
                return
            time.sleep(0.02)
