"""Report figures beside the region metrics: the same pixel metrics over the whole frame (every
labelled pixel), the mask's TPR / FPR / precision at the deployed threshold, plots that carry
AP / AUROC and mark that operating point, and Markdown tables showing both."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.bag import report
from pixood_ros.bag.scoring import EvalMetrics, operating_point
from pixood_ros.metrics import pixel_metrics
from pixood_ros.metrics.curves import curve_from_scores
from pixood_ros.metrics.region import ScoredRegion, restrict_labels

THRESHOLD = 0.5
ROAD = ScoredRegion("eval-labels", (0,), "requested")


def _frames(count=3, height=24, width=32):
    rng = np.random.default_rng(7)
    frames = []
    for i in range(count):
        score = (rng.integers(0, 256, (height, width)) / 255).astype(np.float32)
        ood = np.zeros((height, width), np.uint8)
        ood[5 + i : 12 + i, 4:12] = 1
        ood[0] = 255
        score[ood == 1] = np.clip(score[ood == 1] + 0.3, 0, 1)
        semantic = rng.integers(0, 3, (height, width)).astype(np.uint8)  # 0 = road
        frames.append((score, ood, semantic))
    return frames


def _summary(tmp_path, region=ROAD):
    with EvalMetrics(THRESHOLD, num_classes=3, region=region, spill_dir=tmp_path) as metrics:
        for score, ood, semantic in _frames():
            metrics.add_ood(score, ood, semantic)
        return metrics, metrics.summary(["road", "sidewalk", "car"])


def _mask_rates(scores, labels):
    flagged = np.concatenate([s.ravel() >= THRESHOLD for s in scores])
    labels = np.concatenate([lab.ravel() for lab in labels])
    tp = np.sum(flagged & (labels == 1))
    fp = np.sum(flagged & (labels == 0))
    return tp / np.sum(labels == 1), fp / np.sum(labels == 0), tp / (tp + fp)


def test_whole_frame_figures_beside_the_region_ones(tmp_path):
    _, summary = _summary(tmp_path)
    frames = _frames()
    scores = [s for s, _, _ in frames]
    whole = [o for _, o, _ in frames]
    region = [restrict_labels(o, sem, ROAD.classes) for _, o, sem in frames]
    for key, labels in (("pixel", region), ("pixel_whole_frame", whole)):
        expected = pixel_metrics(scores, labels)
        for metric in ("ap", "auroc", "fpr95"):
            assert summary[key][metric] == pytest.approx(expected[metric], abs=1e-3), key
        assert (summary[key]["n_pos"], summary[key]["n_neg"]) == (
            expected["n_pos"],
            expected["n_neg"],
        )
        point = summary[f"{key}_at_threshold"]
        tpr, fpr, precision = _mask_rates(scores, labels)
        assert point["threshold"] == THRESHOLD
        assert (point["tpr"], point["fpr"], point["precision"]) == pytest.approx(
            (tpr, fpr, precision), abs=1e-12
        )
    assert summary["pixel_whole_frame"]["n_neg"] > summary["pixel"]["n_neg"]


def test_operating_point_reads_the_metrics_curve():
    scores = np.array([0.9, 0.8, 0.5, 0.4, 0.3, 0.2], np.float32)
    positive = np.array([True, False, True, False, True, False])
    curve = curve_from_scores(scores, positive)
    point = operating_point(curve, 0.5)
    assert (point["tpr"], point["fpr"], point["precision"]) == pytest.approx((2 / 3, 1 / 3, 2 / 3))
    assert (point["flagged_anomaly_px"], point["flagged_normal_px"]) == (2, 1)
    nothing = operating_point(curve, 0.95)
    assert (nothing["tpr"], nothing["fpr"], nothing["precision"]) == (0.0, 0.0, None)


def test_markdown_tables_and_plots_show_both_and_the_threshold(tmp_path, monkeypatch):
    metrics, summary = _summary(tmp_path)
    lines = "\n".join(report.pixel_tables(summary))
    assert "| region |" in lines and "| whole frame |" in lines
    whole = summary["pixel_whole_frame_at_threshold"]
    assert f"| whole frame | {whole['tpr']:.4f} | {whole['fpr']:.4f} |" in lines
    assert "score >= 0.500" in lines
    legends = {}

    def keep_legend(fig, path):
        legends[path.name] = [t.get_text() for ax in fig.axes for t in ax.get_legend().texts]
        return path.name

    monkeypatch.setattr(report, "_save", keep_legend)
    files = report.write_plots(metrics, tmp_path)
    assert set(files) == {"pr_curve", "roc_curve", "score_histogram"}
    pr, roc = legends["pr_curve.png"], legends["roc_curve.png"]
    assert f"region: AP {summary['pixel']['ap']:.3f}" in pr
    assert f"whole frame: AP {summary['pixel_whole_frame']['ap']:.3f}" in pr
    assert f"whole frame: AUROC {summary['pixel_whole_frame']['auroc']:.3f}" in roc
    assert "region at threshold 0.500" in roc and "whole frame at threshold 0.500" in pr
    assert "threshold 0.500" in legends["score_histogram.png"]


def test_region_of_every_pixel_has_identical_whole_frame_figures(tmp_path):
    _, summary = _summary(tmp_path, ScoredRegion("all", None, "requested"))
    assert summary["pixel_whole_frame"] == summary["pixel"]
    assert summary["pixel_whole_frame_at_threshold"] == summary["pixel_at_threshold"]
