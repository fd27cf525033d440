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

import argparse
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pixood_ros.bag.scoring import BEST_F1, COMPONENT_THRESHOLDS, add_scoring_arguments
from pixood_ros.contract import NODE_NAMESPACE
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

DEFAULT_MODEL = Path("checkpoints/pixood_demo.onnx")
DEFAULT_OUT = Path("out/demo")
DEFAULT_FRAMES = 60
DEFAULT_DOMAIN_ID = 101  # the tests' domains are 1..100 (test/conftest.py)
DEFAULT_SEED = 2024  # not the training data's seed: the demo shows unseen scenes
SPLIT = "ood_val"
NODE_NS = NODE_NAMESPACE
MAX_AUTO_RATE_HZ = 5.0
MIN_AUTO_RATE_HZ = 0.5
AUTO_RATE_LOAD = 0.35  # the node also decodes and publishes, the player records: leave room
PROBE_FRAMES = 4
START_TIME_S = 1_700_000_000.0  # fixed header stamps: the demo bag is reproducible
BUILD_HINT = (
    "build it with the commands in checkpoints/README.md (pixood-synth data/synth; "
    "pixood-train all --config config/train/synth_small.yaml; pixood-export "
    "experiments/synth_small/checkpoints/pixood -o checkpoints/pixood_demo.onnx)"
)
EXIT_USER_ERROR = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# What a demo run writes into OUT_DIR (everything else there is left alone).
DATA_DIR, BAG_DIR, REPLAY_DIR = "synth_data", "sample_bag", "replay"
NODE_LOG, VIDEO = "node.log", "overlay.mp4"
PLOTS = ("pr_curve.png", "roc_curve.png", "score_histogram.png")
PRODUCED = (DATA_DIR, BAG_DIR, REPLAY_DIR, NODE_LOG, VIDEO, "report.json", "report.md", *PLOTS)


class DemoError(Exception):
    """Something the user can fix (bad option, missing model, occupied folder): exit 2."""


class StepFailed(Exception):
    """A step of the pipeline failed; the message says which and why: exit 1."""


