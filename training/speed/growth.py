"""How the cost of a frame grows: with input resolution (engine time, ms per megapixel), with the
token count (backbone time at several network long sides, ms per 1000 tokens) and with the
prototypes per class K (random prototypes: timings only). Each table is measured in one run with
its rows alternating call by call, so growth is not confused with load drift on a shared machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from pixood_training.export.parity import parity_image
from pixood_training.models.preprocess import network_input_size

from .engine import engine_frame, open_engine
from .flops import PATCH, model_flops
from .models import export_to, with_random_prototypes
from .timing import time_alternating


def resolution_growth(segmenter: Any, sizes: list[tuple[int, int]], repeats: int) -> list[dict]:
    """Engine time per input size, and per megapixel."""
    runs = {size: engine_frame(segmenter, *size, seed=i) for i, size in enumerate(sizes)}
    timings = time_alternating({f"{h}x{w}": fn for (h, w), fn in runs.items()}, repeats, settle=1)
    rows = []
    for height, width in sizes:
        timing = timings[f"{height}x{width}"]
        megapixels = height * width / 1e6
        rows.append(
            {
                "height": height,
                "width": width,
                "megapixels": megapixels,
                **timing,
                "ms_per_megapixel": timing["median_ms"] / megapixels,
            }
        )
    return rows


@torch.no_grad()
def token_growth(
    model: Any, long_sides: list[int], aspect: tuple[int, int], repeats: int
) -> list[dict]:
    """PyTorch eager backbone time at each network long side (input of `aspect` HxW), per 1000
    tokens, with the attention share of the matrix FLOPs."""
    inputs, flops = {}, {}
    for side in long_sides:
        net_h, net_w = network_input_size(*aspect, side)
        image = torch.from_numpy(parity_image(net_h, net_w, seed=side)).permute(2, 0, 1)
        inputs[side] = model.normalize(image[None].float() / 255.0)
        flops[side] = model_flops(model, *aspect, long_side=side)
    timings = time_alternating(
        {str(side): (lambda x=x: model.backbone(x)) for side, x in inputs.items()}, repeats
    )
    rows = []
    for side in long_sides:
        timing, count = timings[str(side)], flops[side]
        rows.append(
            {
                "long_side": side,
                "grid": [count["network_size"][0] // PATCH, count["network_size"][1] // PATCH],
                "tokens": count["tokens"],
                **timing,
                "ms_per_1000_tokens": timing["median_ms"] / count["tokens"] * 1000,
                "attention_flop_share": count["attention_share"],
            }
        )
    return rows


@torch.no_grad()
def prototype_growth(
    model: Any, per_class: list[int], size: tuple[int, int], threads: int, repeats: int
) -> list[dict]:
    """Engine (exported model) and eager scorer time with K random prototypes per class."""
    frame = torch.from_numpy(parity_image(*size, seed=0))[None]
    logits, e = model.patch_logits_and_features(model.preprocess(frame))
    classes = model.needed_classes(logits)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pixood-bench-") as workdir:
        for k in per_class:
            variant = with_random_prototypes(model, k)
            segmenter = open_engine(export_to(variant, Path(workdir) / f"k{k}.onnx"), threads)
            runs[f"engine {k}"] = engine_frame(segmenter, *size)
            runs[f"scorer {k}"] = lambda s=variant.scorer: s.scores_at(e, logits, classes)
        timings = time_alternating(runs, repeats)
    total_classes = logits.shape[1]
    return [
        {
            "per_class": k,
            "prototypes": k * total_classes,
            "patches": int(e.shape[2] * e.shape[3]),
            "engine": timings[f"engine {k}"],
            "scorer_eager": timings[f"scorer {k}"],
            "scorer_ms_per_1000_prototypes": timings[f"scorer {k}"]["median_ms"]
            / (k * total_classes)
            * 1000,
        }
        for k in per_class
    ]
