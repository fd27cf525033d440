"""Node throughput vs raw engine throughput, same model and frames, one run.

  python -m pixood_ros.node.bench MODEL [--width 640 --height 480 --duration 5 --json out.json]

First the `Segmenter` alone is timed on the frames; then publisher -> pixood node -> subscriber
run on loopback in this process (the node shares the already loaded model), publishing faster
than the engine can go, and the outputs per second are counted. The ratio says how much the ROS
plumbing (decode, message conversion, DDS transport, output images) costs on top of the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_NAMES = ("anomaly_score", "anomaly_mask", "semantic", "confidence", "overlay")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixood_ros.node.bench",
        description="Measure pixood node throughput against raw engine throughput (same model, "
        "same frames) and print both, their ratio and latency as JSON.",
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file")
    parser.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="frame height (default 480)")
    parser.add_argument(
        "--frames", type=int, default=8, help="distinct random frames cycled through (default 8)"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per measurement (default 5)"
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
        help="publish rate in Hz; 0 = 1.5x the measured engine rate, to saturate the node",
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
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    return parser


def _error(message: str) -> int:
    print(f"pixood node bench: error: {message}", file=sys.stderr)
    return 2


def make_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Random RGB frames (fixed seed, so runs are comparable)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def measure_engine(segmenter: Any, frames: list[np.ndarray], duration: float) -> dict:
    """Frames per second of the bare Segmenter call."""
    segmenter(frames[0])  # warm
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration or count == 0:
        segmenter(frames[count % len(frames)])
        count += 1
    elapsed = time.perf_counter() - start
    return {"frames": count, "seconds": elapsed, "fps": count / elapsed}


def measure_node(
    segmenter: Any,
    model: Path,
    frames: list[np.ndarray],
    duration: float,
    rate: float,
    encoding: str,
    input_qos: str,
    outputs: tuple[str, ...],
) -> dict:
    """Outputs per second of the node fed at `rate` Hz, plus drops and latency."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from tqdm import tqdm

    from pixood_ros.image_conversion import array_to_image
    from pixood_ros.node.pixood_node import PixoodNode

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [
        Parameter("model_path", value=str(model)),
        Parameter("input_qos", value=input_qos),
        Parameter("warmup", value=False),
    ]
    overrides += [Parameter(f"publish_{n}", value=n in outputs) for n in OUTPUT_NAMES]
    node = PixoodNode(
        "pixood_bench_node",
        context=context,
        parameter_overrides=overrides,
        segmenter_factory=lambda settings: segmenter,
    )
    tester = rclpy.create_node("pixood_bench_io", context=context)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    publisher = tester.create_publisher(Image, "image", reliable)
    lock = threading.Lock()
    sent: dict[int, float] = {}
    latencies: list[float] = []
    received = {name: 0 for name in outputs}

    def on_output(name: str, msg: Image) -> None:
        now = time.perf_counter()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with lock:
            received[name] += 1
            if name == outputs[0] and stamp in sent:
                latencies.append(now - sent[stamp])

    subscriptions = [
        tester.create_subscription(
            Image, f"/pixood_bench_node/{n}", lambda m, n=n: on_output(n, m), reliable
        )
        for n in outputs
    ]
    executors = []
    for member in (node, tester):
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(member)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        executors.append((executor, thread))
    try:
        if not node.autostart():
            raise RuntimeError("the node did not activate (see its log)")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not (
            publisher.get_subscription_count() > 0
            and all(s.get_publisher_count() > 0 for s in subscriptions)
        ):
            time.sleep(0.05)
        messages = [
            array_to_image(
                f if encoding == "rgb8" else np.ascontiguousarray(f[:, :, ::-1]), encoding
            )
            for f in frames
        ]
        period = 1.0 / rate
        start = time.perf_counter()
        index = 0
        with tqdm(total=round(duration, 1), unit="s", desc="node", leave=False) as bar:
            while (elapsed := time.perf_counter() - start) < duration:
                msg = messages[index % len(messages)]
                index += 1
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(index, 1_000_000_000)
                with lock:
                    sent[index] = time.perf_counter()
                publisher.publish(msg)
                bar.update(round(elapsed, 1) - bar.n)
                next_time = start + index * period
                time.sleep(max(0.0, next_time - time.perf_counter()))
        time.sleep(min(2.0, 5 * period + 0.5))  # let the last frame come out
        snap = node.channels[0].stats.snapshot()
        with lock:
            latency = np.array(latencies) * 1e3
            counts = dict(received)
        return {
            "published": index,
            "publish_rate_hz": index / duration,
            "outputs_received": counts,
            "fps": counts[outputs[0]] / duration,
            "dropped_in_node": snap.dropped,
            "latency_ms_mean": float(latency.mean()) if latency.size else None,
            "latency_ms_p95": float(np.percentile(latency, 95)) if latency.size else None,
        }
    finally:
        if node.lifecycle_state in ("active", "inactive"):
            node.trigger_shutdown()
        for executor, _ in executors:
            executor.shutdown(timeout_sec=2.0)
        rclpy.shutdown(context=context)
        for _, thread in executors:
            thread.join(timeout=5.0)
        node.destroy_node()
        tester.destroy_node()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.model.is_file():
        return _error(f"model file not found: {args.model}")
    if args.width < 1 or args.height < 1 or args.frames < 1 or args.duration <= 0:
        return _error("--width, --height, --frames must be >= 1 and --duration > 0")
    if args.rate < 0:
        return _error("--rate must be >= 0")
    # A loopback benchmark: keep DDS discovery on this machine unless the user says otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from pixood_ros.engine import ModelError, Segmenter

    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    try:
        segmenter = Segmenter(args.model, providers=providers, input_size=(args.height, args.width))
    except ModelError as error:
        return _error(str(error))
    frames = make_frames(args.frames, args.height, args.width)
    print(f"engine: {args.duration:.1f} s on {segmenter.active_provider} ...", file=sys.stderr)
    engine = measure_engine(segmenter, frames, args.duration)
    rate = args.rate or min(1000.0, 1.5 * engine["fps"])
    outputs = tuple(n for n in OUTPUT_NAMES if not (args.no_overlay and n == "overlay"))
    print(f"node: {args.duration:.1f} s, publishing at {rate:.1f} Hz ...", file=sys.stderr)
    node = measure_node(
        segmenter, args.model, frames, args.duration, rate, args.encoding, args.input_qos, outputs
    )
    result = {
        "model": str(args.model),
        "execution_provider": segmenter.active_provider,
        "size": [args.height, args.width],
        "encoding": args.encoding,
        "input_qos": args.input_qos,
        "outputs": list(outputs),
        "engine": engine,
        "node": node,
        "engine_fps": engine["fps"],
        "node_fps": node["fps"],
        "ratio": node["fps"] / engine["fps"] if engine["fps"] else None,
    }
    print(
        f"engine {engine['fps']:.1f} fps, node {node['fps']:.1f} fps, "
        f"ratio {result['ratio']:.2f} ({node['dropped_in_node']} frames dropped in the node)",
        file=sys.stderr,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
