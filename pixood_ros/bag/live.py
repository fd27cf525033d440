"""`pixood-bag-eval --live`: replay a bag into a running pixood node over ROS 2 and measure what
the node really delivers: outputs received, drops and end-to-end latency (publish ▶ receive of the
output carrying the same header stamp), optionally recording the outputs into a bag and scoring
them against the bag's ground truth.

This is the only module of the bag tools that imports rclpy (only in live mode). Discovery is
kept on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST); the node must run in the same
ROS_DOMAIN_ID with its input remapped to the bag's image topic.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros import image_conversion
from pixood_ros.bag import bagio, report
from pixood_ros.bag.bag_input import BagDamaged, BagInput
from pixood_ros.bag.evaluate import (
    EXIT_RUNTIME_ERROR,
    EXIT_USER_ERROR,
    EvalOptions,
    EvalResult,
    UserError,
    _decode_labels,
    _resolve_gt_topics,
    choose_region,
    make_metrics,
)
from pixood_ros.bag.make_bag import DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC
from pixood_ros.bag.output_bag import OUTPUT_NAMES, output_topic
from pixood_ros.bag.pairing import pair_by_stamp
from pixood_ros.bag.scoring import EvalMetrics
from pixood_ros.contract import NODE_NAMESPACE
from pixood_ros.metrics import region as regions

LIVE_BAG_NAME = "live_bag"
SCORE = "anomaly_score"


@dataclass
class LiveOptions:
    node_ns: str = NODE_NAMESPACE
    rate: float = 1.0
    record: bool = False
    timeout: float = 5.0


@dataclass
class _Tally:
    """What came back from the node, keyed by the header stamp of the input frame."""

    published_at: dict[int, float] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    score_stamps: set[int] = field(default_factory=set)
    unexpected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending_scores: list[Any] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)  # outputs whose ground truth was unusable
    probe_seen: dict[int, set[str]] = field(default_factory=dict)  # probe stamp -> outputs seen


def _ros_environment() -> None:
    # never discover or send to other machines (team rule; a bag replay is a local experiment)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def run_live(options: EvalOptions, live: LiveOptions) -> EvalResult:
    if not live.rate > 0:
        raise UserError(f"--rate must be positive, got {live.rate}")
    if not live.timeout > 0:
        raise UserError(f"--timeout must be positive, got {live.timeout}")
    if options.max_frames is not None and options.max_frames <= 0:
        raise UserError(f"--max-frames must be positive, got {options.max_frames}")
    _ros_environment()
    try:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CompressedImage, Image
    except ImportError as exc:
        raise UserError(f"--live needs rclpy and sensor_msgs ({exc})") from exc

    bag = BagInput(options.bag)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = executor = None
    spinner = None
    metrics: EvalMetrics | None = None
    try:
        ood_topic, semantic_topic = _resolve_gt_topics(bag, options)
        label_topics = [t for t in (ood_topic, semantic_topic) if t]
        exclude = {DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC, *label_topics}
        topic = bag.choose_image_topic(options.topic, exclude)
        msgtype = bag.topic_types()[topic]
        ros_type = CompressedImage if msgtype == bagio.COMPRESSED_TYPE else Image
        region, class_names = _live_region(options, semantic_topic is not None)
        _prepare(options)
        metrics = make_metrics(options, region, num_classes=256)

        node = rclpy.create_node("pixood_bag_player", context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publisher = node.create_publisher(ros_type, topic, reliable)
        tally = _Tally()
        recorder = _Recorder(options.out_dir / LIVE_BAG_NAME, live.node_ns) if live.record else None

        def on_output(name: str, raw: bytes) -> None:
            # raw CDR bytes: only the header stamp is read here; deserialising five images per
            # frame in this one executor thread made the player, not the node, the bottleneck
            # (its backlog showed up as node latency and drops)
            now = time.perf_counter()
            stamp = cdr_header_stamp_ns(raw)
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
                        if recorder is not None:
                            tally.pending_scores.append(raw)
            if recorder is not None:
                recorder.write(name, stamp, raw)

        subscriptions = [
            node.create_subscription(
                Image,
                output_topic(live.node_ns, name),
                lambda raw, n=name: on_output(n, raw),
                reliable,
                raw=True,
            )
            for name in OUTPUT_NAMES
        ]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        _wait_for_node(node, publisher, subscriptions, topic, live)
        expected = {  # the outputs the node publishes
            name
            for name, sub in zip(OUTPUT_NAMES, subscriptions, strict=True)
            if sub.get_publisher_count() > 0
        }
        probe = next(iter(bag.messages([topic])), None)
        if probe is not None:
            probe_msg = deserialize_message(bytes(bagio.serialize(probe.msg)), ros_type)
            _probe_outputs(publisher, probe_msg, expected, tally, live.timeout)

        labels_by_stamp: dict[int, tuple[Any, Any]] = {}
        published = 0
        error: str | None = None
        exit_code = 0
        start_wall = time.perf_counter()
        first_stamp: int | None = None
        frames = pair_by_stamp(bag.messages([topic, *label_topics]), topic, label_topics, 0)
        try:
            for frame, labels in frames:
                if options.max_frames is not None and published >= options.max_frames:
                    break
                first_stamp = frame.stamp_ns if first_stamp is None else first_stamp
                due = start_wall + (frame.stamp_ns - first_stamp) / 1e9 / live.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ros_msg = deserialize_message(bytes(bagio.serialize(frame.msg)), ros_type)
                if live.record and ood_topic and labels.get(ood_topic) is not None:
                    semantic = labels.get(semantic_topic) if semantic_topic else None
                    labels_by_stamp[frame.stamp_ns] = (
                        labels[ood_topic].msg,
                        semantic.msg if semantic is not None else None,
                    )
                with tally.lock:
                    tally.published_at[frame.stamp_ns] = time.perf_counter()
                publisher.publish(ros_msg)
                published += 1
                # Scoring here would hold this process's GIL while the node's answers arrive and
                # inflate the latency we measure: score after the replay, unless the received
                # anomaly maps waiting for it grow too large for memory.
                if _pending_bytes(tally) > MAX_PENDING_BYTES:
                    _score_pending(tally, labels_by_stamp, metrics)
        except BagDamaged as exc:
            error, exit_code = str(exc), EXIT_USER_ERROR
        except Exception as exc:  # keep what was measured so far
            error = f"replay stopped at frame {published}: {bagio.one_line(exc)}"
            exit_code = EXIT_RUNTIME_ERROR
        replay_s = time.perf_counter() - start_wall
        _wait_for_outputs(tally, published, expected, live.timeout)
        _score_pending(tally, labels_by_stamp, metrics)
        if recorder is not None:
            recorder.close()
        summary = metrics.summary(class_names) if metrics.frames_with_ood_gt else {"notes": []}
        summary["notes"] += [f"output not scored: {why}" for why in tally.unscored]
    finally:
        if metrics is not None:
            metrics.close()
        if executor is not None:
            executor.shutdown()
        if spinner is not None:
            spinner.join(timeout=2)
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)
        bag.close()

    received = len(tally.score_stamps)
    if published and received == 0 and error is None:
        error = (
            f"the node published nothing on {output_topic(live.node_ns, SCORE)} for "
            f"{published} frames (wrong --node-ns, or its input is not remapped to {topic}?)"
        )
        exit_code = EXIT_USER_ERROR
    rep = {
        "tool": "pixood-bag-eval",
        "mode": "live",
        "partial": error is not None and published > 0,
        "error": error,
        "input": {"bag": str(options.bag), "topic": topic, "msgtype": msgtype},
        "node": {"namespace": live.node_ns, "playback_rate": live.rate},
        "frames": {
            "published": published,
            "outputs_received": dict(tally.received),
            "answered": received,
            "dropped": published - received,
            "drop_rate": (published - received) / published if published else None,
            "unexpected_outputs": tally.unexpected,
        },
        "speed": {
            "replay_s": replay_s,
            "publish_fps": published / replay_s if replay_s > 0 else None,
            "end_to_end_latency_ms": report.latency_summary(tally.latencies_ms),
        },
        "metrics": summary,
        "outputs": {"live_bag": str(options.out_dir / LIVE_BAG_NAME)} if live.record else {},
    }
    report.write_json(rep, options.out_dir)
    _write_live_markdown(rep, options.out_dir)
    return EvalResult(rep, exit_code, error)


def _live_region(
    options: EvalOptions, has_semantic_gt: bool
) -> tuple[regions.ScoredRegion, list[str]]:
    """The region (and class names) from the model file's eval labels: the node runs its own
    copy of the model; the file is only read for its metadata here."""
    name = regions.region_name(options.eval_region)
    if not options.model.is_file():
        if name == regions.EVAL_LABELS:
            raise UserError(f"--eval-region eval-labels needs the model file: {options.model}")
        reason = "requested (all)" if name == regions.ALL else "auto: no model file to read"
        return regions.ScoredRegion(regions.ALL, None, reason), []
    info = _model_info(options.model)
    return choose_region(options, info, has_semantic_gt), list(info.class_names)


def _model_info(path: Path) -> Any:
    """The model's metadata through a CPU session (no GPU memory, nothing run)."""
    import onnxruntime as ort

    from pixood_ros.engine.errors import ModelError
    from pixood_ros.engine.metadata import parse_model_info

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return parse_model_info(session.get_modelmeta().custom_metadata_map, path.name)
    except ModelError as exc:
        raise UserError(f"cannot use model: {exc}") from exc
    except Exception as exc:  # not an ONNX file, truncated, ...
        raise UserError(f"cannot read model {path}: {bagio.one_line(exc)}") from exc


