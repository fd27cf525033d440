"""The node side of the node-vs-engine benchmark: the pixood node on an already loaded model,
plus a publisher/subscriber test node, in one process, each spun in its own thread.

The publisher paces itself on the node's two threads (closed loop: the next frame once the
inference thread took the previous one and the publisher thread the one before) or on a fixed
rate (open loop);
the subscriber takes the outputs serialized (no Python message is built) and reads only their
stamps, so the measuring side costs as little as possible.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros.contract import NODE_OUTPUTS
from pixood_ros.render.compressed import COMPRESSED_SUFFIX

# Frames each side processes before its clock starts.
WARMUP_FRAMES = 5
# The measured node's name: its outputs are /pixood_bench_node/<output>.
NODE_NAME = "pixood_bench_node"


def _cdr_stamp_ns(serialized: bytes) -> int:
    """header.stamp of a serialized message (CDR: 4-byte encapsulation, then sec, nanosec)."""
    order = "<" if serialized[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(order + "iI", serialized, 4)
    return sec * 1_000_000_000 + nanosec


class NodeRig:
    """The pixood node plus a publisher/subscriber test node, each spun in its own thread."""

    def __init__(
        self,
        segmenter: Any,
        model: Path,
        frames: list[np.ndarray],
        encoding: str,
        input_qos: str,
        outputs: tuple[str, ...],
    ) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        from pixood_ros.image_conversion import array_to_image

        self.outputs = outputs
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.answered = threading.Condition()
        self.taken = 0  # frames the node's inference thread took out of its mailbox
        self.handed = 0  # results its publisher thread took (or that were discarded)
        self.discarded = 0  # results replaced before the publisher took them
        # CPU seconds of the node's two threads in their stage's work (each adds only its own)
        self.stage_cpu = {"inference": 0.0, "publishing": 0.0}
        self.node = self._paced_node(segmenter, model, input_qos)
        self.tester = rclpy.create_node("pixood_bench_io", context=self.context)
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.tester.create_publisher(Image, "image", reliable)
        self.sent: dict[int, float] = {}
        self.arrivals: dict[str, list[tuple[float, int]]] = {name: [] for name in outputs}
        self.subscriptions = [
            self.tester.create_subscription(
                CompressedImage if n.endswith(COMPRESSED_SUFFIX) else Image,
                f"/{NODE_NAME}/{n}",
                lambda data, n=n: self._on_output(n, data),
                reliable,
                raw=True,
            )
            for n in outputs
        ]
        self.messages = [
            array_to_image(
                f if encoding == "rgb8" else np.ascontiguousarray(f[:, :, ::-1]), encoding
            )
            for f in frames
        ]
        self.index = 0
        self.executors = [self._spin(member) for member in (self.node, self.tester)]

    def _paced_node(self, segmenter: Any, model: Path, input_qos: str) -> Any:
        """The pixood node on the loaded `segmenter`, telling us when its worker takes a frame."""
        from rclpy.parameter import Parameter

        from pixood_ros.node.mailbox import LatestFrameMailbox
        from pixood_ros.node.pixood_node import PixoodNode

        rig = self

        class HandOverMailbox(LatestFrameMailbox):
            """Tells the publisher when the worker took a frame (closed-loop pacing)."""

            def get(self, timeout: float | None = None) -> Any:
                item = super().get(timeout)
                if item is not None:
                    with rig.answered:
                        rig.taken += 1
                        rig.answered.notify_all()
                return item

        class PacedNode(PixoodNode):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._mailbox = HandOverMailbox()

            def infer(self, *args: Any) -> Any:
                with rig.thread_cpu("inference"):
                    return super().infer(*args)

            def _publish_frame(self, index: int, result: Any) -> None:
                rig.result_handed()
                with rig.thread_cpu("publishing"):
                    super()._publish_frame(index, result)

            def _discard_result(self, index: int, result: Any) -> None:
                rig.result_handed(discarded=True)
                super()._discard_result(index, result)

        overrides = [
            Parameter("model_path", value=str(model)),
            Parameter("input_qos", value=input_qos),
            Parameter("warmup", value=False),
        ]
        wanted = {name.removesuffix(COMPRESSED_SUFFIX) for name in self.outputs}
        overrides += [Parameter(f"publish_{n}", value=n in wanted) for n in NODE_OUTPUTS]
        return PacedNode(
            NODE_NAME,
            context=self.context,
            parameter_overrides=overrides,
            segmenter_factory=lambda settings: segmenter,
        )

    def _spin(self, member: Any) -> tuple[Any, threading.Thread]:
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(member)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        return executor, thread

    @contextlib.contextmanager
    def thread_cpu(self, stage: str) -> Iterator[None]:
        """Adds the calling thread's CPU time inside the block to `stage_cpu[stage]`."""
        start = time.thread_time()
        try:
            yield
        finally:
            self.stage_cpu[stage] += time.thread_time() - start

    def result_handed(self, discarded: bool = False) -> None:
        with self.answered:
            self.handed += 1
            self.discarded += discarded
            self.answered.notify_all()

    def _on_output(self, name: str, serialized: bytes) -> None:
        now = time.perf_counter()
        with self.answered:
            self.arrivals[name].append((now, _cdr_stamp_ns(serialized)))
            self.answered.notify_all()

    def start(self) -> None:
        if not self.node.autostart():
            raise RuntimeError("the node did not activate (see its log)")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not (
            self.publisher.get_subscription_count() > 0
            and all(s.get_publisher_count() > 0 for s in self.subscriptions)
        ):
            time.sleep(0.05)

    def publish_next(self) -> None:
        self.index += 1
        msg = self.messages[self.index % len(self.messages)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(self.index, 1_000_000_000)
        with self.answered:
            self.sent[self.index] = time.perf_counter()
        self.publisher.publish(msg)

    def _may_send(self) -> bool:
        """Closed loop: the inference thread took every frame sent so far, and the publisher
        thread every result but the newest, so the next frame waits while the model runs and
        its result finds the hand-over free (no frame is sent only to be dropped)."""
        return self.taken >= self.index and self.handed >= self.index - 1

    def answered_up_to(self) -> int:
        """Newest frame index whose last output arrived (0 = none)."""
        last = self.arrivals[self.outputs[-1]]
        return last[-1][1] if last else 0

    def wait_answer(self, index: int, timeout: float) -> bool:
        with self.answered:
            return self.answered.wait_for(lambda: self.answered_up_to() >= index, timeout)

    def run(self, duration: float, rate: float) -> dict:
        """Feed the node for `duration` s after a warm-up; outputs/s counted in that window."""
        for _ in range(WARMUP_FRAMES):
            self.publish_next()
            if not self.wait_answer(self.index, 30.0):
                raise RuntimeError("the node did not answer a warm-up frame within 30 s")
        stats = self.node.channels[0].stats
        dropped_before, discarded_before = stats.snapshot().dropped, self.discarded
        stage_cpu_before = dict(self.stage_cpu)
        first_index = self.index + 1
        cpu = time.process_time()
        start = time.perf_counter()
        end = start + duration
        published = 0
        while (now := time.perf_counter()) < end:
            if rate > 0:
                self.publish_next()
                published += 1
                time.sleep(max(0.0, start + published / rate - time.perf_counter()))
            else:
                with self.answered:
                    ready = self.answered.wait_for(self._may_send, end - now)
                if ready:
                    self.publish_next()
                    published += 1
        cpu = time.process_time() - cpu
        last_index = self.index
        self.wait_answer(last_index, 5.0)  # let the frames in flight come out before counting
        with self.answered:
            counts = {
                name: sum(1 for t, _ in events if start <= t < end)
                for name, events in self.arrivals.items()
            }
            latencies = [
                t - self.sent[s]
                for t, s in self.arrivals[self.outputs[-1]]
                if start <= t < end and s >= first_index
            ]
        latency = np.array(latencies) * 1e3
        return {
            "published": published,
            "seconds": duration,
            "cpu_seconds": cpu,
            "stage_cpu_seconds": {
                stage: spent - stage_cpu_before[stage] for stage, spent in self.stage_cpu.items()
            },
            "outputs_received": counts,
            "fps": counts[self.outputs[-1]] / duration,
            "dropped_in_node": stats.snapshot().dropped - dropped_before,
            # of those, results dropped between the model and the publisher (publishing slower)
            "results_dropped": self.discarded - discarded_before,
            "latency_ms_mean": float(latency.mean()) if latency.size else None,
            "latency_ms_p95": float(np.percentile(latency, 95)) if latency.size else None,
        }

    def close(self) -> None:
        import rclpy

        if self.node.lifecycle_state in ("active", "inactive"):
            self.node.trigger_shutdown()
        for executor, _ in self.executors:
            executor.shutdown(timeout_sec=2.0)
        rclpy.shutdown(context=self.context)
        for _, thread in self.executors:
            thread.join(timeout=5.0)
        self.node.destroy_node()
        self.tester.destroy_node()
