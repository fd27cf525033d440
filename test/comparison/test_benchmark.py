"""pixood-benchmark: one row per model and split whose numbers are what pixood_ros.metrics (and,
for the BRAVO Index, the independent file-based `pixood-bravo` path) give on the same engine
outputs; README insertion between markers; one-line user errors; the reproduction chain."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import CITYSCAPES_CLASSES, make_handmade_model

from pixood_ros.bravo.cli import main as bravo_main
from pixood_ros.comparison.report import END_MARKER, START_MARKER
from pixood_ros.comparison.run import main
from pixood_ros.engine import Segmenter
from pixood_ros.metrics import component_metrics, miou, pixel_metrics
from pixood_ros.synth import write_dataset

REPO = Path(__file__).resolve().parents[2]
SPLITS = ["ood_val", "ood_small", "ood_roadlike", "ood_shift"]
COMMON = ["--providers", "cpu", "--no-progress", "--min-pred-size", "0", "--min-gt-size", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench_data")
    write_dataset(root, {split: 2 for split in SPLITS} | {"val": 1}, width=128, height=64, seed=3,
                  progress=False)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two models that score different pixels: 'road' answers for road + sidewalk only (eval
    labels 0, 1: obstacle-track region), 'every' for all classes (every pixel scored)."""
    folder = tmp_path_factory.mktemp("bench_models")
    return {
        "road": make_handmade_model(folder / "road.onnx", scorer="pixood", eval_labels=(0, 1)),
        "every": make_handmade_model(
            folder / "every.onnx", scorer="msp", eval_labels=range(len(CITYSCAPES_CLASSES))
        ),
    }


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory, data, models) -> dict:
    out = tmp_path_factory.mktemp("bench_out")
    argv = [f"{name}={path}" for name, path in models.items()]
    assert main([*argv, "--data", str(data), "-o", str(out), *COMMON]) == 0
    return {
        "json": json.loads((out / "benchmark.json").read_text()),
        "md": (out / "benchmark.md").read_text(),
    }


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _direct(model: Path, root: Path, split: str, region: list[int] | None) -> dict[str, float]:
    """The table's metrics computed straight from engine outputs and the data set's files."""
    engine = Segmenter(model, providers=["cpu"], warmup=False)
    scores, labels, preds, gts = [], [], [], []
    for image in sorted((root / "leftImg8bit" / split / "synth").glob("*.png")):
        stem = image.name.removesuffix("_leftImg8bit.png")
        rgb = cv2.cvtColor(_read(image), cv2.COLOR_BGR2RGB)
        ood = _read(root / "ood" / split / "synth" / f"{stem}_ood.png")
        sem = _read(root / "gtFine" / split / "synth" / f"{stem}_gtFine_labelTrainIds.png")
        result = engine(rgb)
        if region is not None:
            ood = np.where(ood == 1, 1, np.where(np.isin(sem, region) & (ood == 0), 0, 255))
        scores.append(result.anomaly_score)
        labels.append(ood.astype(np.uint8))
        preds.append(result.semantic)
        gts.append(sem)
    pixel = pixel_metrics(scores, labels)
    comp = component_metrics(scores, labels, None, min_pred_size=0, min_gt_size=0)
    return {
        "ap": pixel["ap"],
        "auroc": pixel["auroc"],
        "fpr95": pixel["fpr95"],
        "siou": comp["siou"],
        "ppv": comp["ppv"],
        "f1_mean": comp["f1_mean"],
        "miou": miou(preds, gts, len(CITYSCAPES_CLASSES)),
    }


def test_a_row_per_model_with_the_numbers_of_pixood_ros_metrics(benchmark, data, models):
    results = benchmark["json"]["results"]
    assert list(results) == SPLITS
    for split in SPLITS:
        assert list(results[split]) == ["road", "every"]
        for name, region in (("road", [0, 1]), ("every", None)):
            row = results[split][name]
            assert row["frames"] == 2 and row["fps"] > 0
            expected = _direct(models[name], data, split, region)
            for key, value in expected.items():
                assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (split, name, key)
        # the two rows score different pixel sets, so the table really tells them apart
        assert results[split]["road"]["scored_pixels"] < results[split]["every"]["scored_pixels"]
    regions = {name: m["region"] for name, m in benchmark["json"]["models"].items()}
    assert regions["road"]["name"] == "eval-labels" and regions["road"]["classes"] == [0, 1]
    assert regions["every"]["name"] == "all" and "cover all 19" in regions["every"]["reason"]
    md = benchmark["md"]
    for split in SPLITS:
        section = md.split(f"**{split}**")[1].split("**")[0]
        for name in ("road", "every"):
            row = results[split][name]
            line = next(x for x in section.splitlines() if x.startswith(f"| {name} |"))
            assert f"| {row['ap']:.3f} | {row['auroc']:.3f} | {row['fpr95']:.3f} |" in line
    assert "BRAVO Index" in md and "pixood-benchmark road=" in md