def _prepare(options: EvalOptions) -> None:
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for path in (out / "report.json", out / LIVE_BAG_NAME):
        if path.exists() and not options.overwrite:
            raise UserError(f"{path} already exists (use --overwrite to replace the results)")
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _wait_for_node(
    node: Any, publisher: Any, subscriptions: list[Any], topic: str, live: LiveOptions
) -> None:
    """The node must subscribe to our topic and every output subscription of ours must be matched
    to its publisher before the replay starts: the node renders and publishes an output only
    while it has a subscriber, so a replay that starts during discovery loses first frames."""
    score_topic = output_topic(live.node_ns, SCORE)
    deadline = time.monotonic() + live.timeout
    while time.monotonic() < deadline:
        if (
            publisher.get_subscription_count() > 0
            and node.count_publishers(score_topic) > 0
            and all(
                sub.get_publisher_count() > 0
                for sub in subscriptions
                if node.count_publishers(sub.topic_name) > 0  # outputs the node has switched on
            )
        ):
            time.sleep(0.2)  # let the remaining discovery handshakes finish
            return
        time.sleep(0.05)
    raise UserError(
        f"no pixood node found within {live.timeout:g} s: nobody subscribes to {topic} or "
        f"publishes {score_topic} (is the node running and active, its input remapped to "
        f"{topic}, in ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')}?)"
    )


