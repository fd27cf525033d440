"""`pixood-bag-eval --live`: replay a bag into a running pixood node over ROS 2 and measure what
the node really delivers: outputs received, drops and end-to-end latency (publish ▶ receive of the
output carrying the same header stamp), optionally recording the outputs into a bag and scoring
them against the bag's ground truth (`pixood_ros.bag.recording`).

The frames are published as the bag stores them (serialized bytes) and the outputs are received
as bytes, of which only the header stamp is read (`pixood_ros.bag.cdr`): the player must not be
the bottleneck it measures. This is the only module of the bag tools that imports rclpy (only in
live mode). Discovery is kept on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST); the node
must run in the same ROS_DOMAIN_ID with its input remapped to the bag's image topic.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pixood_ros import interruption
from pixood_ros.bag import report
from pixood_ros.bag.bag_input import BagInput
from pixood_ros.bag.errors import BagDamaged
from pixood_ros.bag.ground_truth import camera_topic, resolve_gt_topics
from pixood_ros.bag.live_player import SCORE, Player
from pixood_ros.bag.options import EvalOptions, LiveOptions
from pixood_ros.bag.output_bag import output_topic
from pixood_ros.bag.paths import check_bag, check_model, prepare_out_dir
from pixood_ros.bag.recording import Recorder, recorded_frames, score_recording
from pixood_ros.bag.results import EvalResult
from pixood_ros.bag.scoring import make_metrics, scored_region
from pixood_ros.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError, one_line
from pixood_ros.metrics import region as regions

LIVE_BAG_NAME = "live_bag"
NO_MODEL_CLASSES = 256  # semantic ids fit a byte; without the model file they are not scored


@dataclass
class _Replay:
    """What the replay itself measured."""

    published: int = 0
    replay_s: float = 0.0
    error: str | None = None
    exit_code: int = EXIT_OK


def run_live(options: EvalOptions, live: LiveOptions) -> EvalResult:
    """Replay `options.bag` into the node; raises UserError / BagError for problems found up
    front (no node, no rclpy, bad options)."""
    check_model(options.model, options.bag, required=False)
    check_bag(options.bag)
    # never discover or send to other machines (a bag replay is a local experiment)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    Player.check_available()
    bag = BagInput(options.bag)
    try:
        labels = resolve_gt_topics(bag, options.gt)
        topic = camera_topic(bag, options.topic, [t for t in labels if t])
        msgtype = bag.topic_types()[topic]
        region, class_names = _live_region(options, labels[1] is not None)
        prepare_out_dir(options.out_dir, ["report.json", LIVE_BAG_NAME], options.overwrite)
        recorder = Recorder(options.out_dir / LIVE_BAG_NAME, live.node_ns) if live.record else None
        try:
            with Player(topic, msgtype, live, recorder) as player:
                replay = _replay(bag, topic, player, live, options.max_frames)
                tally = player.tally
        finally:
            lost = _finish_recording(recorder)
    finally:
        bag.close()
    if lost is not None:
        if replay.error is None:
            replay.error, replay.exit_code = lost, EXIT_FAILED
        live = replace(live, record=False)  # nothing left to score or to list
    summary, plots = _score(options, live, topic, labels, region, class_names)
    rep = _live_report(options, live, topic, msgtype, replay, tally, summary, plots)
    report.write_json(rep, options.out_dir)
    report.write_live_markdown(rep, options.out_dir)
    return EvalResult(rep, replay.exit_code, replay.error)


def _finish_recording(recorder: Recorder | None) -> str | None:
    """Close the recording; one that cannot be finished (disk full) is removed, as nothing could
    read it, and the reason returned."""
    if recorder is None:
        return None
    try:
        with interruption.deferred():
            recorder.close()
    except OSError as exc:
        shutil.rmtree(recorder.path, ignore_errors=True)
        return f"recording could not be finished, removed: {one_line(exc)}"
    return None


def _score(
    options: EvalOptions,
    live: LiveOptions,
    topic: str,
    labels: tuple[str | None, str | None],
    region: regions.ScoredRegion,
    class_names: list[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """(metrics summary, plots) of the recorded outputs (--record, with OOD ground truth)."""
    num_classes = len(class_names) or NO_MODEL_CLASSES
    metrics = make_metrics(options.scoring, options.threshold, region, num_classes, options.out_dir)
    with metrics:
        notes: list[str] = []
        if live.record and labels[0] is not None:
            recording = options.out_dir / LIVE_BAG_NAME
            frames = recorded_frames(options.bag, recording, topic, labels, live.node_ns)
            with suppress(BagDamaged):  # the replay stopped at the same damage and says so
                notes = score_recording(frames, metrics, semantic=bool(class_names)).unscored
        if not metrics.frames_with_ood_gt:
            return {"notes": [f"output not scored: {why}" for why in notes]}, {}
        summary = metrics.summary(class_names)
        summary["notes"] += [f"output not scored: {why}" for why in notes]
        return summary, report.write_plots(metrics, options.out_dir)


def _replay(
    bag: BagInput, topic: str, player: Player, live: LiveOptions, max_frames: int | None
) -> _Replay:
    """Find the node, warm it up, then publish every frame at its recorded time (scaled by
    `live.rate`) and wait for the last outputs."""
    player.wait_for_node(live.timeout)
    expected = player.expected_outputs()
    first = next(iter(bag.messages([topic])), None)
    if first is not None:
        player.probe(first.raw, expected, live.timeout)
    replay = _Replay()
    start = time.perf_counter()
    first_stamp: int | None = None
    try:
        for frame in bag.messages([topic]):
            if max_frames is not None and replay.published >= max_frames:
                break
            first_stamp = frame.stamp_ns if first_stamp is None else first_stamp
            delay = start + (frame.stamp_ns - first_stamp) / 1e9 / live.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            player.publish(frame.stamp_ns, frame.raw)
            replay.published += 1
    except BagDamaged as exc:
        replay.error, replay.exit_code = str(exc), EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: report what was replayed so far
        replay.error = f"{interruption.describe(exc)} after {replay.published} frames"
        replay.exit_code = interruption.exit_code(exc)
    except Exception as exc:  # keep what was measured so far
        replay.error = f"replay stopped at frame {replay.published}: {one_line(exc)}"
        replay.exit_code = EXIT_FAILED
    replay.replay_s = time.perf_counter() - start
    player.wait_for_outputs(replay.published, expected, live.timeout)
    answered = len(player.tally.score_stamps)
    if replay.published and answered == 0 and replay.error is None:
        replay.error = (
            f"the node published nothing on {output_topic(live.node_ns, SCORE)} for "
            f"{replay.published} frames (wrong --node-ns, or its input is not remapped to "
            f"{topic}?)"
        )
        replay.exit_code = EXIT_USAGE
    return replay


def _live_region(
    options: EvalOptions, has_semantic_gt: bool
) -> tuple[regions.ScoredRegion, list[str]]:
    """The region (and class names) from the model file's eval labels: the node runs its own
    copy of the model; the file is only read for its metadata here."""
    name = regions.region_name(options.scoring.eval_region)
    if not options.model.is_file():
        if name == regions.EVAL_LABELS:
            raise UserError(f"--eval-region eval-labels needs the model file: {options.model}")
        reason = "requested (all)" if name == regions.ALL else "auto: no model file to read"
        return regions.ScoredRegion(regions.ALL, None, reason), []
    info = _model_info(options.model)
    region = scored_region(options.scoring.eval_region, info, has_semantic_gt)
    return region, list(info.class_names)


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
        raise UserError(f"cannot read model {path}: {one_line(exc)}") from exc


def _live_report(
    options: EvalOptions,
    live: LiveOptions,
    topic: str,
    msgtype: str,
    replay: _Replay,
    tally: Any,
    metrics: dict[str, Any],
    plots: dict[str, str],
) -> dict[str, Any]:
    published, received = replay.published, len(tally.score_stamps)
    return {
        "tool": "pixood-bag-eval",
        "mode": "live",
        "partial": replay.error is not None and published > 0,
        "error": replay.error,
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
            "replay_s": replay.replay_s,
            "publish_fps": published / replay.replay_s if replay.replay_s > 0 else None,
            "end_to_end_latency_ms": report.latency_summary(tally.latencies_ms),
        },
        "metrics": metrics,
        "plots": plots,
        "outputs": {"live_bag": str(options.out_dir / LIVE_BAG_NAME)} if live.record else {},
    }
