"""The offline replay's frame loop, pipelined (`pixood_ros.bag.pipeline`): this thread reads and
decodes frame n+1 while a worker runs the engine and the anomaly mode on frame n, another writes
the outputs (output bag, video) of frame n-1 and a last one scores frame n-2. Every frame goes
through every stage in bag order, so the outputs and metrics are the sequential loop's.

A failure part-way (damaged bag, engine crash, full disk) or Ctrl-C / SIGTERM stops the reading;
the frames read before it are finished, so the run keeps what was evaluated so far.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
from tqdm import tqdm

from pixood_ros import image_conversion, interruption
from pixood_ros.anomaly_modes import anomaly_map
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.bag.errors import BagDamaged
from pixood_ros.bag.pairing import PairingStats, pair_by_stamp
from pixood_ros.bag.pipeline import Pipeline, StageFailed
from pixood_ros.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, one_line
from pixood_ros.frames import SourceError

# Threads the loop keeps busy beside the engine's: this one decoding, the writer, the scorer.
STAGES_BESIDE_ENGINE = 3


@dataclass
class Run:
    """Counters of one run (what the report says about frames and speed)."""

    read: int = 0
    evaluated: int = 0
    without_gt: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    engine_s: float = 0.0
    wall_s: float = 0.0
    first_stamp: int | None = None
    last_stamp: int | None = None
    pairing: PairingStats = field(default_factory=PairingStats)
    error: str | None = None
    exit_code: int = EXIT_OK
    partial: bool = False

    def fail(self, index: int, stamp_ns: int, reason: str) -> None:
        self.failed.append({"index": index, "stamp_ns": stamp_ns, "reason": reason})

    def stop(self, error: str, exit_code: int) -> None:
        self.error, self.exit_code, self.partial = error, exit_code, True


@dataclass
class _Frame:
    """One frame on its way through the stages; `problem` ends its way (recorded in order)."""

    index: int
    message: BagMessage
    labels: dict[str, BagMessage | None]
    rgb: np.ndarray | None = None
    result: Any = None
    engine_s: float = 0.0
    problem: str | None = None


def replay(s: Any) -> Run:
    """Every frame of the session `s` (offline._Session) through the engine, into the outputs
    and the metrics."""
    options, bag, topic, labels = s.options, s.bag, s.topic, s.labels
    run = Run(partial=bag.salvaged)
    total = bag.message_counts().get(topic, 0)
    if options.max_frames is not None:
        total = min(total, options.max_frames)
    stream = bag.messages([topic, *labels.topics])
    frames: Iterator = islice(
        pair_by_stamp(stream, topic, labels.topics, options.gt.tolerance_ns, stats=run.pairing),
        options.max_frames,
    )
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", desc="evaluate", disable=not options.progress)
    pipeline = Pipeline(
        [lambda f: _infer(s, f), lambda f: _write(s, f), lambda f: _score(s, run, f)]
    )
    try:
        try:
            for message, found in frames:
                bar.update()
                pipeline.put(_decode(run, message, found))
        finally:
            pipeline.finish()  # the frames read so far go through every stage
    except BagDamaged as exc:
        run.stop(str(exc), EXIT_USAGE)
    except KeyboardInterrupt as exc:
        done = f"{interruption.describe(exc)} after {run.read} frames"
        run.stop(done, interruption.exit_code(exc))
    except StageFailed:
        pass  # reported below
    except Exception as exc:  # reading failed in an unforeseen way: keep what we have
        run.stop(f"evaluation stopped at frame {run.read}: {one_line(exc)}", EXIT_FAILED)
    finally:
        bar.close()
        run.wall_s = time.perf_counter() - start
    if pipeline.failure is not None and run.error is None:  # engine crash, disk full, ...
        frame, exc = pipeline.failure
        run.stop(f"evaluation stopped at frame {frame.index + 1}: {one_line(exc)}", EXIT_FAILED)
    return run


def _decode(run: Run, message: BagMessage, found: dict[str, BagMessage | None]) -> _Frame:
    frame = _Frame(run.read, message, found)
    run.read += 1
    run.first_stamp = message.stamp_ns if run.first_stamp is None else run.first_stamp
    run.last_stamp = message.stamp_ns
    try:
        frame.rgb = image_conversion.message_to_rgb(message.msg)
    except image_conversion.BadImage as exc:
        frame.problem = f"undecodable frame ({exc})"
    return frame


def _infer(s: Any, frame: _Frame) -> _Frame:
    from pixood_ros.engine import InputError

    if frame.problem is not None:
        return frame
    t0 = time.perf_counter()
    try:
        raw = s.engine(frame.rgb)
    except InputError as exc:
        frame.problem = f"engine refused the frame ({exc})"
        return frame
    frame.engine_s = time.perf_counter() - t0
    # what the node publishes: the anomaly mode's score in place of the raw one
    score = anomaly_map(raw, s.options.anomaly_mode, s.engine.info.eval_labels)
    frame.result = dataclasses.replace(raw, anomaly_score=score)
    return frame


def _write(s: Any, frame: _Frame) -> _Frame:
    if frame.problem is None:
        s.outputs.write(frame.message, frame.rgb, frame.result, s.options.threshold)
    return frame


def _score(s: Any, run: Run, frame: _Frame) -> None:
    if frame.problem is not None:
        run.fail(frame.index, frame.message.stamp_ns, frame.problem)
        return
    run.engine_s += frame.engine_s
    run.latencies_ms.append(frame.engine_s * 1e3)
    s.metrics.add_scores(frame.result.anomaly_score)
    try:
        s.labels.score(s.metrics, run, frame.index, frame.labels, frame.result)
    except (ValueError, SourceError, image_conversion.BadImage) as exc:
        reason = f"ground truth unusable ({one_line(exc)})"
        run.fail(frame.index, frame.message.stamp_ns, reason)
        return
    run.evaluated += 1