def cdr_header_stamp_ns(raw: bytes) -> int:
    """Header stamp (ns) of a serialized message whose first field is a std_msgs/Header
    (sensor_msgs/Image and friends): 4 bytes of CDR encapsulation (byte 1: 1 = little endian),
    then stamp.sec (int32) and stamp.nanosec (uint32)."""
    order = "little" if raw[1] & 1 else "big"
    sec = int.from_bytes(raw[4:8], order, signed=True)
    nanosec = int.from_bytes(raw[8:12], order)
    return sec * 1_000_000_000 + nanosec


PROBE_PERIOD_S = 0.5
PROBE_STAMP_NS = 1  # probe frames are stamped 1 ns, 2 ns, ... after the epoch: no camera's stamps


def _probe_outputs(
    publisher: Any, msg: Any, expected: set[str], tally: _Tally, timeout: float
) -> None:
    """Publish the first frame under probe stamps until one comes back on every `expected`
    output topic (those the node publishes).

    Discovery is asymmetric: our subscriptions can see the node's publishers before the node sees
    our subscriptions, and the node publishes an output only while it has a subscriber, so a
    replay that started right away lost the first frames on some topics. The probe also warms up
    the node (first-frame latency). Probe outputs are neither counted nor recorded."""
    deadline = time.monotonic() + timeout
    stamp = PROBE_STAMP_NS
    while time.monotonic() < deadline:
        with tally.lock:
            tally.probe_seen[stamp] = set()
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, stamp
        publisher.publish(msg)
        next_probe = time.monotonic() + PROBE_PERIOD_S
        while time.monotonic() < min(next_probe, deadline):
            with tally.lock:
                if any(expected <= seen for seen in tally.probe_seen.values()):
                    time.sleep(PROBE_PERIOD_S)  # let late answers to older probes drain
                    return
            time.sleep(0.02)
        stamp += 1


