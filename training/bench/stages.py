"""Per-stage PyTorch timings of the end-to-end module: where does a frame's time go?

Stages follow the model's forward (training/model.py): pre-processing (resize + normalise),
backbone, decoder, scorer (prototype distances and decision for PixOOD; split when the scorer
exposes them), decision (argmax / gather / eval-label max) and upsampling to input size. The
stage-by-stage result is checked against `model(image)` so the timings describe the real path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .timing import time_call


def _nearest(out_size: int, in_size: int, device: torch.device) -> torch.Tensor:
    return (torch.arange(out_size, device=device) * in_size) // out_size


def stage_functions(model: Any, image: torch.Tensor) -> dict[str, Any]:
    """Closures for every stage, each fed with the previous stage's real output."""
    height, width = image.shape[1], image.shape[2]
    x = model.preprocess(image)
    features = model.backbone(x)
    logits = model.decoder(features)
    e = model.last_block(features)
    if getattr(model, "eval_scale_factor", 1) != 1:
        size = (
            logits.shape[2] * model.eval_scale_factor,
            logits.shape[3] * model.eval_scale_factor,
        )
        e = F.interpolate(e, size=size, mode="bilinear", align_corners=False)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    scores = model.scorer.class_scores(e, logits)

    def decision() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        semantic = logits.argmax(dim=1, keepdim=True)
        return semantic, scores.gather(1, semantic), scores.index_select(1, model.eval_index)

    semantic, confidence, eval_scores = decision()

    def upsample() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        full = F.interpolate(
            eval_scores, size=(height, width), mode="bilinear", align_corners=False
        )
        anomaly = (1.0 - full.amax(dim=1)).clamp(0.0, 1.0)
        rows = _nearest(height, logits.shape[2], image.device)
        cols = _nearest(width, logits.shape[3], image.device)
        maps = torch.cat([semantic.to(scores.dtype), confidence], dim=1)
        maps = maps.index_select(2, rows).index_select(3, cols)
        return anomaly, maps[:, 0].to(torch.uint8), maps[:, 1].clamp(0.0, 1.0)

    stages = {
        "preprocess": lambda: model.preprocess(image),
        "backbone": lambda: model.backbone(x),
        "decoder": lambda: model.decoder(features),
    }
    scorer = model.scorer
    distance = getattr(scorer, "distance", None)
    strategy = getattr(scorer, "decision", None)
    if distance is not None and strategy is not None:
        # PixOOD: nearest-prototype distances and the Neyman-Pearson lookup, separately.
        flat_e = e.permute(0, 2, 3, 1).reshape(-1, e.shape[1])
        flat_l = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        dists = distance(flat_e)
        stages["prototype_distances"] = lambda: distance(flat_e)
        stages["decision_strategy"] = lambda: strategy.scores(flat_l, dists)
    else:
        stages["scorer"] = lambda: scorer.class_scores(e, logits)
    stages["decision"] = decision
    stages["upsampling"] = upsample
    return {"stages": stages, "staged_output": upsample()}


@torch.no_grad()
def time_stages(
    model: Any, image: torch.Tensor, repeats: int, device: str = "cpu"
) -> dict[str, Any]:
    """{stage: timing} plus the total and a check that the stages reproduce `model(image)`."""
    built = stage_functions(model, image)
    timings = {
        name: time_call(fn, repeats, warmup=1, device=device)
        for name, fn in built["stages"].items()
    }
    reference = model(image)
    staged = built["staged_output"]
    max_diff = float((reference[0] - staged[0]).abs().max())
    return {
        "stages": timings,
        "sum_of_stages_ms": sum(t["median_ms"] for t in timings.values()),
        "matches_forward": max_diff <= 1e-5 and bool(torch.equal(reference[1], staged[1])),
    }
