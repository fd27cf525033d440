"""`python -m pixood_ros.demo` (`make demo`): the whole product on one laptop, in a few minutes.

1. renders synthetic road scenes with anomalies (`pixood-synth`, split `ood_val`),
2. writes them into a rosbag2 with ground truth (`pixood-make-bag`),
3. starts the REAL node (`pixood_node`) as a separate process with the shipped demo model,
4. replays the bag into it over ROS 2 at a rate the machine can serve and records everything the
   node publishes (`pixood-bag-eval --live --record`),
5. stops the node and scores the recorded outputs: report (metrics, throughput, latency), PR /
   ROC / histogram plots and an overlay video (camera | anomaly heat map | mask).

Everything lands in one folder (default `out/demo/`). ROS traffic stays on loopback in a
demo-specific ROS_DOMAIN_ID; the node process is stopped on every way out (errors, Ctrl-C).
The existing commands are called through their `main(argv)`, so the demo runs exactly what a
user would type.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pixood_ros.anomaly_modes import check_mode
from pixood_ros.bag import make_bag
from pixood_ros.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, fail, run_command
from pixood_ros.contract import NODE_NAMESPACE
from pixood_ros.demo.options import (
    MAX_AUTO_RATE_HZ,
    MIN_AUTO_RATE_HZ,
    PROG,
    DemoError,
    DemoOptions,
    build_parser,
    demo_options,
)

SPLIT = "ood_val"
NODE_NS = NODE_NAMESPACE
AUTO_RATE_LOAD = 0.35  # the node also decodes and publishes, the player records: leave room
PROBE_FRAMES = 4
START_TIME_S = 1_700_000_000.0  # fixed header stamps: the demo bag is reproducible
BUILD_HINT = (
    "build it with the commands in checkpoints/README.md (pixood-synth data/synth; "
    "pixood-train all --config config/train/synth_small.yaml; pixood-export "
    "experiments/synth_small/checkpoints/pixood -o checkpoints/pixood_demo.onnx)"
)

# What a demo run writes into OUT_DIR (everything else there is left alone).
DATA_DIR, BAG_DIR, REPLAY_DIR = "synth_data", "sample_bag", "replay"
NODE_LOG, VIDEO = "node.log", "overlay.mp4"
PLOTS = ("pr_curve.png", "roc_curve.png", "score_histogram.png")
PRODUCED = (DATA_DIR, BAG_DIR, REPLAY_DIR, NODE_LOG, VIDEO, "report.json", "report.md", *PLOTS)


class StepFailed(Exception):
    """A step of the pipeline failed; the message says which and why: exit 1."""


def find_model(model: Path) -> Path:
    """The model file as the node would find it (working directory, then the package share
    directory); DemoError with the build commands when it is nowhere."""
    candidates = [model]
    if not model.is_absolute():
        candidates.append(Path(sys.prefix) / "share" / "pixood_ros" / model)
        candidates.append(Path(__file__).resolve().parents[1] / model)  # source checkout
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise DemoError(f"model {model} not found; {BUILD_HINT}")


def prepare_out_dir(out_dir: Path) -> None:
    """Refuse a folder that holds something else; clear what a previous demo run left."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"output path {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = out_dir / "report.json"
    ours = set(PRODUCED)
    others = [p.name for p in out_dir.iterdir() if p.name not in ours]
    if previous.is_file():
        try:
            is_demo = json.loads(previous.read_text()).get("tool") == "pixood-demo"
        except (OSError, ValueError, AttributeError):
            is_demo = False
        if not is_demo:
            raise DemoError(f"{out_dir} holds a report.json of another tool; choose another --out")
    elif any((out_dir / name).exists() for name in ours) or others:
        listed = ", ".join(sorted(others)[:3] or sorted(n for n in ours if (out_dir / n).exists()))
        raise DemoError(f"{out_dir} is not empty ({listed}); choose another --out or empty it")
    for name in PRODUCED:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM / SIGHUP end the demo like Ctrl-C, so the node is stopped on those too."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _call(step: str, command: Callable[[list[str] | None], int], argv: list[str]) -> None:
    """Run an existing command's main(argv); its own one-line error is already printed."""
    try:
        code = command(argv)
    except SystemExit as exc:  # argparse-style errors of the called command
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):  # a caught Ctrl-C / SIGTERM: stop the node, end
        raise KeyboardInterrupt
    if code:
        raise StepFailed(f"{step} failed (exit code {code}, see the message above)")