def _wait_for_outputs(tally: _Tally, published: int, expected: set[str], timeout: float) -> None:
    """Until every frame is answered on every expected output topic (the node publishes the score
    first, so stopping at the last score lost the last frame's other outputs), or no new output
    arrived for `timeout` seconds."""
    target = published * max(1, len(expected))
    last_count, last_change = -1, time.monotonic()
    while True:
        with tally.lock:
            count = sum(tally.received.get(name, 0) for name in expected or {SCORE})
        if count >= target:
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > timeout:
            return
        time.sleep(0.02)


MAX_PENDING_BYTES = 512 * 1024 * 1024


def _pending_bytes(tally: _Tally) -> int:
    with tally.lock:
        return sum(len(raw) for raw in tally.pending_scores)


def _score_pending(tally: _Tally, labels_by_stamp: dict[int, Any], metrics: EvalMetrics) -> None:
    """Score the anomaly maps received so far against their ground truth (record mode)."""
    with tally.lock:
        pending, tally.pending_scores = tally.pending_scores, []
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    for raw in pending:
        label_msgs = labels_by_stamp.pop(cdr_header_stamp_ns(raw), None)
        if label_msgs is None:
            continue
        msg = deserialize_message(raw, Image)
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        score = image_conversion.image_to_array(msg)
        ood_msg, semantic_msg = label_msgs
        try:
            labels = _decode_labels(ood_msg, score.shape, "OOD ground truth")
            semantic = None
            if semantic_msg is not None:
                semantic = _decode_labels(semantic_msg, score.shape, "semantic ground truth")
            metrics.add_ood(np.asarray(score, np.float32), labels, semantic)
        except ValueError as exc:
            tally.unscored.append(f"stamp {stamp}: {bagio.one_line(exc)}")


class _Recorder:
    """The node's outputs as received, into a rosbag2 (mcap) with their header stamps."""

    def __init__(self, path: Path, ns: str) -> None:
        self._writer = bagio.open_writer(path, "mcap")
        self._writer.open()
        self._lock = threading.Lock()
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
        with self._lock:
            self._writer.close()


def _write_live_markdown(rep: dict[str, Any], out_dir: Path) -> None:
    frames, speed = rep["frames"], rep["speed"]
    lat = speed["end_to_end_latency_ms"]
    fmt = report._fmt
    lines = [
        f"# pixood-bag-eval live report ({'PARTIAL' if rep['partial'] else 'complete'})",
        "",
    ]
    if rep["error"]:
        lines += [f"> **Error**: {rep['error']}", ""]
    lines += [
        f"- bag: `{rep['input']['bag']}`, topic `{rep['input']['topic']}` replayed at "
        f"{rep['node']['playback_rate']:g}x into the node at `{rep['node']['namespace']}`",
        f"- frames published {frames['published']}, answered {frames['answered']}, "
        f"dropped {frames['dropped']} (drop rate {fmt(frames['drop_rate'], 3)})",
        "",
        "| publish fps | latency p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        f"| {fmt(speed['publish_fps'], 1)} | {fmt(lat['p50'], 2)} | {fmt(lat['p90'], 2)} | "
        f"{fmt(lat['p99'], 2)} | {fmt(lat['max'], 2)} |",
    ]
    pixel = rep["metrics"].get("pixel")
    if pixel:
        lines += [
            "",
            f"Pixel metrics of the received outputs: AP {fmt(pixel.get('ap'))}, "
            f"AUROC {fmt(pixel.get('auroc'))}, FPR95 {fmt(pixel.get('fpr95'))}; scored pixels: "
            f"{report.region_text(rep['metrics'].get('region'))}",
        ]
    components = rep["metrics"].get("components")
    if components:
        lines += [
            "",
            f"Component metrics ({report.component_rule_text(components)}): sIoU "
            f"{fmt(components.get('siou'))}, PPV {fmt(components.get('ppv'))}, mean F1 "
            f"{fmt(components.get('f1_mean'))}",
        ]
    lines += [f"- note: {note}" for note in rep["metrics"].get("notes", [])]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
