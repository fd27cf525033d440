"""Offline replay (`pixood-bag-eval MODEL BAG -o OUT_DIR`): every frame of the bag through the
same decode (`pixood_ros.image_conversion`), engine (`pixood_ros.engine.Segmenter`) and anomaly
mode (`--anomaly-mode`, `pixood_ros.anomaly_modes`) as the node, as fast as the machine allows,
no ROS needed: every output and metric is of the score the node would publish.

Ground truth (OOD masks 0/1/255, optional semantic train ids) comes from topics in the bag, paired
by header stamp, or from a folder, paired by order. Writes report.json / report.md, PR / ROC /
histogram plots, an output bag with the node's topics for rviz, and optionally an overlay video.

Damaged input never loses work: whatever was evaluated before the failure goes into a report
marked partial, then the error is printed and the exit code is non-zero.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixood_ros import interruption
from pixood_ros.anomaly_modes import check_mode
from pixood_ros.bag import report
from pixood_ros.bag.bag_input import BagInput
from pixood_ros.bag.bagio import BagMessage
from pixood_ros.bag.frame_loop import STAGES_BESIDE_ENGINE, Run, replay
from pixood_ros.bag.ground_truth import GtFolder, camera_topic, decode_labels, resolve_gt_topics
from pixood_ros.bag.options import EvalOptions, OutputOptions
from pixood_ros.bag.output_bag import OutputBag
from pixood_ros.bag.paths import check_bag, check_model, prepare_out_dir
from pixood_ros.bag.results import EvalResult
from pixood_ros.bag.scoring import EvalMetrics, make_metrics, scored_region
from pixood_ros.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError, one_line
from pixood_ros.render.overlay import OverlayRenderer
from pixood_ros.render.pictures import side_by_side
from pixood_ros.render.video import VideoWriter

OUTPUT_BAG_NAME = "output_bag"
VIDEO_NAME = "overlay.mp4"


@dataclass
class _Labels:
    """Where each frame's ground truth comes from: topics of the bag or a folder."""

    ood_topic: str | None
    semantic_topic: str | None
    folder: GtFolder | None

    @property
    def topics(self) -> list[str]:
        return [t for t in (self.ood_topic, self.semantic_topic) if t]

    def score(
        self,
        metrics: EvalMetrics,
        run: Run,
        index: int,
        labels: dict[str, BagMessage | None],
        result: Any,
    ) -> None:
        """Add the frame's ground truth to the metrics (ValueError when it is unusable)."""
        shape = result.anomaly_score.shape
        semantic = None
        found = labels.get(self.semantic_topic) if self.semantic_topic else None
        if found is not None:
            semantic = decode_labels(found.msg, shape, "semantic ground truth")
        if self.ood_topic is not None or self.folder is not None:
            if self.folder is not None:
                ood = self.folder.label(index, shape)
            else:
                msg = labels.get(self.ood_topic)
                ood = decode_labels(msg.msg, shape, "OOD ground truth") if msg else None
            if ood is None:
                run.without_gt.append(index)
            else:
                metrics.add_ood(result.anomaly_score, ood, semantic)
        if semantic is not None:
            metrics.add_semantic(result.semantic, result.confidence, semantic)