@dataclass
class DemoOptions:
    model: Path = DEFAULT_MODEL
    out_dir: Path = DEFAULT_OUT
    frames: int = DEFAULT_FRAMES
    width: int = 512
    height: int = 256
    seed: int = DEFAULT_SEED
    rate: float | None = None  # None = automatic
    threshold: float = DEFAULT_ANOMALY_THRESHOLD
    providers: list[str] = field(default_factory=lambda: ["cuda", "cpu"])
    domain_id: int = DEFAULT_DOMAIN_ID
    node_timeout: float = 120.0
    video_fps: float = 3.0
    eval_region: str = "auto"
    component_threshold: str = "best-f1"
    min_pred_size: int | None = None
    min_gt_size: int | None = None
    progress: bool = True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixood_ros.demo",
        description="End-to-end demo: synthetic road scenes with anomalies ▶ rosbag ▶ the real "
        "pixood_node (separate process, ROS 2 on loopback) ▶ recorded outputs ▶ report, curves "
        "and an overlay video in one folder.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"PixOOD ONNX model; relative paths are also looked up in the installed package "
        f"share directory (default: {DEFAULT_MODEL}, the shipped demo model)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder; a previous demo's results there are replaced "
        f"(default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"synthetic frames to replay (default: {DEFAULT_FRAMES})",
    )
    parser.add_argument("--width", type=int, default=512, help="frame width (default: 512)")
    parser.add_argument("--height", type=int, default=256, help="frame height (default: 256)")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the synthetic scenes (default: {DEFAULT_SEED}, unseen by training)",
    )
    parser.add_argument(
        "--rate",
        default="auto",
        help="camera rate of the bag in Hz, replayed in real time; 'auto' = a third of the speed "
        f"the model reaches in this process, within {MIN_AUTO_RATE_HZ:g}..{MAX_AUTO_RATE_HZ:g} "
        "Hz (default: auto)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_ANOMALY_THRESHOLD,
        help="anomaly threshold of the node's mask (and of the component metrics with "
        "--component-threshold mask) (default: %(default)s, PixOOD's calibrated scores)",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=["cuda", "cpu"],
        metavar="P",
        help="ONNX Runtime execution providers for the node, in order (tensorrt cuda cpu); "
        "unavailable ones are skipped (default: cuda cpu; TensorRT would first build an engine)",
    )
    parser.add_argument(
        "--domain-id",
        type=int,
        default=DEFAULT_DOMAIN_ID,
        help=f"ROS_DOMAIN_ID of the demo's node and player, 0..101 (default: {DEFAULT_DOMAIN_ID}; "
        "discovery is always limited to this machine)",
    )
    parser.add_argument(
        "--node-timeout",
        type=float,
        default=120.0,
        metavar="SEC",
        help="how long the node may take to load the model and come up (default: 120)",
    )
    parser.add_argument(
        "--video-fps", type=float, default=3.0, help="frame rate of the overlay video (default: 3)"
    )
    parser.add_argument(
        "--component-threshold",
        choices=COMPONENT_THRESHOLDS,
        default=BEST_F1,
        help="threshold of the component metrics: best-f1 = the data set's best-F1 pixel "
        "threshold (SMIYC), mask = --threshold (default: best-f1)",
    )
    add_scoring_arguments(parser, track_option=False)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """Validated options; DemoError (one line) for values that cannot work."""
    if args.frames < 2:
        raise DemoError(f"--frames must be at least 2, got {args.frames}")
    if not (64 <= args.width <= 4096 and 64 <= args.height <= 4096):
        raise DemoError(f"--width/--height must be in 64..4096, got {args.width}x{args.height}")
    rate: float | None = None
    if args.rate != "auto":
        try:
            rate = float(args.rate)
        except ValueError:
            raise DemoError(f"--rate must be a number of Hz or 'auto', got {args.rate!r}") from None
        if not (math.isfinite(rate) and rate > 0):
            raise DemoError(f"--rate must be positive, got {args.rate}")
    if not 0.0 <= args.threshold <= 1.0:
        raise DemoError(f"--threshold must be in [0, 1], got {args.threshold}")
    if not 0 <= args.domain_id <= 101:
        raise DemoError(f"--domain-id must be in 0..101, got {args.domain_id}")
    if not args.node_timeout > 0:
        raise DemoError(f"--node-timeout must be positive, got {args.node_timeout}")
    if not args.video_fps > 0:
        raise DemoError(f"--video-fps must be positive, got {args.video_fps}")
    for name in ("min_pred_size", "min_gt_size"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise DemoError(f"--{name.replace('_', '-')} must be >= 0")
    return DemoOptions(
        model=args.model,
        out_dir=args.out,
        frames=args.frames,
        width=args.width,
        height=args.height,
        seed=args.seed,
        rate=rate,
        threshold=args.threshold,
        providers=list(args.providers),
        domain_id=args.domain_id,
        node_timeout=args.node_timeout,
        video_fps=args.video_fps,
        eval_region=args.eval_region,
        component_threshold=args.component_threshold,
        min_pred_size=args.min_pred_size,
        min_gt_size=args.min_gt_size,
        progress=not args.no_progress,
    )


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

    import threading

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
    from pixood_ros.bag import evaluate as bag_eval
    from pixood_ros.bag import make_bag
    from pixood_ros.demo.node_process import NodeProcess, node_arguments, ros_environment
    from pixood_ros.demo.outputs import evaluate_recording
    from pixood_ros.demo.report import build_report, write_report
    from pixood_ros.synth import cli as synth_cli

    model = find_model(options.model)
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise DemoError(f"the demo needs rclpy (pip install -e '.[ros]'): {exc}") from exc
    out = options.out_dir
    prepare_out_dir(out)
    quiet = [] if options.progress else ["--no-progress"]
    steps = _Steps(6)
    started = time.perf_counter()

    data = out / DATA_DIR
    steps.start("synth", f"rendering {options.frames} synthetic frames with anomalies")
    _call(
        "pixood-synth",
        synth_cli.main,
        [str(data), "--train", "0", "--val", "0", "--ood-val", str(options.frames),
         "--width", str(options.width), "--height", str(options.height),
         "--seed", str(options.seed), *quiet],
    )  # fmt: skip

    steps.start("probe", f"loading {model.name} and timing it in this process")
    size = (options.height, options.width)
    frames_dir = data / "leftImg8bit" / SPLIT / "synth"
    info, engine_fps, provider = probe_engine(model, options.providers, frames_dir, size)
    rate = options.rate
    if rate is None:
        rate = min(MAX_AUTO_RATE_HZ, max(MIN_AUTO_RATE_HZ, AUTO_RATE_LOAD * engine_fps))
        rate = round(rate, 2)
    print(f"      engine {engine_fps:.1f} frames/s on {provider}; camera rate {rate:g} Hz")

    bag = out / BAG_DIR
    steps.start("bag", f"writing the sample bag {bag}")
    _call(
        "pixood-make-bag",
        make_bag.main,
        ["--synth", str(data), "--split", SPLIT, "-o", str(bag), "--rate", f"{rate:g}",
         "--start-time", f"{START_TIME_S:.0f}", *quiet],
    )  # fmt: skip

    replay = out / REPLAY_DIR
    node_log = out / NODE_LOG
    score_topic = f"{NODE_NS}/anomaly_score"
    with ros_environment(options.domain_id) as env:
        node = NodeProcess(
            node_arguments(
                model,
                make_bag.DEFAULT_TOPIC,
                providers=options.providers,
                threshold=options.threshold,
                input_size=size,
            ),
            node_log,
            env,
        )
        domain = options.domain_id
        steps.start("node", f"starting pixood_node (ROS_DOMAIN_ID {domain}, log {node_log})")
        with node:
            ready_s = node.wait_ready(score_topic, make_bag.DEFAULT_TOPIC, options.node_timeout)
            print(f"      node pid {node.pid} active after {ready_s:.1f} s")
            steps.start("replay", f"replaying {options.frames} frames into the node at {rate:g} Hz")
            period = 1.0 / rate
            live_args = [
                str(model), str(bag), "-o", str(replay), "--live", "--record",
                "--node-ns", NODE_NS, "--threshold", repr(options.threshold),
                "--eval-region", options.eval_region,
                "--component-threshold", options.component_threshold,
                "--timeout", f"{max(5.0, 3 * period):g}", *quiet,
            ]  # fmt: skip
            live_args += _size_args(options)
            _call("pixood-bag-eval --live", bag_eval.main, live_args)
        node_exit = node.returncode
    live = json.loads((replay / "report.json").read_text())

    steps.start("score", "scoring the recorded node outputs, drawing curves and the video")
    recorded = evaluate_recording(
        bag,
        replay / "live_bag",
        NODE_NS,
        info,
        options.threshold,
        out,
        video_path=out / VIDEO,
        video_fps=options.video_fps,
        region=options.eval_region,
        component_threshold=options.component_threshold,
        min_pred_size=options.min_pred_size,
        min_gt_size=options.min_gt_size,
        progress=options.progress,
    )
    steps.finish()
    rep = build_report(
        options=options,
        model=model,
        info=info,
        rate=rate,
        engine_fps=engine_fps,
        provider=provider,
        node_command=node.command,
        node_pid=node.pid,
        node_exit=node_exit,
        node_ready_s=ready_s,
        live=live,
        recorded=recorded,
        step_seconds=steps.seconds,
        total_s=time.perf_counter() - started,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_report(rep, out)
    return rep


def _size_args(options: DemoOptions) -> list[str]:
    args = []
    if options.min_pred_size is not None:
        args += ["--min-pred-size", str(options.min_pred_size)]
    if options.min_gt_size is not None:
        args += ["--min-gt-size", str(options.min_gt_size)]
    return args


def main(argv: list[str] | None = None) -> int:
    from pixood_ros.demo.node_process import NodeError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
        with _sigterm_as_interrupt():
            rep = run_demo(options)
    except DemoError as exc:
        print(f"pixood-demo: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (StepFailed, NodeError) as exc:
        print(f"pixood-demo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("pixood-demo: interrupted; the node was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    from pixood_ros.demo.report import print_summary

    print_summary(rep, options.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
