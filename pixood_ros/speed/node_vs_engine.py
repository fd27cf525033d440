"""Node throughput vs raw engine throughput, same model and frames, one run.

  python -m pixood_ros.speed.node_vs_engine MODEL
      [--width 640 --height 480 --duration 6 --json out.json]

The `Segmenter` alone is timed on the frames (the same `out=` buffer call the node makes), then
publisher -> pixood node -> subscriber run on loopback in this process (the node shares the
already loaded model), and the outputs per second are counted. Engine and node are measured in
alternating rounds, so a machine whose load drifts (shared cores) biases neither side, and each
side is warmed up before its clock starts. The ratio says how much the ROS plumbing (decode,
output images, DDS transport) costs on top of the model.

Feeding: by default (closed loop) the publisher sends the next frame as soon as the node's
worker has taken the previous one out of its mailbox: the node always finds its next frame
waiting (it arrives while the previous one is processed) but never receives frames it would
only drop (on a small machine, receiving and discarding surplus frames steals CPU from the
model and would be charged to the node).
`--rate` publishes open-loop at a fixed rate instead, like a camera. The subscriber takes the
outputs serialized (no Python message is built), so the measuring side costs as little as
possible; all of it runs in its own threads.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros.contract import NODE_OUTPUTS

OUTPUT_NAMES = NODE_OUTPUTS
WARMUP_FRAMES = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixood_ros.speed.node_vs_engine",
        description="Measure pixood node throughput against raw engine throughput (same model, "
        "same frames, same execution provider, alternating rounds) and print both, their ratio "
        "and latency as JSON.",
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file")
    parser.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="frame height (default 480)")
    parser.add_argument(
        "--frames", type=int, default=8, help="distinct random frames cycled through (default 8)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=6.0,
        help="measured seconds per side (engine, node), split over the rounds (default 6)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating engine/node rounds; more rounds cancel load drift better (default 3)",
    )
    parser.add_argument(
        "--encoding",
        choices=("rgb8", "bgr8"),
        default="rgb8",
        help="encoding of the published frames (default rgb8)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open-loop publish rate in Hz, like a camera; 0 (default) = closed loop: the "
        "next frame as soon as the node's worker took the previous one",
    )
    parser.add_argument(
        "--input-qos",
        choices=("reliable", "sensor_data"),
        default="reliable",
        help="node input QoS (default reliable: no frames lost in DDS, so only the node drops)",
    )
    parser.add_argument(
        "--no-overlay", action="store_true", help="do not publish ~/overlay (cheaper outputs)"
    )
    parser.add_argument(
        "--providers",
        default="cpu",
        help="comma-separated execution providers, e.g. tensorrt,cuda,cpu (default cpu)",
    )
    parser.add_argument(
        "--ort-spin-wait",
        action="store_true",
        help="let ONNX Runtime's threads busy-wait (off by default, like the node's "
        "ort_spin_wait parameter; both sides always use the same session)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr (for logs)"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    return parser


def _error(message: str) -> int:
    print(f"pixood node bench: error: {message}", file=sys.stderr)
    return 2


def make_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Random RGB frames (fixed seed, so runs are comparable)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def measure_engine(
    segmenter: Any, frames: list[np.ndarray], duration: float, warmup: int = WARMUP_FRAMES
) -> dict:
    """Frames per second of the bare Segmenter call, into reused buffers as the node does."""
    from pixood_ros.engine import SegmentationResult

    out = SegmentationResult.empty(*frames[0].shape[:2])
    for index in range(warmup):
        segmenter(frames[index % len(frames)], out=out)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < duration or count == 0:
        segmenter(frames[count % len(frames)], out=out)
        count += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return {"frames": count, "seconds": elapsed, "fps": count / elapsed, "cpu_seconds": cpu}


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
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from pixood_ros.image_conversion import array_to_image
        from pixood_ros.node.mailbox import LatestFrameMailbox
        from pixood_ros.node.pixood_node import PixoodNode

        self.outputs = outputs
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        overrides = [
            Parameter("model_path", value=str(model)),
            Parameter("input_qos", value=input_qos),
            Parameter("warmup", value=False),
        ]
        overrides += [Parameter(f"publish_{n}", value=n in outputs) for n in OUTPUT_NAMES]
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

        self.taken = 0
        self.node = PacedNode(
            "pixood_bench_node",
            context=self.context,
            parameter_overrides=overrides,
            segmenter_factory=lambda settings: segmenter,
        )
        self.tester = rclpy.create_node("pixood_bench_io", context=self.context)
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.tester.create_publisher(Image, "image", reliable)
        self.answered = threading.Condition()
        self.sent: dict[int, float] = {}
        self.arrivals: dict[str, list[tuple[float, int]]] = {name: [] for name in outputs}
        self.subscriptions = [
            self.tester.create_subscription(
                Image,
                f"/pixood_bench_node/{n}",
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
        self.executors = []
        for member in (self.node, self.tester):
            executor = SingleThreadedExecutor(context=self.context)
            executor.add_node(member)
            thread = threading.Thread(target=executor.spin, daemon=True)
            thread.start()
            self.executors.append((executor, thread))

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
        """Closed loop: the worker took every frame sent so far out of its mailbox."""
        return self.taken >= self.index

    def answered_up_to(self) -> int:
        """Newest frame index whose last output arrived (0 = none)."""
        last = self.arrivals[self.outputs[-1]]
        return last[-1][1] if last else 0

    def wait_answer(self, index: int, timeout: float) -> bool:
        with self.answered:
            return self.answered.wait_for(lambda: self.answered_up_to() >= index, timeout)

    def run(self, duration: float, rate: float, progress: Any = None) -> dict:
        """Feed the node for `duration` s after a warm-up; outputs/s counted in that window."""
        for _ in range(WARMUP_FRAMES):
            self.publish_next()
            if not self.wait_answer(self.index, 30.0):
                raise RuntimeError("the node did not answer a warm-up frame within 30 s")
        stats = self.node.channels[0].stats
        dropped_before = stats.snapshot().dropped
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
            if progress is not None:
                progress.update(min(duration, now - start) - progress.n)
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
            "outputs_received": counts,
            "fps": counts[self.outputs[-1]] / duration,
            "dropped_in_node": stats.snapshot().dropped - dropped_before,
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


def _sum_rounds(rounds: list[dict], extra: tuple[str, ...] = ()) -> dict:
    frames = sum(r["frames"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    cpu = sum(r["cpu_seconds"] for r in rounds)
    total = {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        # CPU of the whole process (all threads) per frame: less sensitive than fps to other
        # programs loading the machine; for the node it includes the measuring publisher and
        # subscriber.
        "cpu_ms_per_frame": 1e3 * cpu / frames if frames else None,
    }
    for key in extra:
        total[key] = sum(r[key] for r in rounds)
    return total


def run_benchmark(args: argparse.Namespace, segmenter: Any) -> dict:
    """Alternating engine and node rounds; totals, per-round figures and the ratio."""
    from tqdm import tqdm

    frames = make_frames(args.frames, args.height, args.width)
    outputs = tuple(n for n in OUTPUT_NAMES if not (args.no_overlay and n == "overlay"))
    share = args.duration / args.rounds
    engine_rounds: list[dict] = []
    node_rounds: list[dict] = []
    rig = NodeRig(segmenter, args.model, frames, args.encoding, args.input_qos, outputs)
    try:
        rig.start()
        with tqdm(
            total=round(2 * args.duration, 1),
            unit="s",
            desc="engine/node rounds",
            disable=args.no_progress,
            leave=False,
        ) as bar:
            for _ in range(args.rounds):
                engine_rounds.append(measure_engine(segmenter, frames, share))
                bar.update(share)
                with tqdm(total=share, disable=True) as inner:
                    node = rig.run(share, args.rate, inner)
                node["frames"] = node["outputs_received"][outputs[-1]]
                node_rounds.append(node)
                bar.update(share)
    finally:
        rig.close()
    engine = _sum_rounds(engine_rounds)
    node = _sum_rounds(node_rounds, ("published", "dropped_in_node"))
    latencies = [r["latency_ms_mean"] for r in node_rounds if r["latency_ms_mean"] is not None]
    node["latency_ms_mean"] = float(np.mean(latencies)) if latencies else None
    node["latency_ms_p95"] = max(
        (r["latency_ms_p95"] for r in node_rounds if r["latency_ms_p95"] is not None), default=None
    )
    node["outputs_received"] = {
        name: sum(r["outputs_received"][name] for r in node_rounds) for name in outputs
    }
    return {
        "model": str(args.model),
        "execution_provider": segmenter.active_provider,
        "size": [args.height, args.width],
        "encoding": args.encoding,
        "input_qos": args.input_qos,
        "ort_spin_wait": args.ort_spin_wait,
        "feeding": f"open loop {args.rate:g} Hz"
        if args.rate > 0
        else "closed loop (next frame when the worker took the previous one)",
        "outputs": list(outputs),
        "rounds": [
            {"engine_fps": e["fps"], "node_fps": n["fps"], "ratio": n["fps"] / e["fps"]}
            for e, n in zip(engine_rounds, node_rounds, strict=True)
        ],
        "engine": engine,
        "node": node,
        "engine_fps": engine["fps"],
        "node_fps": node["fps"],
        "ratio": node["fps"] / engine["fps"] if engine["fps"] else None,
        # Engine CPU per frame over node CPU per frame (whole process, measuring publisher and
        # subscriber included): what the ratio would be with the cores to ourselves, and much
        # steadier than `ratio` when other programs load the machine.
        "cpu_ratio": engine["cpu_ms_per_frame"] / node["cpu_ms_per_frame"]
        if node["cpu_ms_per_frame"]
        else None,
    }


def summary_line(result: dict) -> str:
    """One line for people: throughputs, the ratio and the CPU-based ratio."""
    engine, node = result["engine"], result["node"]
    cpu = result.get("cpu_ratio")
    return (
        f"engine {result['engine_fps']:.1f} fps, node {result['node_fps']:.1f} fps, ratio "
        f"{result['ratio']:.2f}; CPU per frame engine {engine['cpu_ms_per_frame']:.1f} ms, node "
        f"{node['cpu_ms_per_frame']:.1f} ms, cpu_ratio {cpu:.2f} "
        f"({node['dropped_in_node']} frames dropped in the node)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.model.is_file():
        return _error(f"model file not found: {args.model}")
    if args.width < 1 or args.height < 1 or args.frames < 1 or args.duration <= 0:
        return _error("--width, --height, --frames must be >= 1 and --duration > 0")
    if args.rate < 0 or args.rounds < 1:
        return _error("--rate must be >= 0 and --rounds >= 1")
    # A loopback benchmark: keep DDS discovery on this machine unless the user says otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # The allocator tuning of the node's own entry point (both sides run in this process).
    from pixood_ros.node.memory import keep_frame_buffers

    keep_frame_buffers()
    from pixood_ros.engine import ModelError, Segmenter

    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    try:
        segmenter = Segmenter(
            args.model,
            providers=providers,
            input_size=(args.height, args.width),
            spin_wait=args.ort_spin_wait,
        )
    except ModelError as error:
        return _error(str(error))
    print(
        f"{args.rounds} round(s) of engine and node, {args.duration:.1f} s each side in all, "
        f"on {segmenter.active_provider} ...",
        file=sys.stderr,
    )
    result = run_benchmark(args, segmenter)
    print(summary_line(result), file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