def test_bag_eval_scores_a_split_like_the_benchmark(benchmark, data, models, tmp_path):
    """One region rule and one component operating point: pixood-bag-eval on a bag of the same
    frames reports the benchmark's numbers (its pixel histogram is exact for k/255 scores) when
    it scores the same map: the model's raw output (`--anomaly-mode eval_labels`)."""
    from pixood_ros.bag.cli import main as bag_eval
    from pixood_ros.bag.make_bag import write_bag
    from pixood_ros.frames import synth_source

    split = SPLITS[0]
    write_bag(synth_source(data, split), tmp_path / "bag", rate=10.0, progress=False)
    args = [str(models["road"]), str(tmp_path / "bag"), "-o", str(tmp_path / "out"),
            "--no-output-bag", "--anomaly-mode", "eval_labels", *COMMON]  # fmt: skip
    assert bag_eval(args) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())["metrics"]
    row = benchmark["json"]["results"][split]["road"]
    assert rep["region"]["name"] == "eval-labels"
    # bag-eval keeps 16-bit score bins for its component pass (<= 2 MB written per 1080p frame),
    # so its best-F1 threshold is the bin edge at or below the benchmark's exact one
    edge = math.floor(row["component_threshold"] * 65536) / 65536
    assert rep["components"]["component_threshold"]["value"] == edge
    for key in ("siou", "ppv", "f1_mean"):
        assert rep["components"][key] == pytest.approx(row[key], abs=1e-12), key
    for key in ("ap", "auroc", "fpr95"):
        assert rep["pixel"][key] == pytest.approx(row[key], abs=1e-12), key
    assert rep["pixel"]["n_pos"] + rep["pixel"]["n_neg"] == row["scored_pixels"]


def test_bravo_index_matches_pixood_bravo(benchmark, data, models, tmp_path):
    """The independent file path: pixood-bravo predict (PNG files) + evaluate per split."""
    for name, model in models.items():
        submission = tmp_path / name
        assert bravo_main(["predict", str(model), str(data), "-o", str(submission),
                           "--providers", "cpu", "--no-progress"]) == 0  # fmt: skip
        for split in SPLITS:
            report = tmp_path / f"{name}_{split}.json"
            assert bravo_main(["evaluate", str(data), str(submission), "--subsets", split,
                               "--json", str(report), "--no-progress"]) == 0  # fmt: skip
            expected = json.loads(report.read_text())["results"]["bravo_index"]
            got = benchmark["json"]["results"][split][name]["bravo_index"]
            assert got == pytest.approx(expected, abs=1e-12), (name, split)


def test_readme_insertion_between_markers(tmp_path, data, models):
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    original = readme.read_text()
    argv = [f"road={models['road']}", "--data", str(data), "--splits", "ood_val", *COMMON]
    assert main([*argv, "-o", str(tmp_path / "a"), "--readme", str(readme)]) == 0
    first = readme.read_text()
    if START_MARKER not in original:  # appended as a section of its own
        assert first.startswith(original) and "## Benchmark" in first
    table = (tmp_path / "a" / "benchmark.md").read_text().strip()
    assert f"{START_MARKER}\n{table}\n{END_MARKER}" in first
    assert "Produced by `pixood-benchmark road=" in first and "--readme" in first
    # a rerun replaces the block, it does not add a second one
    assert (
        main([*argv, "--max-frames", "1", "-o", str(tmp_path / "b"), "--readme", str(readme)]) == 0
    )
    second = readme.read_text()
    assert second.count(START_MARKER) == 1 and second.count(END_MARKER) == 1
    assert "--max-frames 1" in second and "(1 frames" in second
    before, after = first.split(START_MARKER)[0], first.split(END_MARKER)[1]
    assert second.startswith(before) and second.endswith(after)


