"""The FLOP bound of pixood-bench --gpu: analytic matrix FLOPs against PyTorch's own counter,
the peak-table lookup, and the GPU table's code path run on the CPU (bfloat16 autocast)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from pixood_training.model import tiny_model
from pixood_training.speed.flops import model_flops, peak_tflops
from pixood_training.speed.gpu import gpu_table


def test_analytic_flops_match_the_counted_matrix_products():
    model = tiny_model(network_long_side=112)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros((1, 100, 150, 3), dtype=torch.uint8))
    counted = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    flops = model_flops(model, 100, 150)
    assert flops["network_size"] == [70, 112] and flops["tokens"] == 5 * 8 + 1
    assert counted["aten.convolution"] == flops["patch_embed"]
    # the decoder's 1x1 convolutions run as matrix products (training/models/decoder.py)
    assert counted["aten.addmm"] == flops["block_linear"] + flops["decoder"]
    # attention (CPU kernels are not counted by PyTorch): Q.K^T and A.V per block
    assert flops["attention"] == 4 * 4 * 41 * 41 * 32


def test_peak_table_by_device_name():
    assert peak_tflops("NVIDIA H200") == (989.5, "table: H200 SXM, dense fp16 tensor")
    assert peak_tflops("NVIDIA H100 PCIe")[0] == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3")[0] == 989.5
    assert peak_tflops("NVIDIA L4")[0] == 121.0
    assert peak_tflops("Orin (nvgpu)")[0] == 42.5
    assert peak_tflops("NVIDIA H200", override=500.0) == (500.0, "--peak-tflops")
    value, source = peak_tflops("Some Future GPU")
    assert value is None and "--peak-tflops" in source


def test_gpu_table_rows_on_the_cpu_code_path():
    rows = gpu_table(["tiny"], [(56, 112), (112, 224)], repeats=1, peak=2.0, threads=1,
                     device="cpu", dtype=torch.bfloat16)  # fmt: skip
    measured = [r for r in rows if r["status"] == "measured"]
    assert [(r["height"], r["width"]) for r in measured] == [(56, 112), (112, 224)]
    assert [r["flops"]["tokens"] for r in measured] == [4 * 8 + 1, 8 * 16 + 1]
    for row in measured:
        assert row["runtime"] == "PyTorch cpu bfloat16 autocast"
        assert row["fps"] == pytest.approx(1000 / row["median_ms"])
        assert row["flop_bound_share"] == pytest.approx(row["achieved_tflops"] / 2.0)
    assert len(rows) == 2  # ONNX Runtime GPU rows only on a CUDA device


def test_onnx_runtime_gpu_rows_say_why_they_are_missing(monkeypatch):
    from pixood_training.speed import gpu

    monkeypatch.setattr(gpu.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    rows = gpu.ort_rows(tiny_model(), (56, 112), threads=1, repeats=1)
    assert rows == {
        "ONNX Runtime CUDA": {"status": "not installed"},
        "ONNX Runtime TensorRT fp16": {"status": "not installed"},
    }
