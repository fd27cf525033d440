"""Evaluation report files: `report.json` (machine-readable), `report.md` (for people), and the
PR curve, ROC curve and score histogram as PNGs (matplotlib, Agg backend: no display needed).

Every file is written complete or not at all and never through a symbolic link
(`pixood_ros.durable`); a failed write raises (it is an error, not a silent success)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pixood_ros import durable
from pixood_ros.bag.scoring import HISTOGRAM_BINS, EvalMetrics, operating_point
from pixood_ros.metrics.curves import BinaryCurve, auroc, average_precision
from pixood_ros.tables import fmt, markdown_table

MAX_LISTED_FRAMES = 50


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    import numpy as np

    values = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


def write_plots(metrics: EvalMetrics, out_dir: Path) -> dict[str, str]:
    """PR / ROC curves (when OOD ground truth was seen) of the region and, when it is not every
    labelled pixel, of the whole frame, with AP / AUROC in the legend and a marker at the mask
    threshold's operating point; and the score histogram with the threshold."""
    files: dict[str, str] = {}
    curves = [("region", metrics.pixel_curve())]
    if metrics.pixel_whole_frame is not metrics.pixel:
        curves.append(("whole frame", metrics.pixel_curve(whole_frame=True)))
    curves = [(name, c) for name, c in curves if c is not None and c.n_pos and c.n_neg]
    if curves:
        pr, pr_ax = plt.subplots(figsize=(5.5, 4.5))
        roc, roc_ax = plt.subplots(figsize=(5.5, 4.5))
        for (name, curve), colour in zip(curves, ("tab:blue", "tab:orange"), strict=False):
            _plot_curves(pr_ax, roc_ax, name, curve, metrics.threshold, colour)
        pr_ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        pr_ax.set_title("pixel precision-recall (anomaly = positive)")
        roc_ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        roc_ax.axhline(0.95, linestyle="--", color="tab:red", linewidth=0.8, label="TPR 95 %")
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate")
        roc_ax.set(xlim=(0, 1), ylim=(0, 1.02))
        roc_ax.set_title("pixel ROC")
        for ax, loc in ((pr_ax, "lower left"), (roc_ax, "lower right")):
            ax.legend(loc=loc, fontsize="small")
            ax.grid(alpha=0.3)
        files["pr_curve"] = _save(pr, out_dir / "pr_curve.png")
        files["roc_curve"] = _save(roc, out_dir / "roc_curve.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
    width = 1 / HISTOGRAM_BINS
    if metrics.frames_with_ood_gt:
        pos, neg = metrics.label_histograms()
        ax.bar(edges, neg, width=width, align="edge", alpha=0.6, label="in-distribution")
        ax.bar(edges, pos, width=width, align="edge", alpha=0.6, label="anomaly")
    else:
        ax.bar(edges, metrics.score_hist, width=width, align="edge", label="all pixels")
    ax.axvline(
        metrics.threshold,
        color="black",
        linestyle="--",
        linewidth=0.8,
        label=f"threshold {fmt(metrics.threshold, 3)}",
    )
    ax.legend(fontsize="small")
    ax.set(xlabel="anomaly score", ylabel="pixels", yscale="log", xlim=(0, 1))
    ax.set_title("anomaly score histogram")
    files["score_histogram"] = _save(fig, out_dir / "score_histogram.png")
    return files


def _plot_curves(
    pr_ax: Any, roc_ax: Any, name: str, curve: BinaryCurve, threshold: float, colour: str
) -> None:
    """One curve's PR and ROC lines (AP / AUROC in the label) and its operating-point marker."""
    recall = curve.tp / curve.n_pos
    precision = curve.tp / (curve.tp + curve.fp)
    ap_label = f"{name}: AP {average_precision(curve):.3f}"
    pr_ax.plot(recall, precision, drawstyle="steps-post", color=colour, label=ap_label)
    fpr = [0, *(curve.fp / curve.n_neg)]
    roc_ax.plot(fpr, [0, *recall], color=colour, label=f"{name}: AUROC {auroc(curve):.3f}")
    point = operating_point(curve, threshold)
    label = f"{name} at threshold {fmt(threshold, 3)}"
    if point["precision"] is not None:
        pr_ax.plot(point["tpr"], point["precision"], "o", color=colour, mec="black", label=label)
    roc_ax.plot(point["fpr"], point["tpr"], "o", color=colour, mec="black", label=label)


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    try:
        with durable.replacing(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path.name


def write_json(report: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / "report.json"
    durable.write_json(path, report)
    return path


def region_text(region: dict[str, Any] | None) -> str:
    """'road, sidewalk and anomaly pixels (...) - auto: ...' for the reports."""
    if not region:
        return "all labelled pixels"
    return f"{region['scored_pixels']} [{region['reason']}]"


def component_rule_text(components: dict[str, Any]) -> str:
    """'best-f1 threshold: score >= 0.4235, obstacle track filters 50 / 10 px' for the reports."""
    rule = components.get("component_threshold", {})
    return (
        f"{rule.get('rule', '?')} threshold: score >= {fmt(rule.get('value'), 4)}, "
        f"{rule.get('track', '?')} track size filters {rule.get('min_pred_size', '?')} / "
        f"{rule.get('min_gt_size', '?')} px"
    )


PIXEL_SCOPES = (("pixel", "region"), ("pixel_whole_frame", "whole frame"))


def pixel_tables(metrics: dict[str, Any]) -> list[str]:
    """The pixel metrics of the scored region and of the whole frame (every labelled pixel),
    and the mask's TPR / FPR / precision at the deployed threshold, as Markdown tables."""
    scopes = [(key, name) for key, name in PIXEL_SCOPES if key in metrics]
    quality = [_quality_row(name, metrics[key]) for key, name in scopes]
    header = ["pixels", "AP", "AUROC", "FPR@95TPR", "best F1 (threshold)", "anomaly px"]
    lines = [*markdown_table([*header, "normal px"], quality), ""]
    points = [(name, metrics.get(f"{key}_at_threshold")) for key, name in scopes]
    rows = [[name, fmt(p["tpr"]), fmt(p["fpr"]), fmt(p["precision"])] for name, p in points if p]
    if rows:
        threshold = fmt(points[0][1]["threshold"], 3) if points[0][1] else "?"
        lines += [
            f"The mask (score >= {threshold}, the deployed threshold):",
            "",
            *markdown_table(
                ["pixels", "TPR (anomaly recall)", "FPR (normal px flagged)", "precision"], rows
            ),
            "",
        ]
    return lines


def _quality_row(name: str, p: dict[str, Any]) -> list[str]:
    return [
        name,
        fmt(p.get("ap")),
        fmt(p.get("auroc")),
        fmt(p.get("fpr95")),
        f"{fmt(p.get('best_f1'))} ({fmt(p.get('best_f1_threshold'), 3)})",
        str(p.get("n_pos", "n/a")),
        str(p.get("n_neg", "n/a")),
    ]


def _metrics_lines(metrics: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "pixel" in metrics:
        lines += ["## Pixel-level anomaly metrics", ""]
        lines += [f"Scored pixels (region): {region_text(metrics.get('region'))}.", ""]
        lines += pixel_tables(metrics)
    if "components" in metrics:
        c = metrics["components"]
        lines += [
            f"## Component-level metrics ({component_rule_text(c)})",
            "",
            "| sIoU | PPV | mean F1 | GT components | predicted components |",
            "|---|---|---|---|---|",
            f"| {fmt(c.get('siou'))} | {fmt(c.get('ppv'))} | {fmt(c.get('f1_mean'))} | "
            f"{fmt(c.get('n_gt_components'))} | {fmt(c.get('n_pred_components'))} |",
            "",
        ]
    if "semantic" in metrics and "miou" in metrics["semantic"]:
        s = metrics["semantic"]
        lines += [
            "## Semantic metrics",
            "",
            f"- mIoU {fmt(s['miou'])}, pixel accuracy {fmt(s['pixel_accuracy'])}, "
            f"ECE {fmt(s['ece'])}",
            "",
        ]
    return lines


def write_markdown(report: dict[str, Any], out_dir: Path) -> Path:
    lines: list[str] = []
    status = "PARTIAL" if report["partial"] else "complete"
    lines += [f"# pixood-bag-eval report ({status})", ""]
    if report["partial"]:
        lines += [f"> **Partial report**: {report['error']}", ""]
    inp = report["input"]
    frames = report["frames"]
    model = report["model"]
    threads = model.get("intra_op_threads")  # offline only: the live node reports its own
    threads_text = f", {threads} CPU thread(s)" if threads else ""
    lines += [
        f"- model: `{model['path']}` (scorer {model['scorer']}, "
        f"provider {model['provider']}{threads_text})",
        f"- bag: `{inp['bag']}` ({inp['storage']}), topic `{inp['topic']}` ({inp['msgtype']})",
        f"- ground truth: {inp['ground_truth'] or 'none'}",
        f"- frames: {frames['evaluated']} evaluated, {frames['failed']} failed, "
        f"{frames['without_gt']} without ground truth (of {frames['read']} read)",
        "",
        "## Speed",
        "",
        "| engine fps | end-to-end fps | end-to-end / engine | engine s | wall s | p50 ms "
        "| p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    speed = report["speed"]
    lat = speed["engine_latency_ms"]
    lines += [
        f"| {fmt(speed['engine_fps'], 1)} | {fmt(speed['end_to_end_fps'], 1)} | "
        f"{fmt(speed.get('end_to_end_over_engine'), 2)} | {fmt(speed.get('engine_s'), 2)} | "
        f"{fmt(speed['wall_s'], 2)} | {fmt(lat['p50'], 2)} | {fmt(lat['p90'], 2)} | "
        f"{fmt(lat['p99'], 2)} | {fmt(lat['max'], 2)} |",
        "",
    ]
    outputs = report.get("outputs", {})
    if outputs.get("output_bag_bytes_per_frame") is not None:
        written = outputs["output_bag_bytes_per_frame"] / 1e6
        lines += [f"Output bag ({outputs['output_form']}): {written:.2f} MB per frame.", ""]
    if outputs.get("temporary_score_file_bytes_per_frame") is not None:
        spilled = outputs["temporary_score_file_bytes_per_frame"] / 1e6
        lines += [f"Temporary score file (best-F1 pass, removed): {spilled:.2f} MB per frame.", ""]
    metrics = report["metrics"]
    lines += _metrics_lines(metrics)
    for note in metrics.get("notes", []):
        lines.append(f"- note: {note}")
    if report["failed_frames"]:
        lines += ["", "## Frames that could not be evaluated", ""]
        lines += [
            f"- #{f['index']} stamp {f['stamp_ns']}: {f['reason']}"
            for f in report["failed_frames"][:MAX_LISTED_FRAMES]
        ]
        if len(report["failed_frames"]) > MAX_LISTED_FRAMES:
            lines.append(
                f"- ... {len(report['failed_frames']) - MAX_LISTED_FRAMES} more in report.json"
            )
    if report["plots"]:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in report["plots"].items()]
    if report["outputs"]:
        lines += ["", "## Outputs", ""]
        lines += [f"- {name}: `{value}`" for name, value in report["outputs"].items()]
    return _write_markdown(lines, out_dir)


def write_live_markdown(rep: dict[str, Any], out_dir: Path) -> Path:
    """report.md of a live replay: what the node delivered and, when recorded, how it scores."""
    frames, speed = rep["frames"], rep["speed"]
    lat = speed["end_to_end_latency_ms"]
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
    if "pixel" in rep["metrics"]:
        lines += [
            "",
            "Pixel metrics of the received outputs; scored pixels (region): "
            f"{region_text(rep['metrics'].get('region'))}.",
            "",
            *pixel_tables(rep["metrics"]),
        ]
    components = rep["metrics"].get("components")
    if components:
        lines += [
            "",
            f"Component metrics ({component_rule_text(components)}): sIoU "
            f"{fmt(components.get('siou'))}, PPV {fmt(components.get('ppv'))}, mean F1 "
            f"{fmt(components.get('f1_mean'))}",
        ]
    semantic = rep["metrics"].get("semantic", {})
    if "miou" in semantic:
        lines += [
            "",
            f"Semantic metrics of the received outputs: mIoU {fmt(semantic['miou'])}, pixel "
            f"accuracy {fmt(semantic['pixel_accuracy'])}, ECE {fmt(semantic['ece'])}",
        ]
    lines += [f"- note: {note}" for note in rep["metrics"].get("notes", [])]
    return _write_markdown(lines, out_dir)


def _write_markdown(lines: list[str], out_dir: Path) -> Path:
    path = out_dir / "report.md"
    durable.write_text(path, "\n".join(lines) + "\n")
    return path
