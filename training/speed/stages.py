"""Per-stage PyTorch timings of the end-to-end module: where does a frame's time go?

Stages follow the model's forward (training/model.py): pre-processing (resize + normalise),
backbone, decoder, decision (argmax: which classes need a score), scorer on those classes
(prototype distances and decision strategy for PixOOD, split when the scorer exposes them) and
the combination + upsampling to input size. The stage-by-stage result is checked against
`model(image)` so the timings describe the real path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .timing import time_call


def stage_functions(model: Any, image: torch.Tensor) -> dict[str, Any]:
    """Closures for every stage, each fed with the previous stage's real output."""
    height, width = image.shape[1], image.shape[2]
    x = model.preprocess(image)
    features = model.backbone(x)
    logits = model.decoder(features)
    e = model.last_block(features)

    def to_scoring_grid() -> tuple[torch.Tensor, torch.Tensor]:
        if getattr(model, "eval_scale_factor", 1) == 1:
            return logits, e
        factor = model.eval_scale_factor
        size = (logits.shape[2] * factor, logits.shape[3] * factor)
        return (
            F.interpolate(logits, size=size, mode="bilinear", align_corners=False),
            F.interpolate(e, size=size, mode="bilinear", align_corners=False),
        )

    grid_logits, grid_e = to_scoring_grid()
    classes = model.needed_classes(grid_logits)
    scores = model.scorer.scores_at(grid_e, grid_logits, classes)

    stages = {
        "preprocess": lambda: model.preprocess(image),
        "backbone": lambda: model.backbone(x),
        "decoder": lambda: model.decoder(features),
        "decision": lambda: model.needed_classes(to_scoring_grid()[0]),
    }
    scorer = model.scorer
    distance = getattr(scorer, "distance", None)
    strategy = getattr(scorer, "decision", None)
    if distance is not None and strategy is not None:
        # PixOOD: nearest-prototype distances and the Neyman-Pearson lookup, separately, on the
        # classes the model needs (semantic class + eval labels), as its forward does.
        k = classes.shape[1]
        flat_e = grid_e.permute(0, 2, 3, 1).reshape(-1, grid_e.shape[1])
        flat_l = grid_logits.permute(0, 2, 3, 1).reshape(-1, grid_logits.shape[1])
        flat_c = classes.permute(0, 2, 3, 1).reshape(-1, k)
        dists = distance(flat_e)
        picked_l, picked_d = flat_l.gather(1, flat_c), dists.gather(1, flat_c)
        stages["prototype_distances"] = lambda: distance(flat_e)
        stages["decision_strategy"] = lambda: strategy.scores(picked_l, picked_d, flat_c)
    else:
        stages["scorer"] = lambda: scorer.scores_at(grid_e, grid_logits, classes)
    stages["upsampling"] = lambda: model.combine(classes, scores, height, width)
    return {"stages": stages, "staged_output": model.combine(classes, scores, height, width)}


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
    total = sum(t["median_ms"] for t in timings.values())
    decision = timings.get("decision_strategy", {}).get("median_ms")
    return {
        "stages": timings,
        "sum_of_stages_ms": total,
        # the target: the Neyman-Pearson decision stays a small part of a frame (<= 5 %)
        "decision_strategy_share": None if decision is None else decision / max(total, 1e-9),
        "matches_forward": max_diff <= 1e-5 and bool(torch.equal(reference[1], staged[1])),
    }
