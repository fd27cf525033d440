"""`pixood-train` with model.family internimage: stage 1 (UperNet head), no condensation, decide
(k-means with the published rule, MSP, max-logit, energy), checkpoints that load and run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_runs import synth_set

from pixood_training.checkpoint import load_model
from pixood_training.train.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config" / "train" / "synth_internimage.yaml"
SHRINK = [
    "model.backbone.channels=16",
    "model.backbone.depths=[1,1,1,1]",
    "model.backbone.groups=[1,2,4,8]",
    "model.decoder.hidden_dim=16",
    "data.num_workers=0",
    "stage1.epochs=1",
    "stage1.batch_size=2",
    "condense.cache_batch_size=2",
    "decide.kmeans.clusters_per_class=2",
    "decide.kmeans.iterations=3",
    "decide.kmeans.rule=published",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    return synth_set(root, {"train": 4, "val": 2, "ood_val": 2}, width=256, height=128)


def _train(stage: str, exp: Path, data: Path, *extra: str) -> int:
    args = [stage, "--config", str(CONFIG), f"data.root={data}", "--out", str(exp)]
    return main([*args, "--no-progress", *SHRINK, *extra])


@pytest.mark.slow
def test_all_trains_the_head_skips_condensation_and_writes_the_scorers(tmp_path, data, capsys):
    exp = tmp_path / "exp"
    assert _train("all", exp, data) == 0
    assert "condense: skipped" in (exp / "train.log").read_text()
    metrics = json.loads((exp / "metrics.json").read_text())
    assert "condense" not in metrics and metrics["stage1"]["val_miou"] >= 0
    scorers = metrics["decide"]["scorers"]
    assert set(scorers) == {"kmeans", "msp", "maxlogit", "energy"}
    assert all(0.0 <= values["ap"] <= 1.0 for values in scorers.values())
    model = load_model(exp / "checkpoints" / "kmeans")
    config = model.get_config()
    assert config["family"] == "internimage" and config["scorer"]["rule"] == "published"
    assert config["network_long_side"] == 224
    with torch.no_grad():
        anomaly, semantic, confidence = model(torch.zeros(1, 128, 256, 3, dtype=torch.uint8))
    assert anomaly.shape == semantic.shape == confidence.shape == (1, 128, 256)
    capsys.readouterr()
    assert _train("condense", exp, data) == 2
    assert "no condensation" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override,message",
    [
        ("pretrain.enabled=true", "pretrain"),
        ("data.long_side=434", "multiples of 32"),
        ("model.backbone.width=3", "model.backbone"),
    ],
)
def test_options_the_family_cannot_use_are_one_line_errors(
    tmp_path, data, capsys, override, message
):
    assert _train("stage1", tmp_path / "exp", data, override) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
