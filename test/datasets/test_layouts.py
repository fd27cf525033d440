"""Public data sets in their published layouts (SMIYC RoadAnomaly21 / RoadObstacle21, Fishyscapes
Lost & Found) are found, read with their masks, and evaluate end to end: make-bag ▶ bag-eval,
and pixood-benchmark with a real exported model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import write_layout
from model_fixtures import make_handmade_model

from pixood_ros.bag.cli import main as bag_eval
from pixood_ros.bag.make_bag import main as make_bag
from pixood_ros.comparison.run import main as benchmark
from pixood_ros.datasets import LAYOUTS, dataset_files, dataset_source, detect_layout

NAMES = sorted(LAYOUTS)
NO_SIZE_FILTERS = ["--min-pred-size", "0", "--min-gt-size", "0"]


@pytest.mark.parametrize("name", NAMES)
def test_layout_is_detected_and_only_masked_frames_are_ground_truth(tmp_path, name):
    root, masks = write_layout(tmp_path, name, labelled=3, unlabelled=2)
    layout = detect_layout(root)
    assert layout is not None and layout.name == name
    assert detect_layout(tmp_path).name == name  # the parent of the published folder works too
    files = dataset_files(root, layout)
    assert files.unlabelled == 2 and len(files.images) == 3
    frames = list(dataset_source(files).frames)
    assert [f.name.split(".")[0] for f in frames] == [f"validation_{i:04d}" for i in range(3)]
    for frame, mask in zip(frames, masks, strict=True):
        assert np.array_equal(frame.ood, mask) and frame.semantic is None


def test_a_test_split_without_masks_is_images_only(tmp_path):
    root, _ = write_layout(tmp_path, "smiyc-ro21", labelled=0, unlabelled=2)
    source = dataset_source(dataset_files(root, LAYOUTS["smiyc-ro21"]))
    assert not source.has_ood and source.count == 2


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("smiyc-ra21", lambda p: (p / "images").mkdir(), "no .jpg images"),
        ("fishyscapes-lf", lambda p: (p / "images").mkdir(), "not a Fishyscapes Lost & Found"),
        ("smiyc-ro21", lambda p: None, "not a SMIYC RoadObstacle21 folder"),
    ],
)
def test_wrong_folder_is_one_line_exit_2(tmp_path, capsys, name, make, message):
    root = tmp_path / "data"
    root.mkdir()
    make(root)
    assert make_bag(["--dataset", name, str(root), "-o", str(tmp_path / "bag")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "bag").exists()


@pytest.mark.parametrize("name", NAMES)
def test_make_bag_then_bag_eval_scores_the_masks(tmp_path, capsys, name):
    """The handmade model's score is the red channel, high exactly on the anomalies; the bag
    of a detected layout gets the masks, and bag-eval reports pixel metrics and no semantics."""
    root, masks = write_layout(tmp_path, name, labelled=3, unlabelled=1)
    bag = tmp_path / "bag"
    assert make_bag([str(root), "-o", str(bag), "--start-time", "1", "--no-progress"]) == 0
    assert f"{LAYOUTS[name].title}: 3 frames" in capsys.readouterr().out
    model = make_handmade_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    argv = [str(model), str(bag), "-o", str(out), "--providers", "cpu", "--no-progress",
            "--anomaly-mode", "eval_labels", *NO_SIZE_FILTERS]  # fmt: skip
    assert bag_eval(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    metrics = report["metrics"]
    assert report["frames"]["evaluated"] == 3
    assert metrics["region"]["name"] == "all"
    assert metrics["pixel"]["ap"] > 0.99
    assert metrics["pixel"]["n_pos"] == sum(int((m == 1).sum()) for m in masks)
    assert "semantic" not in metrics


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from model_fixtures import export_tiny_model

    return export_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_benchmark_scores_a_published_layout(tmp_path, capsys, tiny_model, name):
    root, _ = write_layout(tmp_path, name, labelled=2)
    out = tmp_path / "out"
    argv = [f"tiny={tiny_model}", "--data", str(root), "-o", str(out), "--providers", "cpu",
            "--no-progress"]  # fmt: skip
    assert benchmark(argv) == 0, capsys.readouterr().err
    results = json.loads((out / "benchmark.json").read_text())
    assert results["splits"] == [name] and results["data_kind"] == name
    row = results["results"][name]["tiny"]
    assert row["frames"] == 2 and 0.0 <= row["ap"] <= 1.0
    assert row["miou"] is None and row["bravo_index"] is None
    assert results["models"]["tiny"]["component_track"] == LAYOUTS[name].track
    assert results["models"]["tiny"]["region"]["name"] == "all"
    markdown = (out / "benchmark.md").read_text()
    assert "no semantic labels: mIoU and BRAVO are n/a" in markdown