class _Outputs:
    """The output bag and the overlay video; the overlay is rendered once for both."""

    def __init__(
        self, options: OutputOptions, out_dir: Path, bag: BagInput, topic: str, info: Any
    ) -> None:
        self.alpha = options.overlay_alpha
        self.info = info  # palette and class names for the video's legend
        self.bag = self.video = None
        self.bag_problem: str | None = None
        # everything that reads the overlay is done with it when `write` returns
        self._render_overlay = OverlayRenderer()
        if options.output_bag:
            self.bag = OutputBag(
                out_dir / OUTPUT_BAG_NAME,
                options.output_storage,
                options.output_ns,
                topic,
                bag.topic_types()[topic],
                raw=options.raw_outputs,
            )
        if options.video:
            self.video = VideoWriter(out_dir / VIDEO_NAME, _recorded_rate(bag, topic))

    def write(self, frame: BagMessage, rgb: Any, result: Any, threshold: float) -> None:
        if self.bag is None and self.video is None:
            return
        overlay = self._render_overlay(rgb, result.anomaly_score, self.alpha, threshold)
        if self.bag is not None:
            self.bag.write(frame, result, threshold, overlay)
        if self.video is not None:
            panels = side_by_side(
                rgb, result.anomaly_score, result.semantic, self.info.palette, threshold,
                class_names=self.info.class_names, alpha=self.alpha, overlay=overlay,
            )  # fmt: skip
            self.video.write(panels)

    def close(self) -> str | None:
        """Finish the files; an output bag that cannot be finished (disk full) is removed, as
        nothing could read it, and the reason returned."""
        if self.bag is not None:
            try:
                self.bag.close()
            except OSError as exc:
                shutil.rmtree(self.bag.path, ignore_errors=True)
                self.bag_problem = f"output bag could not be finished, removed: {one_line(exc)}"
        if self.video is not None:
            self.video.close()
        return self.bag_problem

    def describe(self) -> dict[str, Any]:
        """The report's `outputs`: the files written."""
        described: dict[str, Any] = {}
        if self.bag_problem is not None:
            described["output_bag_error"] = self.bag_problem
        elif self.bag is not None:
            described["output_bag"] = str(self.bag.path)
            described["output_form"] = "raw" if self.bag.raw else "compact"
            described["output_topics"] = self.bag.topics
            if self.bag.frames:
                described["output_bag_bytes_per_frame"] = self.bag.bytes_on_disk() / self.bag.frames
        if self.video is not None:
            described["overlay_video"] = str(self.video.path)
        return described


@dataclass
class _Session:
    """What one evaluation works with, from opening the bag to writing the report."""

    options: EvalOptions
    bag: BagInput
    topic: str
    labels: _Labels
    engine: Any
    metrics: EvalMetrics
    outputs: _Outputs


def _load_engine(options: EvalOptions) -> Any:
    from pixood_ros.engine import ModelError, Segmenter
    from pixood_ros.engine.threads import intra_op_threads

    # The frame loop's other stages keep their threads busy: the model gets the cores left (on
    # 2 cores its second thread only waited for them), and no busy-waiting between calls.
    threads = intra_op_threads(options.threads, reserved=STAGES_BESIDE_ENGINE)
    try:
        engine = Segmenter(
            options.model, providers=options.providers, intra_op_threads=threads, spin_wait=False
        )
    except ModelError as exc:
        raise UserError(f"cannot use model: {exc}") from exc
    check_mode(options.anomaly_mode, engine.info.anomaly_modes, options.model.name)
    return engine


def evaluate(options: EvalOptions) -> EvalResult:
    """Run the offline evaluation; raises UserError / BagError for problems found up front."""
    check_model(options.model, options.bag)
    check_bag(options.bag)
    folder = GtFolder(options.gt.gt_dir) if options.gt.gt_dir is not None else None
    bag = BagInput(options.bag)
    try:
        labels = _Labels(*resolve_gt_topics(bag, options.gt), folder)
        topic = camera_topic(bag, options.topic, labels.topics)
        engine = _load_engine(options)
        region = scored_region(
            options.scoring.eval_region, engine.info, labels.semantic_topic is not None
        )
        prepare_out_dir(
            options.out_dir, ["report.json", OUTPUT_BAG_NAME, VIDEO_NAME], options.overwrite
        )
        num_classes = len(engine.info.class_names)
        metrics = make_metrics(
            options.scoring, options.threshold, region, num_classes, options.out_dir, bag.dataset
        )
        with metrics:
            outputs = _Outputs(options.outputs, options.out_dir, bag, topic, engine.info)
            session = _Session(options, bag, topic, labels, engine, metrics, outputs)
            run = replay(session)
            with interruption.deferred():  # the frames are done: Ctrl-C waits for the report
                problem = outputs.close()
                if problem is not None and run.error is None:
                    run.stop(problem, EXIT_FAILED)
                return _finish(session, run)
    finally:
        bag.close()