class _Steps:
    """Numbered progress lines and the time each step took (for the report)."""

    def __init__(self, total: int) -> None:
        self.total, self.index, self.seconds = total, 0, {}
        self._name: str | None = None
        self._start = 0.0

    def start(self, name: str, text: str) -> None:
        self.finish()
        self.index += 1
        self._name, self._start = name, time.perf_counter()
        print(f"[{self.index}/{self.total}] {text}", flush=True)

    def finish(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = round(time.perf_counter() - self._start, 2)
            self._name = None


def probe_engine(
    model: Path, providers: list[str], frames_dir: Path, size: tuple[int, int]
) -> tuple[Any, float, str]:
    """(model info, frames per second, active provider) of the model in this process, on a few
    of the demo's own frames: it sets the replay rate and is the report's engine speed."""
    from pixood_ros.engine import ModelError, Segmenter
    from pixood_ros.frames import list_images, read_rgb

    try:
        engine = Segmenter(model, providers=providers, input_size=size)
    except ModelError as exc:
        raise DemoError(f"cannot use model {model}: {exc}") from exc
    images = [read_rgb(p) for p in list_images(frames_dir)[:PROBE_FRAMES]]
    start = time.perf_counter()
    for rgb in images:
        engine(rgb)
    fps = len(images) / (time.perf_counter() - start)
    return engine.info, fps, engine.active_provider


def run_demo(options: DemoOptions) -> dict[str, Any]:
    """Run every step; returns the report (also written to OUT_DIR)."""
    from pixood_ros.demo.report import build_report, write_report

    model = find_model(options.model)
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise DemoError(f"the demo needs rclpy (pip install -e '.[ros]'): {exc}") from exc
    prepare_out_dir(options.out_dir)
    steps = _Steps(6)
    started = time.perf_counter()
    data = _synthesise(options, steps)
    steps.start("probe", f"loading {model.name} and timing it in this process")
    size = (options.height, options.width)
    frames_dir = data / "leftImg8bit" / SPLIT / "synth"
    info, engine_fps, provider = probe_engine(model, options.providers, frames_dir, size)
    check_mode(options.anomaly_mode, info.anomaly_modes, model.name)
    rate = options.rate
    if rate is None:
        rate = min(MAX_AUTO_RATE_HZ, max(MIN_AUTO_RATE_HZ, AUTO_RATE_LOAD * engine_fps))
        rate = round(rate, 2)
    print(f"      engine {engine_fps:.1f} frames/s on {provider}; camera rate {rate:g} Hz")
    bag = options.out_dir / BAG_DIR
    steps.start("bag", f"writing the sample bag {bag}")
    _call(
        "pixood-make-bag",
        make_bag.main,
        ["--synth", str(data), "--split", SPLIT, "-o", str(bag), "--rate", f"{rate:g}",
         "--start-time", f"{START_TIME_S:.0f}", *_quiet(options)],
    )  # fmt: skip
    node, live = _replay(options, model, bag, rate, steps)
    steps.start("score", "drawing the video of the recorded node outputs")
    video = _video(options, bag, info, live)
    plots = _copy_plots(live, options.out_dir / REPLAY_DIR, options.out_dir)
    steps.finish()
    rep = build_report(
        options=options,
        model=model,
        info=info,
        rate=rate,
        engine=(engine_fps, provider),
        node=node,
        live=live,
        video=video,
        plots=plots,
        step_seconds=steps.seconds,
        total_s=time.perf_counter() - started,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_report(rep, options.out_dir)
    return rep


def _quiet(options: DemoOptions) -> list[str]:
    return [] if options.progress else ["--no-progress"]


def _synthesise(options: DemoOptions, steps: _Steps) -> Path:
    from pixood_ros.synth import cli as synth_cli

    data = options.out_dir / DATA_DIR
    steps.start("synth", f"rendering {options.frames} synthetic frames with anomalies")
    _call(
        "pixood-synth",
        synth_cli.main,
        [str(data), "--train", "0", "--val", "0", "--ood-val", str(options.frames),
         "--width", str(options.width), "--height", str(options.height),
         "--seed", str(options.seed), *_quiet(options)],
    )  # fmt: skip
    return data


def _replay(
    options: DemoOptions, model: Path, bag: Path, rate: float, steps: _Steps
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the node, replay the bag into it with `pixood-bag-eval --live --record` (which
    records and scores its outputs), stop it; (node facts, the live replay's report)."""
    from pixood_ros.bag import cli as bag_eval
    from pixood_ros.demo.node_process import NodeProcess, node_arguments, ros_environment

    replay, node_log = options.out_dir / REPLAY_DIR, options.out_dir / NODE_LOG
    camera = make_bag.DEFAULT_TOPIC
    size = (options.height, options.width)
    with ros_environment(options.domain_id) as env:
        node_args = node_arguments(
            model,
            camera,
            providers=options.providers,
            threshold=options.threshold,
            input_size=size,
        ) + ["-p", f"anomaly_mode:={options.anomaly_mode}"]
        node = NodeProcess(node_args, node_log, env)
        domain = options.domain_id
        steps.start("node", f"starting pixood_node (ROS_DOMAIN_ID {domain}, log {node_log})")
        with node:
            ready_s = node.wait_ready(f"{NODE_NS}/anomaly_score", camera, options.node_timeout)
            print(f"      node pid {node.pid} active after {ready_s:.1f} s")
            steps.start("replay", f"replaying {options.frames} frames into the node at {rate:g} Hz")
            live_args = [
                str(model), str(bag), "-o", str(replay), "--live", "--record",
                "--node-ns", NODE_NS, "--threshold", repr(options.threshold),
                "--timeout", f"{max(5.0, 3 / rate):g}",
                *options.scoring.argv(), *_quiet(options),
            ]  # fmt: skip
            _call("pixood-bag-eval --live", bag_eval.main, live_args)
    facts = {"command": node.command, "pid": node.pid, "exit": node.returncode, "ready_s": ready_s}
    return facts, json.loads((replay / "report.json").read_text())


def _video(options: DemoOptions, bag: Path, info: Any, live: dict[str, Any]) -> Any:
    from pixood_ros.demo.outputs import render_video

    labels = (make_bag.DEFAULT_GT_TOPIC, make_bag.DEFAULT_SEMANTIC_TOPIC)
    return render_video(
        bag,
        options.out_dir / REPLAY_DIR / "live_bag",
        (make_bag.DEFAULT_TOPIC, labels),
        NODE_NS,
        info,
        options.threshold,
        options.out_dir / VIDEO,
        options.video_fps,
        options.progress,
    )


def _copy_plots(live: dict[str, Any], replay: Path, out: Path) -> dict[str, str]:
    """The curves the live replay drew of the recorded outputs, next to the demo's report."""
    for name in live["plots"].values():
        shutil.copyfile(replay / name, out / name)
    return dict(live["plots"])


def _run(args: Any) -> int:
    from pixood_ros.demo.node_process import NodeError
    from pixood_ros.demo.report import print_summary

    options = demo_options(args)
    try:
        with _sigterm_as_interrupt():
            rep = run_demo(options)
    except (StepFailed, NodeError) as exc:
        return fail(PROG, str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return fail(PROG, "interrupted; the node was stopped", EXIT_INTERRUPTED)
    print_summary(rep, options.out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
