"""bag-eval --protocol: `smiyc` gives the SMIYC toolkit's pixel figures and component threshold
(`pixood_ros.metrics.protocols`), streamed frame by frame; `exact` stays the default."""

from __future__ import annotations

import numpy as np
import pytest
from test_bag_datasets import _evaluate
from test_bag_region import _frames

from pixood_ros.bag.scoring import EvalMetrics
from pixood_ros.bag.scoring_options import ScoringOptions
from pixood_ros.metrics.protocols import anomaly_metrics

SIZES = {"min_pred_size": 0, "min_gt_size": 0}


def _summary(tmp_path, frames, protocol):
    with EvalMetrics(0.5, 19, **SIZES, protocol=protocol, spill_dir=tmp_path) as metrics:
        for s, lab in frames:
            metrics.add_ood(s, lab)
        return metrics.summary([])


@pytest.mark.parametrize("kind", ["levels", "floats"])
def test_smiyc_protocol_gives_the_toolkits_figures(tmp_path, kind):
    frames = _frames(kind, count=4)
    scores, labels = [s for s, _ in frames], [lab for _, lab in frames]
    pixel, components = anomaly_metrics(scores, labels, "smiyc", **SIZES)
    got = _summary(tmp_path, frames, "smiyc")
    for key in ("ap", "fpr95", "best_f1", "best_f1_threshold", "n_pos", "n_neg"):
        assert got["pixel"][key] == pixel[key], key
    assert got["pixel"]["auroc"] is None  # the toolkit's curve has none
    assert any("SMIYC protocol" in note for note in got["notes"])
    rule = got["components"]["component_threshold"]
    assert rule["value"] == components["threshold"] and "> stored value" in rule["predicted"]
    for key in ("siou", "ppv", "f1_mean", "n_gt_components", "n_pred_components"):
        assert got["components"][key] == pytest.approx(components[key], abs=0), key
    # the whole frame and the default protocol keep the exact binned figures
    exact = _summary(tmp_path, frames, "exact")
    assert got["pixel_whole_frame"] == exact["pixel_whole_frame"]
    assert exact["pixel"]["auroc"] is not None
    assert exact["pixel"]["fpr95"] != got["pixel"]["fpr95"]


def test_protocol_is_an_option_of_the_scoring():
    assert ScoringOptions().protocol == "exact"
    assert "--protocol" not in ScoringOptions().argv()
    assert ScoringOptions(protocol="smiyc").argv()[-2:] == ["--protocol", "smiyc"]


def test_bag_eval_protocol_smiyc_end_to_end(tmp_path, capsys):
    _, report, _, markdown = _evaluate(tmp_path, capsys, "smiyc-ra21", "--protocol", "smiyc")
    pixel = report["metrics"]["pixel"]
    assert pixel["auroc"] is None and 0 < pixel["ap"] <= 1
    assert np.isfinite(report["metrics"]["pixel_whole_frame"]["auroc"])
    assert "SMIYC protocol" in markdown
    assert "> stored value" in report["metrics"]["components"]["component_threshold"]["predicted"]