def _finish(s: _Session, run: Run) -> EvalResult:
    """Judge the run, write report.json / report.md and the plots."""
    if run.error is None and s.bag.salvaged:
        run.error, run.exit_code = (
            f"bag could not be opened normally ({s.bag.open_error})",
            EXIT_USAGE,
        )
    if run.error is None:
        has_gt = s.labels.ood_topic or s.labels.folder
        run.error, run.exit_code = _judge(run, has_gt, s.metrics)
    rep = _build_report(s, run)
    rep["outputs"] = s.outputs.describe()
    if run.read and s.metrics.spilled_bytes:  # written, then removed at the end
        rep["outputs"]["temporary_score_file_bytes_per_frame"] = s.metrics.spilled_bytes / run.read
    rep["plots"] = report.write_plots(s.metrics, s.options.out_dir)
    report.write_json(rep, s.options.out_dir)
    report.write_markdown(rep, s.options.out_dir)
    return EvalResult(rep, run.exit_code, run.error, run.failed)


def _recorded_rate(bag: BagInput, topic: str) -> float:
    """Frames per second of the image topic from the bag's counts and duration (video speed)."""
    duration_s = bag.duration_ns() / 1e9
    count = bag.message_counts().get(topic, 0)
    return (count - 1) / duration_s if count > 1 and duration_s > 0 else 10.0


def _judge(run: Run, has_gt: object, metrics: EvalMetrics) -> tuple[str | None, int]:
    """A finished run still fails when nothing could be evaluated against the ground truth."""
    if run.read == 0:
        return "no frame could be evaluated: the image topic has no messages", EXIT_USAGE
    if run.evaluated == 0:
        first = run.failed[0]["reason"] if run.failed else "unknown reason"
        return f"no frame could be evaluated; first problem: {first}", EXIT_USAGE
    if has_gt and metrics.frames_with_ood_gt == 0:
        return "no frame could be evaluated: no ground truth matched any frame", EXIT_USAGE
    return None, EXIT_OK


def _ground_truth_text(options: EvalOptions, labels: _Labels) -> str:
    sources = []
    if options.gt.gt_dir is not None:
        sources.append(f"OOD masks from folder {options.gt.gt_dir} (by order)")
    if labels.ood_topic:
        sources.append(f"OOD masks on {labels.ood_topic}")
    if labels.semantic_topic:
        sources.append(f"semantic labels on {labels.semantic_topic}")
    return "; ".join(sources)


def _build_report(s: _Session, run: Run) -> dict[str, Any]:
    options, bag, topic, engine, info = s.options, s.bag, s.topic, s.engine, s.engine.info
    if run.first_stamp is not None and run.last_stamp is not None and run.read > 1:
        recorded_rate = (run.read - 1) / max((run.last_stamp - run.first_stamp) / 1e9, 1e-9)
    else:
        recorded_rate = None
    engine_fps = len(run.latencies_ms) / run.engine_s if run.engine_s > 0 else None
    end_to_end_fps = run.read / run.wall_s if run.wall_s > 0 else None
    return {
        "tool": "pixood-bag-eval",
        "mode": "offline",
        "partial": run.partial,
        "error": run.error,
        "model": {
            "path": str(options.model),
            "scorer": info.scorer,
            "config_hash": info.config_hash,
            "classes": len(info.class_names),
            "provider": engine.active_provider,
            "intra_op_threads": engine.intra_op_threads,
            "anomaly_mode": options.anomaly_mode,
        },
        "input": {
            "bag": str(options.bag),
            "storage": bag.storage,
            "salvaged": bag.salvaged,
            "topic": topic,
            "msgtype": bag.topic_types()[topic],
            "ground_truth": _ground_truth_text(options, s.labels),
            "stamp_tolerance_ns": options.gt.tolerance_ns,
            "recorded_rate_hz": recorded_rate,
        },
        "frames": {
            "read": run.read,
            "evaluated": run.evaluated,
            "failed": len(run.failed),
            "without_gt": len(run.without_gt),
            "without_gt_indices": run.without_gt[: report.MAX_LISTED_FRAMES],
            "unmatched_gt_messages": dict(run.pairing.unmatched_labels),
        },
        "speed": {
            "engine_fps": engine_fps,
            "end_to_end_fps": end_to_end_fps,
            "end_to_end_over_engine": end_to_end_fps / engine_fps
            if engine_fps and end_to_end_fps
            else None,
            "engine_s": run.engine_s,
            "engine_latency_ms": report.latency_summary(run.latencies_ms),
            "wall_s": run.wall_s,
        },
        "metrics": s.metrics.summary(list(info.class_names)),
        "failed_frames": run.failed,
    }
