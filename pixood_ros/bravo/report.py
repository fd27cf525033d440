"""The evaluation breakdown the BRAVO toolkit reports (per-subset metrics, semantic score, OOD
score, BRAVO Index), as a console table, a Markdown report and a JSON file."""

from __future__ import annotations

import math
from pathlib import Path

from pixood_ros import durable
from pixood_ros.tables import fmt

from .evaluate import Evaluation
from .layout import subset_description

#: (result key suffix, column title); ECE and FPR95 are smaller-is-better (they enter the
#: index as 1 − value), every other column is larger-is-better
COLUMNS = (
    ("miou_valid", "mIoU"),
    ("ece_valid", "ECE"),
    ("auroc_valid", "AUROC"),
    ("auprc_success_valid", "AUPR-S"),
    ("auprc_error_valid", "AUPR-E"),
    ("fpr95_valid", "FPR95"),
    ("auroc_ood", "AUROC-ood"),
    ("auprc_ood", "AUPRC-ood"),
    ("fpr95_ood", "FPR95-ood"),
    ("hmean", "hmean"),
)
SUMMARY = (
    ("semantic_hmean", "semantic score (hmean of the *_valid metrics)"),
    ("ood_hmean", "OOD score (hmean of the *_ood metrics)"),
    ("bravo_index", "BRAVO Index (hmean of both)"),
)
NO_INDEX = "n/a (needs subsets with semantic and with OOD metrics)"


def _rows(evaluation: Evaluation) -> list[list[str]]:
    rows = []
    for subset in evaluation.subsets:
        cells = [subset, subset_description(evaluation.layout, subset)]
        cells += [fmt(evaluation.results.get(f"{subset}_{key}")) for key, _ in COLUMNS]
        rows.append(cells)
    return rows


def _summary_lines(evaluation: Evaluation) -> list[tuple[str, str]]:
    results = evaluation.results
    if "bravo_index" not in results:
        return [("BRAVO Index", NO_INDEX)]
    return [(title, fmt(results[key])) for key, title in SUMMARY]


def format_table(evaluation: Evaluation) -> str:
    """Plain-text table for the console: one row per subset, then the three scores."""
    header = ["subset", "role", *(title for _, title in COLUMNS)]
    rows = _rows(evaluation)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out.append("")
    summary = _summary_lines(evaluation)
    width = max(len(title) for title, _ in summary)
    out += [f"{title.ljust(width)}  {value}" for title, value in summary]
    return "\n".join(out)


def format_markdown(evaluation: Evaluation) -> str:
    """Markdown report: where the numbers come from, the per-subset table and the scores."""
    header = ["subset", "role", *(title for _, title in COLUMNS)]
    lines = [
        "# BRAVO evaluation",
        "",
        f"- ground truth: `{evaluation.gt_root}` ({evaluation.layout} layout)",
        f"- submission: `{evaluation.submission_root}`",
        "- metrics as the BRAVO toolkit computes them; ECE and FPR95 are smaller-is-better "
        "and enter the scores as 1 − value",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * len(COLUMNS)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(evaluation)]
    lines.append("")
    lines += [f"- **{title}**: {value}" for title, value in _summary_lines(evaluation)]
    if evaluation.skipped:
        lines.append(f"- not evaluated (no predictions): {', '.join(evaluation.skipped)}")
    return "\n".join(lines) + "\n"


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def to_json(evaluation: Evaluation) -> dict:
    """Nested per-subset view plus the toolkit's flat `{subset}_{metric}` results (NaN → null,
    e.g. the IoU of a class absent from both prediction and ground truth), and the subsets
    skipped for want of predictions."""
    results = {k: _json_safe(v) for k, v in evaluation.results.items()}
    subsets = {}
    for subset in evaluation.subsets:
        entry: dict[str, object] = {"role": subset_description(evaluation.layout, subset)}
        prefix = f"{subset}_"
        entry.update({k[len(prefix) :]: v for k, v in results.items() if k.startswith(prefix)})
        subsets[subset] = entry
    return {
        "layout": evaluation.layout,
        "gt_root": str(evaluation.gt_root),
        "submission": str(evaluation.submission_root),
        "semantic_hmean": results.get("semantic_hmean"),
        "ood_hmean": results.get("ood_hmean"),
        "bravo_index": results.get("bravo_index"),
        "subsets": subsets,
        "skipped_subsets": evaluation.skipped,
        "results": results,
    }


def write_json(evaluation: Evaluation, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    durable.write_json(path, to_json(evaluation))


def write_markdown(evaluation: Evaluation, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    durable.write_text(path, format_markdown(evaluation))
