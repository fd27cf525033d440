"""PyTorch vs ONNX Runtime parity on several image sizes: proof the exported file computes what
the trained module computes (dynamic shapes are where exporters go wrong, so several sizes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pixood_ros.contract import MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT

OUTPUTS = (*MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT)
# Scores, fp32: the monotone decision rule's class-mass table is steep where mass piles up on
# its clamp box (docs/method.md §5.6), so float32 rounding that differs between the runtimes
# (1e-5 relative in the prototype distances: Gemm vs addmm summation order) moves a score by up
# to ~2e-3 there (measured on the shipped model). Export mistakes move scores by far more.
FP32_MAX_ANOMALY_DIFF = 1e-2
FP32_MIN_SEMANTIC_AGREEMENT = 0.999
FP16_MAX_ANOMALY_DIFF = 5e-2
FP16_MIN_SEMANTIC_AGREEMENT = 0.99


@dataclass
class ParityResult:
    """One image size: worst anomaly and unknown-score differences, semantic agreement, and the
    verdict (both scores are held to the anomaly limit)."""

    height: int
    width: int
    anomaly_max_abs_diff: float
    confidence_max_abs_diff: float  # where both semantic maps agree
    semantic_agreement: float
    max_anomaly_diff: float
    min_semantic_agreement: float
    shapes_ok: bool
    unknown_max_abs_diff: float = float("inf")

    @property
    def passed(self) -> bool:
        return (
            self.shapes_ok
            and self.anomaly_max_abs_diff <= self.max_anomaly_diff
            and self.unknown_max_abs_diff <= self.max_anomaly_diff
            and self.semantic_agreement >= self.min_semantic_agreement
        )


def default_tolerances(fp16: bool) -> dict[str, float]:
    if fp16:
        return {
            "max_anomaly_diff": FP16_MAX_ANOMALY_DIFF,
            "min_semantic_agreement": FP16_MIN_SEMANTIC_AGREEMENT,
        }
    return {
        "max_anomaly_diff": FP32_MAX_ANOMALY_DIFF,
        "min_semantic_agreement": FP32_MIN_SEMANTIC_AGREEMENT,
    }


def parity_image(height: int, width: int, seed: int) -> np.ndarray:
    """Deterministic image with large smooth regions and edges (more like a camera frame than
    white noise, which would make every pixel a near-tie of the decoder)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, max(2, height // 16), max(2, width // 16)), generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noise = torch.rand((1, 3, height, width), generator=generator) * 0.1
    image = ((smooth * 0.9 + noise) * 255).clamp(0, 255).to(torch.uint8)
    return image[0].permute(1, 2, 0).contiguous().numpy()


def check_parity(
    model: torch.nn.Module,
    onnx_path: str | Path,
    sizes: list[tuple[int, int]],
    seed: int = 0,
    max_anomaly_diff: float = FP32_MAX_ANOMALY_DIFF,
    min_semantic_agreement: float = FP32_MIN_SEMANTIC_AGREEMENT,
    providers: list[str] | None = None,
    progress: bool = False,
) -> list[ParityResult]:
    """Run both on the same images; ONNX Runtime on CPU unless `providers` says otherwise."""
    session = ort.InferenceSession(str(onnx_path), providers=providers or ["CPUExecutionProvider"])
    model = model.eval().cpu()
    results = []
    for index, (height, width) in enumerate(tqdm(sizes, desc="parity", disable=not progress)):
        image = parity_image(height, width, seed + index)
        with torch.no_grad():
            reference = [
                t.detach().cpu().numpy()
                for t in model.forward_with_unknown(torch.from_numpy(image)[None])
            ]
        onnx_outputs = session.run(list(OUTPUTS), {"image": image[None]})
        shapes_ok = all(o.shape == (1, height, width) for o in onnx_outputs) and all(
            r.shape == (1, height, width) for r in reference
        )
        if not shapes_ok:
            results.append(
                ParityResult(
                    height,
                    width,
                    float("inf"),
                    float("inf"),
                    0.0,
                    max_anomaly_diff,
                    min_semantic_agreement,
                    False,
                )
            )
            continue
        anomaly_diff = float(np.abs(onnx_outputs[0].astype(np.float64) - reference[0]).max())
        same_class = onnx_outputs[1].astype(np.int64) == reference[1].astype(np.int64)
        confidence_diff = np.abs(onnx_outputs[2].astype(np.float64) - reference[2])[same_class]
        unknown_diff = float(np.abs(onnx_outputs[3].astype(np.float64) - reference[3]).max())
        results.append(
            ParityResult(
                height=height,
                width=width,
                anomaly_max_abs_diff=anomaly_diff,
                confidence_max_abs_diff=float(confidence_diff.max())
                if confidence_diff.size
                else 0.0,
                semantic_agreement=float(same_class.mean()),
                max_anomaly_diff=max_anomaly_diff,
                min_semantic_agreement=min_semantic_agreement,
                shapes_ok=True,
                unknown_max_abs_diff=unknown_diff,
            )
        )
    return results


def format_parity_table(results: list[ParityResult]) -> str:
    """Plain-text table for the terminal."""
    lines = [
        f"{'size':>11} | {'max |Δ anomaly|':>15} | {'max |Δ unknown|':>15} | "
        f"{'max |Δ confidence|':>18} | {'semantic agree':>14} | result",
        "-" * 98,
    ]
    for row in results:
        lines.append(
            f"{row.height:>5}x{row.width:<5} | {row.anomaly_max_abs_diff:>15.2e} | "
            f"{row.unknown_max_abs_diff:>15.2e} | {row.confidence_max_abs_diff:>18.2e} | "
            f"{row.semantic_agreement * 100:>13.3f}% | "
            + ("ok" if row.passed else "FAIL" + ("" if row.shapes_ok else " (output shapes)"))
        )
    if results:
        lines.append(
            f"limits: max |Δ anomaly|, |Δ unknown| ≤ {results[0].max_anomaly_diff:g}, "
            f"semantic agreement ≥ {results[0].min_semantic_agreement * 100:g}%"
        )
    return "\n".join(lines)
