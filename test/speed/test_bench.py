"""pixood-bench on the tiny model: the JSON report has every section with sane values (not
timing thresholds: the machine is shared)."""

from __future__ import annotations

import json

import pytest
import torch

from pixood_training.speed.cli import main as bench_main

pytestmark = pytest.mark.slow  # exports the tiny model and fits a small decision strategy


def test_tiny_model_report_structure(tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    threads = torch.get_num_threads()  # --threads 1 sets it process-wide: restore for others
    try:
        code = bench_main(
            ["--tiny", "--sizes", "40x60", "70x50", "--repeats", "1", "--device", "cpu",
             "--decision-pixels", "2000", "--decision-grid", "120", "--threads", "1",
             "-o", str(report_path)]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    printed = capsys.readouterr().out
    assert "ONNX Runtime speed-up" in printed
    assert "threads: PyTorch 1 intra-op, ONNX Runtime 1 intra-op / 1 inter-op" in printed
    report = json.loads(report_path.read_text())
    assert report["device"] == "cpu"
    stages = report["stages"]
    assert list(stages["stages"]) == [
        "preprocess", "backbone", "decoder", "decision", "scorer", "upsampling"
    ]  # fmt: skip
    assert stages["decision_strategy_share"] is None  # MSP scorer: no decision strategy
    assert stages["matches_forward"] is True
    assert all(t["median_ms"] > 0 for t in stages["stages"].values())
    rows = report["end_to_end"]["sizes"]
    assert [(r["height"], r["width"]) for r in rows] == [(40, 60), (70, 50)]
    for row in rows:
        assert row["pytorch"]["fps"] > 0 and row["onnxruntime"]["fps"] > 0
        assert row["max_abs_anomaly_diff"] <= 1e-3  # same model in both runtimes
        assert row["peak_rss_mb"] > 0
    assert report["end_to_end"]["onnx_providers"] == ["CPUExecutionProvider"]
    assert report["end_to_end"]["onnx_intra_op_threads"] == 1
    assert report["threads"]["torch_intra_op"] == report["threads"]["ort_intra_op"] == 1
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["onnxruntime"]
    decision = report["decision_vs_scipy"]
    assert decision["pixels"] == 2000 and decision["num_classes"] == 19
    assert decision["speedup"] > 0
    decision_row = report["ratios"][0]
    assert decision_row["first"]["label"] == "published scipy"
    assert decision_row["ratio"] == pytest.approx(
        decision["scipy"]["median_ms"] / decision_row["second"]["median_ms"]
    )
    assert decision["max_abs_diff"] <= 2e-3  # thinned table vs the published full table


def test_model_choice_mistakes_exit_2(tmp_path, capsys):
    for argv in (["--tiny", "--backbone", "vit_small_patch14_dinov2"],
                 ["--backbone", "vit_small_patch14_dinov2"],
                 ["--backbone", "vit_tiny_unknown", "--random-weights"],
                 ["--tiny", "--threads", "-1"],
                 ["--tiny", "--threads", "0"],
                 ["--tiny", "--gpu"],
                 ["--gpu", "--ratios"],
                 ["--tiny", "--ratio-sizes", "100x100"],
                 ["--tiny", "--growth", "colours"],
                 ["--tiny", "--ratios", "--vit-arch", "vit_unknown"],
                 ["--gpu", "--gpu-archs", "vit_unknown"],
                 ["--gpu", "--peak-tflops", "-3"]):  # fmt: skip
        with pytest.raises(SystemExit) as caught:
            bench_main([*argv, "-o", str(tmp_path / "b.json")])
        assert caught.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert bench_main([str(tmp_path / "absent"), "-o", str(tmp_path / "b.json")]) == 2
    assert "checkpoint directory not found" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_mode_without_cuda_is_one_line_exit_2(tmp_path, capsys):
    assert bench_main(["--gpu", "-o", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA" in err[0]


def test_pixood_stages_split_distances_and_decision_and_reproduce_forward():
    from torch_fixtures import random_image as _image
    from torch_fixtures import tiny_pixood_model as _tiny_pixood_model

    from pixood_training.speed.stages import time_stages

    result = time_stages(_tiny_pixood_model(), _image(61, 97, seed=1), repeats=1)
    assert list(result["stages"]) == [
        "preprocess", "backbone", "decoder", "decision", "prototype_distances",
        "decision_strategy", "upsampling",
    ]  # fmt: skip
    assert result["matches_forward"] is True
    assert 0 < result["decision_strategy_share"] < 1