def test_readme_text_around_existing_markers_is_kept(tmp_path, data, models):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{START_MARKER}\nold table\n{END_MARKER}\n\nfooter\n")
    argv = [str(models["road"]), "--data", str(data), "--splits", "ood_val", *COMMON]
    assert main([*argv, "-o", str(tmp_path / "out"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(f"# Title\n\nintro\n\n{START_MARKER}\n")
    assert text.endswith(f"{END_MARKER}\n\nfooter\n")
    assert "old table" not in text and "| pixood |" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{data}", "{nope}"], "model not found"),
        (["{road}", "--data", "{data}", "--splits", "ood_nothing"], "no split 'ood_nothing'"),
        (["--data", "{data}"], "give at least one MODEL.onnx"),
        (["{road}"], "--data ROOT"),
        (["{road}", "--data", "{tmp}"], "is neither a pixood-synth data set"),
        (["{road}@unknown", "--data", "{data}"], "needs the model output 'unknown_score'"),
        (["{road}", "--data", "{data}", "--max-frames", "0"], "--max-frames: must be >= 1"),
        (["{road}", "--data", "{data}", "--max-frames", "nan"], "--max-frames: not a whole"),
        (["{road}", "--data", "{data}", "--min-pred-size", "-1"], "--min-pred-size: must be >= 0"),
        (["{road}", "--data", "{data}", "-o", "{broken}"], "--out-dir exists and is not a dir"),
        (["{road}", "--data", "{data}", "--splits", "val"], "no positive (anomaly) pixels"),
        (["{road}", "--data", "{data}", "--readme", "{broken}"], "markers"),
        (["--reproduce", "--config", "{nope}"], "training config not found"),
        (["--reproduce", "{road}"], "drop MODEL/--data"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, data, models, args, message):
    broken = tmp_path / "broken.md"
    broken.write_text(f"{END_MARKER}\n{START_MARKER}\n")
    values = {"data": data, "road": models["road"], "nope": tmp_path / "nope", "tmp": tmp_path,
              "broken": broken}  # fmt: skip
    argv = [a.format(**values) for a in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out")]
    assert main([*argv, "--providers", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert broken.read_text() == f"{END_MARKER}\n{START_MARKER}\n"


def test_reproduce_dry_run_lists_the_whole_chain(tmp_path, capsys):
    config = REPO / "config" / "train" / "synth_small.yaml"
    if not config.is_file():
        pytest.skip("config/train/synth_small.yaml (training area) is not there yet")
    work, experiment = tmp_path / "work", tmp_path / "exp"
    argv = ["--reproduce", "--dry-run", "--config", str(config), "--work", str(work),
            "--experiment", str(experiment), "-o", str(tmp_path / "out"),
            "--internimage-config", str(tmp_path / "none.yaml")]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("pixood-synth ")
    assert lines[1].startswith(f"pixood-synth {work / 'bench_data'} --train 0 --val 0")
    assert "--ood-shift 40" in lines[1]
    assert lines[2] == f"pixood-train all --config {config} --out {experiment}"
    exports = [x for x in lines if x.startswith("pixood-export")]
    assert [x.split()[1] for x in exports] == [
        str(experiment / "checkpoints" / s)
        for s in ("pixood", "pixood_published", "msp", "maxlogit", "energy", "kmeans")
    ]
    assert lines[-1].startswith(f"pixood-benchmark PixOOD={work / 'models' / 'pixood.onnx'} ")
    assert f"'MSP (road+sidewalk)={work / 'models' / 'msp.onnx'}'" in lines[-1]
    assert f" MSP={work / 'models' / 'msp.onnx'}@unknown " in lines[-1]
    assert not work.exists() and not experiment.exists()  # a dry run runs nothing


def test_reproduce_stops_at_a_failing_step_with_exit_1(tmp_path, capsys, monkeypatch):
    config = tmp_path / "train.yaml"
    config.write_text(f"data: {{root: {tmp_path / 'train_data'}}}\ndecide: {{scorers: [pixood]}}\n")
    ran = []

    def failing_run(command, check):
        ran.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(subprocess, "run", failing_run)
    argv = ["--reproduce", "--config", str(config), "--work", str(tmp_path / "work"),
            "-o", str(tmp_path / "out"), "--no-progress",
            "--internimage-config", str(tmp_path / "none.yaml")]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    # training data, benchmark data, training, 2 exports (pixood, its published rule), benchmark
    assert captured.out.startswith("[1/6] training data: pixood-synth ")
    assert captured.err == "pixood-benchmark: error: training data failed (exit code 3)\n"
    assert len(ran) == 1 and not (tmp_path / "out").exists()
