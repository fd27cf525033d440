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
inference thread has taken the previous one out of its mailbox and its publisher thread the
result before: the node always finds its next frame waiting (it arrives while the previous one
is processed) but never receives frames it would only drop (on a small machine, receiving and
discarding surplus frames steals CPU from the model and would be charged to the node).
`--rate` publishes open-loop at a fixed rate instead, like a camera. The node side is
`node_rig.NodeRig`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros import durable
from pixood_ros.cli import (
    OneLineParser,
    UserError,
    argv_or_sys,
    count,
    non_negative_float,
    positive_int,
    progress_parent,
    run_command,
    split_names,
)
from pixood_ros.contract import NODE_OUTPUTS
from pixood_ros.engine.threads import intra_op_threads
from pixood_ros.render.compressed import CODECS, COMPRESSED_SUFFIX
from pixood_ros.speed.node_rig import WARMUP_FRAMES, NodeRig

PROG = "pixood_ros.speed.node_vs_engine"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Measure pixood node throughput against raw engine throughput (same model, "
        "same frames, same execution provider, alternating rounds) and print both, their ratio "
        "and latency as JSON.",
        parents=[progress_parent()],
    )
    parser.add_argument("model", type=Path, help="PixOOD ONNX model file")
    parser.add_argument("--width", type=positive_int, default=640, help="frame width (default 640)")
    parser.add_argument(
        "--height", type=positive_int, default=480, help="frame height (default 480)"
    )
    parser.add_argument(
        "--frames",
        type=positive_int,
        default=8,
        help="distinct random frames cycled through (default 8)",
    )
    parser.add_argument(
        "--encoding",
        choices=("rgb8", "bgr8"),
        default="rgb8",
        help="encoding of the published frames (default rgb8)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        default=6.0,
        help="measured seconds per side (engine, node), split over the rounds (default 6)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="alternating engine/node rounds; more rounds cancel load drift better (default 3)",
    )
    parser.add_argument(
        "--rate",
        type=non_negative_float,
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
    parser.add_argument("--no-overlay", action="store_true", help="do not publish ~/overlay")
    parser.add_argument(
        "--compressed",
        action="store_true",
        help="subscribe to the compressed forms of overlay (JPEG), mask and semantic (PNG) "
        "instead of the raw ones, as a viewer over a network would",
    )
    parser.add_argument(
        "--providers",
        type=split_names,
        default=["cpu"],
        help="comma-separated execution providers, e.g. tensorrt,cuda,cpu (default cpu)",
    )
    parser.add_argument(
        "--threads",
        type=count,
        default=0,
        help="ONNX Runtime intra-op threads of the one session both sides use; 0 (default) = "
        "the node's default: the cores this process may run on less one for the publisher",
    )
    parser.add_argument(
        "--ort-spin-wait",
        action="store_true",
        help="let ONNX Runtime's threads busy-wait (off by default, like the node's "
        "ort_spin_wait parameter; both sides always use the same session)",
    )
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    return parser


def _positive_seconds(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


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
    outputs = tuple(
        n + COMPRESSED_SUFFIX if args.compressed and n in CODECS else n
        for n in NODE_OUTPUTS
        if not (args.no_overlay and n == "overlay")
    )
    engine_rounds, node_rounds = _measure_rounds(args, segmenter, outputs)
    engine = _sum_rounds(engine_rounds)
    node = _node_totals(node_rounds, outputs)
    threads = intra_op_threads(args.threads)
    return {
        "model": str(args.model),
        "execution_provider": segmenter.active_provider,
        # one ONNX Runtime session serves both sides, so both run at this thread count
        "intra_op_threads": threads,
        "size": [args.height, args.width],
        "encoding": args.encoding,
        "input_qos": args.input_qos,
        "ort_spin_wait": args.ort_spin_wait,
        "feeding": f"open loop {args.rate:g} Hz"
        if args.rate > 0
        else "closed loop (next frame when the model took the previous one and the publisher "
        "the one before)",
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
        # Engine CPU per frame over the busier of the node's two threads: the throughput ratio
        # when each thread has a core of its own (the pipeline's bound, steady under load);
        # None where the model's work is not all in the inference thread (see _pipeline_ratio).
        "pipeline_ratio": _pipeline_ratio(engine, node, segmenter.active_provider, threads),
    }


def _measure_rounds(
    args: argparse.Namespace, segmenter: Any, outputs: tuple[str, ...]
) -> tuple[list[dict], list[dict]]:
    """`args.rounds` engine rounds and node rounds in turn, `args.duration` s per side in all."""
    from tqdm import tqdm

    frames = make_frames(args.frames, args.height, args.width)
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
                node = rig.run(share, args.rate)
                node["frames"] = node["outputs_received"][outputs[-1]]
                node_rounds.append(node)
                bar.update(share)
    finally:
        rig.close()
    return engine_rounds, node_rounds


def _node_totals(node_rounds: list[dict], outputs: tuple[str, ...]) -> dict:
    node = _sum_rounds(node_rounds, ("published", "dropped_in_node", "results_dropped"))
    # CPU per frame of the node's inference thread (decode + model) and publisher thread
    # (anomaly mode, rendering, compression, hand-over to DDS): with a core for each, the node
    # runs at the pace of the slower one, whatever else loads the machine.
    node["stage_cpu_ms_per_frame"] = {
        stage: 1e3 * sum(r["stage_cpu_seconds"][stage] for r in node_rounds) / node["frames"]
        if node["frames"]
        else None
        for stage in node_rounds[0]["stage_cpu_seconds"]
    }
    latencies = [r["latency_ms_mean"] for r in node_rounds if r["latency_ms_mean"] is not None]
    node["latency_ms_mean"] = float(np.mean(latencies)) if latencies else None
    node["latency_ms_p95"] = max(
        (r["latency_ms_p95"] for r in node_rounds if r["latency_ms_p95"] is not None), default=None
    )
    node["outputs_received"] = {
        name: sum(r["outputs_received"][name] for r in node_rounds) for name in outputs
    }
    return node


def _pipeline_ratio(engine: dict, node: dict, provider: str, threads: int) -> float | None:
    """None unless the model runs on the CPU in the inference thread alone (one intra-op
    thread): only then does that thread's CPU time hold all of the model's work."""
    stages = [v for v in node["stage_cpu_ms_per_frame"].values() if v]
    if provider != "CPUExecutionProvider" or threads != 1 or not stages:
        return None
    return engine["cpu_ms_per_frame"] / max(stages)


def summary_line(result: dict) -> str:
    """One line for people: throughputs and their ratio, then the CPU-based ratios."""
    engine, node = result["engine"], result["node"]
    stages = node["stage_cpu_ms_per_frame"]
    pipeline = result["pipeline_ratio"]
    return (
        f"{result['intra_op_threads']} ONNX Runtime thread(s) on both sides at "
        f"{result['size'][1]}x{result['size'][0]}: "
        f"engine {result['engine_fps']:.1f} fps, node {result['node_fps']:.1f} fps, ratio "
        f"{result['ratio']:.2f}; CPU per frame engine {engine['cpu_ms_per_frame']:.1f} ms, node "
        f"{node['cpu_ms_per_frame']:.1f} ms in all (cpu_ratio {result['cpu_ratio']:.2f}), "
        f"inference thread {stages['inference'] or 0:.1f} ms, publisher thread "
        f"{stages['publishing'] or 0:.1f} ms (pipeline_ratio "
        f"{'n/a' if pipeline is None else f'{pipeline:.2f}'}); "
        f"{node['dropped_in_node']} frames dropped in the node"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv_or_sys(argv))
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if not args.model.is_file():
        raise UserError(f"model file not found: {args.model}")
    # A loopback benchmark: keep DDS discovery on this machine unless the user says otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # The allocator tuning of the node's own entry point (both sides run in this process).
    from pixood_ros.node.memory import keep_frame_buffers

    keep_frame_buffers()
    from pixood_ros.engine import Segmenter

    segmenter = Segmenter(
        args.model,
        providers=args.providers,
        input_size=(args.height, args.width),
        intra_op_threads=intra_op_threads(args.threads),
        spin_wait=args.ort_spin_wait,
    )
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
        durable.write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
