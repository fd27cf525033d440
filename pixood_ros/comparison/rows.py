"""The rows of the reproduced comparison and their honest names (docs/evaluation.md §5.1).

Every scorer's exported `anomaly_score` is 1 − max over the model's eval labels (road +
sidewalk in the demo configs) of its class scores, so the baselines scored on it are
road-restricted variants and are named so, e.g. "MSP (road+sidewalk)". The classic all-class
MSP / MaxLogit / Energy of the leaderboards are the same model files' `unknown_score`
(1 − max over all classes: exactly 1 − MSP for msp, a strictly decreasing map of the max logit
and of the free energy for maxlogit and energy, training/scorers/baselines.py), scored with
anomaly mode `unknown`, no extra export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixood_ros.anomaly_modes import EVAL_LABELS, UNKNOWN
from pixood_ros.cityscapes import CLASS_NAMES
from pixood_ros.comparison.specs import ModelSpec

TITLES = {"pixood": "PixOOD", "kmeans": "k-means", "msp": "MSP", "maxlogit": "MaxLogit",
          "energy": "Energy"}  # fmt: skip
CLASSIC = ("msp", "maxlogit", "energy")
PUBLISHED_PIXOOD = "pixood_published"
INTERNIMAGE_ROW = "InternImage + UperNet, k-means"
PUBLISHED_KMEANS = "kmeans"  # the InternImage-OOD config's decide stage writes checkpoints/kmeans
INTERNIMAGE_ONNX = "internimage_ood"


@dataclass(frozen=True)
class Row:
    name: str
    checkpoint: Path
    onnx: Path
    mode: str = EVAL_LABELS
    #: written by a training stage that may not exist in this checkout (left out when absent)
    optional: bool = False


def restriction(eval_labels: list[int]) -> str:
    """ "road+sidewalk" for eval labels [0, 1]; "" when they cover every class."""
    if len(set(eval_labels)) >= len(CLASS_NAMES):
        return ""
    return "+".join(CLASS_NAMES[i] if 0 <= i < len(CLASS_NAMES) else str(i) for i in eval_labels)


def comparison_rows(
    scorers: list[str],
    eval_labels: list[int],
    experiment: Path,
    models: Path,
    internimage_experiment: Path | None = None,
) -> list[Row]:
    """Default PixOOD first, its published rule beside it, the eval-label-restricted scorers,
    the classic all-class baselines, then the InternImage-OOD family model."""
    tag = restriction(eval_labels)
    checkpoints = experiment / "checkpoints"
    rows = []
    if "pixood" in scorers:
        rows.append(Row("PixOOD", checkpoints / "pixood", models / "pixood.onnx"))
        published = models / f"{PUBLISHED_PIXOOD}.onnx"
        rows.append(
            Row("PixOOD (published rule)", checkpoints / PUBLISHED_PIXOOD, published, optional=True)
        )
    for scorer in scorers:
        if scorer == "pixood":
            continue
        title = TITLES.get(scorer, scorer)
        name = f"{title} ({tag})" if tag else title
        rows.append(Row(name, checkpoints / scorer, models / f"{scorer}.onnx"))
    if tag:  # with all classes as eval labels the rows above are the classic ones already
        for scorer in (s for s in CLASSIC if s in scorers):
            onnx = models / f"{scorer}.onnx"
            rows.append(Row(TITLES[scorer], checkpoints / scorer, onnx, UNKNOWN))
    if internimage_experiment is not None:
        rows.append(
            Row(
                INTERNIMAGE_ROW,
                internimage_experiment / "checkpoints" / PUBLISHED_KMEANS,
                models / f"{INTERNIMAGE_ONNX}.onnx",
                optional=True,
            )
        )
    return rows


def legend(rows: list[Row], eval_labels: list[int]) -> list[str]:
    """What the row names mean, printed under the tables."""
    tag = restriction(eval_labels)
    lines = ["Rows:"]
    if tag:
        lines.append(
            f"- `X ({tag})`: the scorer's `anomaly_score`, 1 − max over {tag} of its class "
            "scores (what the node flags)."
        )
        lines.append(
            "- `MSP`, `MaxLogit`, `Energy`: the classic all-class baselines, the same model "
            "files' `unknown_score` (anomaly mode `unknown`)."
        )
    if any(r.name == "PixOOD (published rule)" for r in rows):
        lines.append(
            "- `PixOOD`: the monotone decision rule (default); `PixOOD (published rule)`: the "
            "paper's decision rule, same backbone, decoder and prototypes."
        )
    if any(r.name == INTERNIMAGE_ROW for r in rows):
        lines.append(
            f"- `{INTERNIMAGE_ROW}`: InternImage + UperNet (the InternImage-OOD architecture, "
            "small, trained on the synthetic data) with the k-means rule its training config "
            "sets (`decide.kmeans.rule`); `k-means`: our per-class k-means on the PixOOD "
            "backbone."
        )
    return lines


def spec_text(spec: ModelSpec) -> str:
    """`NAME=PATH[@MODE]`, the benchmark's model argument for a row (shell-quoted by the caller)."""
    mode = "" if spec.mode == EVAL_LABELS else f"@{spec.mode}"
    return f"{spec.name}={spec.path}{mode}"
