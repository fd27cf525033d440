"""pixood-bench --ratios and --growth on tiny models: thread counts as asked on both sides, ratio
rows with both times, growth tables along the varied dimension (no timing thresholds: the
machine is shared)."""

from __future__ import annotations

import json

import pytest
import torch

from pixood_training.speed.cli import main as bench_main

pytestmark = pytest.mark.slow  # exports tiny models to ONNX


def run_bench(tmp_path, argv):
    report_path = tmp_path / "bench.json"
    threads = torch.get_num_threads()  # --threads sets it process-wide: restore for others
    try:
        code = bench_main(["--tiny", "--repeats", "1", *argv, "-o", str(report_path)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(report_path.read_text())


def test_ratio_rows_at_the_requested_threads(tmp_path, capsys):
    report = run_bench(
        tmp_path,
        ["--ratios", "--threads", "2", "--ratio-sizes", "90x160", "30x40", "--vit-arch", "tiny",
         "--vit-size", "42x84", "--decision-pixels", "1500", "--decision-grid", "120"],
    )  # fmt: skip
    threads = report["threads"]
    assert threads["requested"] == threads["torch_intra_op"] == threads["ort_intra_op"] == 2
    assert threads["ort_inter_op"] == 1
    printed = capsys.readouterr().out
    assert "threads: PyTorch 2 intra-op, ONNX Runtime 2 intra-op / 1 inter-op" in printed
    engine, eager, decision = report["ratios"][:3]
    assert (engine["first"]["label"], engine["second"]["label"]) == (
        "engine 90x160", "engine 30x40"
    )  # fmt: skip
    assert eager["arch"] == "tiny" and eager["name"].endswith("at 42x84")
    assert decision["first"]["label"] == "published scipy"
    for row in report["ratios"]:
        first, second = row["first"]["median_ms"], row["second"]["median_ms"]
        assert first > 0 and second > 0
        assert row["ratio"] == pytest.approx(first / second)
        assert row["target"]
        assert f"{row['ratio']:.2f}x" in printed
    assert "stages" not in report and "end_to_end" not in report  # --ratios runs alone


def test_growth_tables_follow_the_varied_dimension(tmp_path, capsys):
    report = run_bench(
        tmp_path,
        ["--growth", "--growth-sizes", "30x40", "60x80", "120x160", "--long-sides", "56", "112",
         "224", "--prototypes", "2", "8", "--frame-size", "60x100"],
    )  # fmt: skip
    resolution = report["growth_resolution"]
    assert [r["megapixels"] for r in resolution] == sorted(r["megapixels"] for r in resolution)
    for row in resolution:
        assert row["ms_per_megapixel"] == pytest.approx(row["median_ms"] / row["megapixels"])
    tokens = report["growth_tokens"]
    assert [r["tokens"] for r in tokens] == [9, 33, 145]  # 2x4, 4x8, 9x16 patches + CLS
    shares = [r["attention_flop_share"] for r in tokens]
    assert shares == sorted(shares) and 0 < shares[0] < shares[-1] < 1  # attention is N^2
    prototypes = report["growth_prototypes"]
    assert [r["per_class"] for r in prototypes] == [2, 8]
    assert [r["prototypes"] for r in prototypes] == [38, 152]
    assert all(r["engine"]["median_ms"] > 0 and r["scorer_eager"]["median_ms"] > 0
               for r in prototypes)  # fmt: skip
    printed = capsys.readouterr().out
    assert "RANDOM prototypes: timings only" in printed and "ms per 1000 tokens" in printed


def test_random_prototypes_replace_the_scorer_with_k_per_class():
    from torch_fixtures import random_image, tiny_pixood_model

    from pixood_training.model import tiny_model
    from pixood_training.speed.models import num_prototypes, with_random_prototypes

    for model in (tiny_model(), tiny_pixood_model()):  # fitted decision / the checkpoint's own
        variant = with_random_prototypes(model, 5)
        assert num_prototypes(variant) == 5
        with torch.no_grad():
            anomaly, semantic, _ = variant(random_image(50, 70))
        assert anomaly.shape == semantic.shape == (1, 50, 70)
        assert torch.isfinite(anomaly).all()
