"""The demo's report: one JSON for machines, one Markdown page for people, one summary on screen.

It joins what the replay measured (frames the node answered, end-to-end latency, and the recorded
outputs' scores against the ground truth: `pixood_ros.bag.recording`) with the video pass over
the recording (`pixood_ros.demo.outputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixood_ros import durable
from pixood_ros.bag import report as bag_report
from pixood_ros.tables import fmt


def build_report(
    *,
    options: Any,
    model: Path,
    info: Any,
    rate: float,
    engine: tuple[float, str],
    node: dict[str, Any],
    live: dict[str, Any],
    video: Any,
    plots: dict[str, str],
    step_seconds: dict[str, float],
    total_s: float,
    created: str,
) -> dict[str, Any]:
    """`engine`: (frames per second, provider) in the demo's process; `node`: command, pid,
    exit code and start-up time of the node process; `live`: the live replay's report, whose
    metrics are the recorded outputs' (scored once, by `pixood_ros.bag.recording`); `video`:
    `pixood_ros.demo.outputs.RecordedVideo`."""
    out = options.out_dir
    frames = live["frames"]
    replay_s = live["speed"]["replay_s"]
    answered = video.frames_answered
    engine_fps, provider = engine
    return {
        "tool": "pixood-demo",
        "created": created,
        **_model_and_data(options, model, info),
        "node": {
            "command": node["command"],
            "pid": node["pid"],
            "ros_domain_id": options.domain_id,
            "discovery": "LOCALHOST",
            "providers_requested": options.providers,
            "ready_after_s": node["ready_s"],
            "exit_code": node["exit"],
            "log": str(out / "node.log"),
        },
        "replay": {
            "camera_rate_hz": rate,
            "published": frames["published"],
            "answered": frames["answered"],
            "dropped": frames["dropped"],
            "drop_rate": frames["drop_rate"],
            "outputs_received": frames["outputs_received"],
            "replay_s": replay_s,
        },
        "speed": {
            "engine_fps_in_process": engine_fps,
            "engine_provider_in_process": provider,
            "node_output_fps": answered / replay_s if replay_s else None,
            "end_to_end_latency_ms": live["speed"]["end_to_end_latency_ms"],
        },
        "evaluation": {
            "region": live["metrics"].get("region"),
            "frames_in_bag": video.frames_in_bag,
            "frames_scored": answered,
            "frames_without_all_outputs": len(video.missing_output_stamps),
        },
        "metrics": live["metrics"],
        "plots": plots,
        "video": {
            "file": "overlay.mp4",
            "frames": video.video_frames,
            "fps": options.video_fps,
            "codec": video.video_codec,
            "panels": "the node's overlay (camera untouched below the threshold, flagged pixels "
            "coloured by score; semantic inset) | anomaly score | mask with the ground-truth "
            "outline in green; below: colour bar with the threshold, class legend",
        },
        "outputs": {
            "sample_bag": str(out / "sample_bag"),
            "recorded_node_outputs_bag": str(out / "replay" / "live_bag"),
            "live_replay_report": str(out / "replay" / "report.md"),
        },
        "timing_s": {"total": round(total_s, 1), **step_seconds},
    }


def _model_and_data(options: Any, model: Path, info: Any) -> dict[str, Any]:
    return {
        "model": {
            "path": str(model),
            "size_bytes": model.stat().st_size,
            "scorer": info.scorer,
            "config_hash": info.config_hash,
            "classes": info.num_classes,
            "network_long_side": info.network_long_side,
        },
        "data": {
            "generator": "pixood-synth",
            "split": "ood_val",
            "frames": options.frames,
            "width": options.width,
            "height": options.height,
            "seed": options.seed,
            "folder": str(options.out_dir / "synth_data"),
        },
    }


def write_report(rep: dict[str, Any], out_dir: Path) -> None:
    """report.json and report.md, each complete or untouched; a symlink there is replaced."""
    durable.write_json(out_dir / "report.json", rep)
    durable.write_text(out_dir / "report.md", markdown(rep))


def markdown(rep: dict[str, Any]) -> str:
    model, data, node, replay = rep["model"], rep["data"], rep["node"], rep["replay"]
    speed = rep["speed"]
    lat = speed["end_to_end_latency_ms"]
    lines = [
        "# PixOOD demo report",
        "",
        f"Created {rep['created']} in {rep['timing_s']['total']:.0f} s.",
        "",
        f"- model: `{model['path']}` ({model['size_bytes'] / 1e6:.1f} MB, scorer "
        f"{model['scorer']}, {model['classes']} classes, network long side "
        f"{model['network_long_side']} px)",
        f"- data: {data['frames']} pixood-synth `{data['split']}` frames, "
        f"{data['width']}x{data['height']}, seed {data['seed']} (road scenes with anomalies)",
        f"- node: separate process, ROS_DOMAIN_ID {node['ros_domain_id']}, discovery on "
        f"loopback only, ready after {node['ready_after_s']:.1f} s, exit code "
        f"{node['exit_code']}; log `{node['log']}`",
        "",
        "## Replay into the node",
        "",
        "| camera rate Hz | published | answered | dropped | node output fps | engine fps "
        "(in-process) | latency p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {replay['camera_rate_hz']:g} | {replay['published']} | {replay['answered']} | "
        f"{replay['dropped']} | {fmt(speed['node_output_fps'], 2)} | "
        f"{fmt(speed['engine_fps_in_process'], 2)} ({speed['engine_provider_in_process']}) | "
        f"{fmt(lat['p50'], 1)} | {fmt(lat['p90'], 1)} | {fmt(lat['p99'], 1)} | "
        f"{fmt(lat['max'], 1)} |",
        "",
        "Latency is end to end: the player publishes a frame ▶ it receives the node's "
        "`~/anomaly_score` with the same header stamp (decode, inference, five outputs, DDS both "
        "ways). The camera rate was chosen so the node can keep up; node output fps is the "
        "answered frames over the replay time.",
        "",
    ]
    lines += _metrics_lines(rep)
    if rep["plots"]:
        lines += ["## Curves", ""]
        lines += [f"![{name}]({file})" for name, file in rep["plots"].items()]
        lines.append("")
    video = rep["video"]
    lines += [
        "## Video",
        "",
        f"[`{video['file']}`]({video['file']}): {video['frames']} frames at {video['fps']:g} fps "
        f"({video['codec']}); panels: {video['panels']}.",
        "",
        "## Files",
        "",
    ]
    lines += [f"- {name.replace('_', ' ')}: `{path}`" for name, path in rep["outputs"].items()]
    timing = ", ".join(f"{k} {v:g} s" for k, v in rep["timing_s"].items() if k != "total")
    lines += ["", f"Step times: {timing}.", ""]
    return "\n".join(lines)


def _metrics_lines(rep: dict[str, Any]) -> list[str]:
    metrics = rep["metrics"]
    lines: list[str] = []
    if "pixel" in metrics:
        frames = rep["evaluation"]["frames_scored"]
        lines += [f"## Anomaly metrics of the recorded node outputs ({frames} frames)", ""]
        region = bag_report.region_text(rep["evaluation"]["region"])
        lines += [f"Scored pixels (region): {region}; whole frame: every labelled pixel.", ""]
        lines += bag_report.pixel_tables(metrics)
    if "components" in metrics:
        c = metrics["components"]
        lines += [
            f"Component level (SMIYC rules, {bag_report.component_rule_text(c)}): sIoU "
            f"{fmt(c.get('siou'))}, PPV {fmt(c.get('ppv'))}, mean F1 {fmt(c.get('f1_mean'))} "
            f"({fmt(c.get('n_gt_components'))} ground-truth, "
            f"{fmt(c.get('n_pred_components'))} predicted components).",
            "",
        ]
    semantic = metrics.get("semantic", {})
    if "miou" in semantic:
        lines += [
            f"Semantic: mIoU {fmt(semantic['miou'])}, pixel accuracy "
            f"{fmt(semantic['pixel_accuracy'])}, ECE {fmt(semantic['ece'])}.",
            "",
        ]
    lines += [f"- note: {note}" for note in metrics.get("notes", [])]
    return lines


def print_summary(rep: dict[str, Any], out_dir: Path) -> None:
    pixel = rep["metrics"].get("pixel", {})
    replay, lat = rep["replay"], rep["speed"]["end_to_end_latency_ms"]
    print(
        f"demo done in {rep['timing_s']['total']:.0f} s: node answered {replay['answered']}/"
        f"{replay['published']} frames at {replay['camera_rate_hz']:g} Hz, latency p50 "
        f"{fmt(lat['p50'], 0)} ms; AP {fmt(pixel.get('ap'), 3)}, AUROC "
        f"{fmt(pixel.get('auroc'), 3)}, FPR95 {fmt(pixel.get('fpr95'), 3)}"
    )
    whole = rep["metrics"].get("pixel_whole_frame_at_threshold")
    if whole:
        print(
            f"  mask (score >= {fmt(whole['threshold'], 3)}) over whole frames: anomaly recall "
            f"{fmt(whole['tpr'], 3)}, in-distribution pixels flagged {fmt(whole['fpr'], 3)}, "
            f"precision {fmt(whole['precision'], 3)}"
        )
    print(f"  report : {out_dir / 'report.md'} (and report.json)")
    plots = ", ".join(str(out_dir / f) for f in rep["plots"].values())
    print(f"  curves : {plots}")
    print(f"  video  : {out_dir / rep['video']['file']}")
    print(f"  node outputs bag: {rep['outputs']['recorded_node_outputs_bag']}")
