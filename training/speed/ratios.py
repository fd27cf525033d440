"""The speed ratios issue 16's done criteria name, each measured side by side in one run (both
sides alternate call by call, at the same thread count) and reported with both times:

- engine time at a large input / engine time at a small one (the model's ONNX file in the CPU
  engine; full-resolution work should not dominate: target <= 1.5x at 1080x1920 vs 256x512);
- PyTorch eager / ONNX Runtime on a random-weight DINOv2 model at its network size (the exported
  graph should not be slower than eager: target >= 1.0x for ViT-S/14 at 518x1036);
- the decision op vs the published scipy formulation (training/speed/decision_vs_scipy.py; target
  >= 50x at the 1080p patch grid of a ViT, 77 x 137 patches, 19 classes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch

from pixood_training.export.parity import parity_image

from .engine import engine_frame
from .environment import ort_options
from .models import export_to, random_model
from .timing import time_alternating

ENGINE_TARGET = "<= 1.5"
ONNX_TARGET = ">= 1.0"
DECISION_TARGET = ">= 50"
PATCH_GRID_1080P = 77 * 137  # ViT/14 patches of a 1078x1918 network input


def ratio_row(
    name: str, first: tuple[str, dict[str, Any]], second: tuple[str, dict[str, Any]], target: str
) -> dict[str, Any]:
    """first time / second time, with both sides' labels and timings."""
    (first_label, first_timing), (second_label, second_timing) = first, second
    return {
        "name": name,
        "first": {"label": first_label, **first_timing},
        "second": {"label": second_label, **second_timing},
        "ratio": first_timing["median_ms"] / max(second_timing["median_ms"], 1e-9),
        "target": target,
    }


def engine_size_ratio(
    segmenter: Any, large: tuple[int, int], small: tuple[int, int], repeats: int
) -> dict[str, Any]:
    """Engine time at `large` / at `small` (HxW), alternating frames of both sizes."""
    labels = {size: f"engine {size[0]}x{size[1]}" for size in (large, small)}
    timings = time_alternating(
        {labels[size]: engine_frame(segmenter, *size, seed=i) for i, size in enumerate(labels)},
        repeats,
        settle=1,
    )
    return ratio_row(
        "engine large / small input",
        (labels[large], timings[labels[large]]),
        (labels[small], timings[labels[small]]),
        ENGINE_TARGET,
    )


@torch.no_grad()
def onnx_vs_eager(arch: str, size: tuple[int, int], threads: int, repeats: int) -> dict[str, Any]:
    """PyTorch eager / ONNX Runtime CPU for a random `arch` model whose network size is `size`.

    Both run the same computation: eager `forward_with_unknown`, which is what the exporter
    traces (four outputs)."""
    model = random_model(arch, network_long_side=max(size))
    image = parity_image(*size, seed=0)[None]
    tensor = torch.from_numpy(image)
    with tempfile.TemporaryDirectory(prefix="pixood-bench-") as workdir:
        path = export_to(model, Path(workdir) / "model.onnx")
        session = ort.InferenceSession(
            str(path), ort_options(threads), providers=["CPUExecutionProvider"]
        )
        eager_label = f"PyTorch eager {arch}"
        onnx_label = f"ONNX Runtime {arch}"
        timings = time_alternating(
            {
                eager_label: lambda: model.forward_with_unknown(tensor),
                onnx_label: lambda: session.run(None, {"image": image}),
            },
            repeats,
        )
    row = ratio_row(
        f"eager / ONNX Runtime at {size[0]}x{size[1]}",
        (eager_label, timings[eager_label]),
        (onnx_label, timings[onnx_label]),
        ONNX_TARGET,
    )
    row["arch"] = arch
    return row


def decision_ratio_rows(decision: dict[str, Any]) -> list[dict[str, Any]]:
    """scipy time / each other implementation's time in `benchmark_decision`'s report."""
    scipy = ("published scipy", decision["scipy"])
    return [
        ratio_row(
            f"decision: scipy / {name} ({decision['pixels']} px x {decision['num_classes']})",
            scipy,
            (name, timing),
            DECISION_TARGET,
        )
        for name, timing in decision.items()
        if name != "scipy" and isinstance(timing, dict) and "median_ms" in timing
    ]
