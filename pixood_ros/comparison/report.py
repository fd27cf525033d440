"""`pixood-benchmark` results as files: benchmark.json, Markdown tables (benchmark.md) and their
place in the README.

The README section sits between `<!-- benchmark:start -->` and `<!-- benchmark:end -->`, so a
rerun replaces exactly the previous tables (and the command that produced them) and nothing else.
The Markdown for the same numbers never changes: the README's Results table must reproduce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixood_ros import durable
from pixood_ros.tables import fmt, markdown_table

START_MARKER = "<!-- benchmark:start -->"
END_MARKER = "<!-- benchmark:end -->"

# (key, header, digits) of a table's columns; higher is better except FPR95.
SPLIT_COLUMNS = (
    ("ap", "AP", 3),
    ("auroc", "AUROC", 3),
    ("fpr95", "FPR95 ↓", 3),
    ("siou", "sIoU", 3),
    ("ppv", "PPV", 3),
    ("f1_mean", "mean F1", 3),
    ("miou", "mIoU", 3),
    ("bravo_index", "BRAVO Index", 3),
    ("fps", "fps", 1),
)
OVERALL_COLUMNS = (
    ("mean_ap", "mean AP", 3),
    ("mean_auroc", "mean AUROC", 3),
    ("mean_fpr95", "mean FPR95 ↓", 3),
    ("bravo_index", "BRAVO Index (all splits)", 3),
    ("semantic_hmean", "semantic hmean", 3),
    ("ood_hmean", "OOD hmean", 3),
    ("mean_fps", "mean fps", 1),
)
SMIYC_NOTE = (
    " Protocol smiyc (the SMIYC toolkit's): float16 scores, per-frame percentile bins, "
    "trapezoid AP, no AUROC; the best-F1 threshold is the binned curve's, applied as score > "
    "threshold."
)
NO_SEMANTIC_NOTE = " The data has no semantic labels: mIoU and BRAVO are n/a."


def _notes(results: dict[str, Any]) -> str:
    """Sentences for what differs from the default run (protocol, data without semantics)."""
    notes = SMIYC_NOTE if results.get("protocol") == "smiyc" else ""
    if results.get("data_kind", "pixood-synth") != "pixood-synth":
        notes += NO_SEMANTIC_NOTE
    return notes


SPLIT_NOTES = {
    "ood_val": "anomalies standing on the road",
    "ood_small": "small, distant anomalies",
    "ood_roadlike": "anomalies coloured and textured like the road",
    "ood_shift": "anomalies in dark, foggy or blurred frames",
}


def _table(rows: dict[str, dict[str, Any]], columns: tuple) -> list[str]:
    """A row per model; the values are floats or None (shown as n/a)."""
    header = ["model", *(title for _, title, _ in columns)]
    cells = [
        [name, *(fmt(values.get(key), digits) for key, _, digits in columns)]
        for name, values in rows.items()
    ]
    return markdown_table(header, cells)


def markdown(results: dict[str, Any]) -> str:
    """Per-split tables (a row per model) and an overall table."""
    models = results["models"]
    first = next(iter(models.values()))
    lines = [
        f"Produced by `{results['command']}` on {results['created']}: data `{results['data']}`, "
        f"engine ONNX Runtime ({first['provider']}).",
        "",
        f"Scored pixels for AP / AUROC / FPR95 / components: {first['scored_pixels']}. "
        f"Components (SMIYC rules, {first['component_track']}-track size filters) at each "
        "model's best-F1 threshold of the split; mIoU over all "
        "labelled pixels; BRAVO Index = the BRAVO toolkit's formula on the split (confidence "
        "output as `_conf`, anomalies as invalid pixels); fps = engine frames per second."
        + _notes(results),
        "",
    ]
    for split in results["splits"]:
        rows = results["results"][split]
        frames = next(iter(rows.values()))["frames"]
        note = SPLIT_NOTES.get(split, "")
        lines += [f"**{split}** ({frames} frames{': ' + note if note else ''})", ""]
        lines += _table(rows, SPLIT_COLUMNS)
        lines.append("")
    lines += ["**All splits**", ""]
    lines += _table(results["overall"], OVERALL_COLUMNS)
    if results.get("legend"):
        lines += ["", *results["legend"]]
    if results.get("chain"):
        lines += ["", "The whole chain (what `--reproduce` ran):", "", "```"]
        lines += results["chain"]
        lines.append("```")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out_dir: Path, command: str, readme: Path | None) -> str:
    """benchmark.json + benchmark.md (and the README section); returns the Markdown. Each file
    is complete or untouched (`pixood_ros.durable`); a symlink there is replaced."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "command": command}
    durable.write_json(out_dir / "benchmark.json", results)
    text = markdown(results)
    durable.write_text(out_dir / "benchmark.md", text)
    if readme is not None:
        insert_into_readme(readme, text)
    return text


def _marker_positions(content: str, readme: Path) -> tuple[int, int]:
    """(start, end) of the markers, both -1 when there are none; ValueError when only one marker
    is there or the end comes before the start (refused rather than guessed at)."""
    start, end = content.find(START_MARKER), content.find(END_MARKER)
    if (start < 0) != (end < 0) or end < start:
        raise ValueError(
            f"{readme}: the markers {START_MARKER} / {END_MARKER} are incomplete or out of order"
        )
    return start, end


def check_markers(readme: Path) -> None:
    """ValueError when the README has only one marker or the end before the start."""
    _marker_positions(readme.read_text(), readme)


def insert_into_readme(readme: Path, text: str) -> None:
    """Replace what is between the markers with `text`; append a Benchmark section carrying the
    markers when the README has none."""
    content = readme.read_text()
    start, end = _marker_positions(content, readme)
    block = f"{START_MARKER}\n{text.rstrip()}\n{END_MARKER}"
    if start < 0:
        separator = "" if content.endswith("\n") or not content else "\n"
        content = f"{content}{separator}\n## Benchmark\n\n{block}\n"
    else:
        content = content[:start] + block + content[end + len(END_MARKER) :]
    durable.write_text(readme, content)
