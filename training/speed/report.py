"""The console tables of a `pixood-bench` report (Markdown, pixood_ros.tables), one per section,
each headed with the thread count its figures were measured at."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pixood_ros.tables import fmt, markdown_table

from .environment import threads_label


def _ms(timing: dict[str, Any] | None) -> str:
    return fmt(None if timing is None else timing.get("median_ms"), 2)


def stages_table(stages: dict[str, Any]) -> tuple[str, list[str]]:
    total = stages["sum_of_stages_ms"]
    rows = [
        [name, _ms(timing), fmt(100 * timing["median_ms"] / max(total, 1e-9), 1)]
        for name, timing in stages["stages"].items()
    ]
    rows.append(["sum", fmt(total, 2), fmt(100.0, 1)])
    title = (
        f"PyTorch per-stage timings at {stages['height']}x{stages['width']} "
        f"(stages reproduce forward: {stages['matches_forward']})"
    )
    return title, markdown_table(["stage", "median ms", "share %"], rows)


def end_to_end_table(section: dict[str, Any]) -> tuple[str, list[str]]:
    rows = []
    for row in section["sizes"]:
        onnx = row.get("onnxruntime")
        rows.append([
            f"{row['height']}x{row['width']}",
            _ms(row["pytorch"]), fmt(row["pytorch"]["fps"], 1),
            _ms(onnx), fmt(onnx and onnx["fps"], 1),
            fmt(row.get("onnx_speedup"), 2), fmt(row.get("max_abs_anomaly_diff"), 6),
            fmt(row["peak_rss_mb"], 0),
        ])  # fmt: skip
    header = ["size", "PyTorch ms", "PyTorch fps", "ONNX Runtime ms", "ONNX Runtime fps",
              "ONNX Runtime speed-up", "max abs diff", "peak RSS MB"]  # fmt: skip
    return f"End to end on {section['device']}, PyTorch vs ONNX Runtime", markdown_table(
        header, rows
    )


def ratio_table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    body = [
        [r["name"], r["first"]["label"], _ms(r["first"]), r["second"]["label"], _ms(r["second"]),
         f"{fmt(r['ratio'], 2)}x", r["target"]]
        for r in rows
    ]  # fmt: skip
    header = ["ratio", "first", "first ms", "second", "second ms", "first / second", "target"]
    return "Speed ratios, both sides measured alternately in this run", markdown_table(header, body)


def resolution_table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    body = [
        [f"{r['height']}x{r['width']}", fmt(r["megapixels"], 3), _ms(r),
         fmt(r["ms_per_megapixel"], 1)]
        for r in rows
    ]  # fmt: skip
    header = ["input size", "megapixels", "engine ms", "ms per megapixel"]
    return "Cost growth with resolution (ONNX Runtime CPU engine)", markdown_table(header, body)


def token_table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    body = [
        [str(r["long_side"]), f"{r['grid'][0]}x{r['grid'][1]}", str(r["tokens"]), _ms(r),
         fmt(r["ms_per_1000_tokens"], 2), fmt(100 * r["attention_flop_share"], 1)]
        for r in rows
    ]  # fmt: skip
    header = ["network long side", "patch grid", "tokens", "backbone ms", "ms per 1000 tokens",
              "attention % of FLOPs"]  # fmt: skip
    return "Cost growth with tokens (PyTorch eager backbone)", markdown_table(header, body)


def prototype_table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    body = [
        [str(r["per_class"]), str(r["prototypes"]), str(r["patches"]), _ms(r["engine"]),
         _ms(r["scorer_eager"]), fmt(r["scorer_ms_per_1000_prototypes"], 3)]
        for r in rows
    ]  # fmt: skip
    header = ["K per class", "prototypes", "patches", "engine ms", "eager scorer ms",
              "scorer ms per 1000 prototypes"]  # fmt: skip
    title = "Cost growth with prototypes per class (RANDOM prototypes: timings only)"
    return title, markdown_table(header, body)


def gpu_table(section: dict[str, Any]) -> tuple[str, list[str]]:
    body = [
        [r["arch"], f"{r['height']}x{r['width']}", str(r["flops"]["tokens"]), r["runtime"],
         r["status"], _ms(r), fmt(r.get("fps"), 1), fmt(r.get("achieved_tflops"), 1),
         fmt(None if r.get("flop_bound_share") is None else 100 * r["flop_bound_share"], 1)]
        for r in section["rows"]
    ]  # fmt: skip
    header = ["model (random weights)", "network size", "tokens", "runtime", "status", "ms",
              "fps", "TFLOP/s", "% of FLOP bound"]  # fmt: skip
    title = (
        f"GPU throughput on {section['gpu']}; FLOP bound: "
        f"{fmt(section['peak_tflops'], 1)} TFLOP/s ({section['peak_source']})"
    )
    return title, markdown_table(header, body)


def node_lines(node: dict[str, Any]) -> list[str]:
    result = node.get("result")
    if result is None:
        return [f"Node vs engine: {json.dumps(node)[:400]}"]
    return [
        f"Node vs engine at {result['size'][0]}x{result['size'][1]}: node "
        f"{result['node_fps']:.1f} fps / engine {result['engine_fps']:.1f} fps = ratio "
        f"{result['ratio']:.2f} (cpu_ratio {fmt(result.get('cpu_ratio'), 2)})"
    ]


TABLES: dict[str, Callable[[Any], tuple[str, list[str]]]] = {
    "stages": stages_table,
    "end_to_end": end_to_end_table,
    "ratios": ratio_table,
    "growth_resolution": resolution_table,
    "growth_tokens": token_table,
    "growth_prototypes": prototype_table,
    "gpu": gpu_table,
}


def report_lines(report: dict[str, Any]) -> list[str]:
    """Every section present in `report`, in a fixed order, each table titled with its threads."""
    machine = report["machine"]
    label = threads_label(report["threads"])
    lines = [
        f"pixood-bench: {report['model']} on {machine['platform']}, {machine['cpu_count']} CPUs "
        f"({machine['usable_cpus']} usable), torch {machine['torch']}, onnxruntime "
        f"{machine['onnxruntime']}; {label}"
    ]
    for key, table in TABLES.items():
        if key in report:
            title, table_lines = table(report[key])
            lines += ["", f"{title} ({label}):", *table_lines]
    if "node" in report:
        lines += ["", *node_lines(report["node"])]
    return lines
