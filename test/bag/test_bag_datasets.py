"""Bags made from published layouts (SMIYC RA21 / RO21, Fishyscapes L&F): bag-eval takes the data
set's component track from the bag and says that there are no semantic metrics."""

from __future__ import annotations

import json

import pytest
from dataset_fixtures import write_layout
from model_fixtures import make_handmade_model

from pixood_ros.bag.bag_input import BagInput
from pixood_ros.bag.cli import main as bag_eval
from pixood_ros.bag.make_bag import main as make_bag
from pixood_ros.datasets import LAYOUTS


def _evaluate(tmp_path, capsys, name, *extra):
    root, _ = write_layout(tmp_path, name, labelled=3)
    bag = tmp_path / "bag"
    assert make_bag([str(root), "-o", str(bag), "--start-time", "1", "--no-progress"]) == 0
    model = make_handmade_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    argv = [str(model), str(bag), "-o", str(out), "--providers", "cpu", "--no-progress",
            "--anomaly-mode", "eval_labels", *extra]  # fmt: skip
    capsys.readouterr()
    assert bag_eval(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    return bag, report, capsys.readouterr().out, (out / "report.md").read_text()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_track_auto_is_the_data_sets_track_and_semantics_are_na(tmp_path, capsys, name):
    bag, report, stdout, markdown = _evaluate(tmp_path, capsys, name)
    assert BagInput(bag).dataset == name
    metrics = report["metrics"]
    # region "all" (no semantic labels) would give the anomaly track; RO21 is the obstacle one
    assert metrics["region"]["name"] == "all"
    assert metrics["components"]["component_threshold"]["track"] == LAYOUTS[name].track
    assert f"component track {LAYOUTS[name].track}: the bag was made from {name}" in markdown
    line = "semantic metrics: n/a (no semantic labels)"
    assert line in metrics["notes"] and line in markdown and line in stdout


def test_an_explicit_track_wins_over_the_data_set(tmp_path, capsys):
    _, report, _, _ = _evaluate(tmp_path, capsys, "smiyc-ro21", "--track", "anomaly")
    assert report["metrics"]["components"]["component_threshold"]["track"] == "anomaly"
    assert not any("the bag was made from" in note for note in report["metrics"]["notes"])
