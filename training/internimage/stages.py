"""``pixood-train`` stages for the InternImage family (``model.family: internimage``).

Stage 1 (the UperNet head on the frozen backbone) is the shared one (training/train/stage1.py).
Stage 2, PixOOD's condensation, does not apply: its scorer lives on the ViT's patch features and
the Neyman-Pearson decision needs its prototypes. ``decide`` here caches the scorer features of
the training split (``last_block`` on the 1/4 grid; 4x4 patch labels by the same majority vote),
fits the scorers that need no prototypes (k-means with ``decide.kmeans.rule``, MSP, max-logit,
energy), writes one checkpoint per scorer and evaluates each end to end, like the DINOv2 family.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm import tqdm

from ..data.feature_cache import FeatureCache, build_feature_cache
from ..models.preprocess import normalize
from ..scorers import Scorer
from ..train import parts
from ..train.config import TrainConfig
from ..train.decide import evaluate_anomaly, fit_scorer, save_checkpoint
from ..train.distributed import DistContext
from ..train.experiment import Experiment, maybe_test_kill
from .model import InternImageModel

STAGE = "decide"
GRID_STRIDE = 4  # UperNet logits and scorer features live on the 1/4 grid
WITHOUT_PROTOTYPES = ("pixood",)


def end_to_end(cfg: TrainConfig, backbone, decoder, scorer: Scorer) -> InternImageModel:
    return InternImageModel(
        backbone,
        decoder,
        scorer,
        class_names=parts.class_names(cfg),
        palette=parts.palette(cfg),
        eval_labels=cfg.model.eval_labels,
        network_long_side=parts.network_long_side(cfg),
    ).eval()


def training_cache(exp: Experiment, ctx: DistContext) -> tuple[FeatureCache, InternImageModel]:
    """Scorer features + logits of the training split (the model's placeholder scorer unused)."""
    from ..scorers.baselines import MSPScorer

    cfg = exp.config
    backbone = parts.stage1_backbone(exp).to(ctx.device)
    decoder = parts.load_best_decoder(exp, backbone).to(ctx.device)
    model = end_to_end(cfg, backbone, decoder, MSPScorer())
    data = parts.dataset(cfg, "train", augment=False)

    def extract(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return model.features_and_logits(normalize(images))

    cache = build_feature_cache(
        exp.path("cache", "train"),
        data,
        extract,
        parts.cache_key_inputs(cfg, backbone, decoder, data),
        batch_size=cfg.condense.cache_batch_size,
        num_workers=cfg.data.num_workers,
        patch=GRID_STRIDE,
        threshold=cfg.condense.patch_threshold,
        device=ctx.device,
        progress=cfg.progress and ctx.is_main,
        description="caching train features",
    )
    return cache, model


@torch.no_grad()
def training_statistics(cache: FeatureCache, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """labels [N] and logits [N, C] of every labelled patch, and a seeded per-class subsample
    of the scorer features (at most ``decide.kmeans.max_samples_per_class`` each)."""
    cap = int(cfg.decide.kmeans.max_samples_per_class)
    generator = torch.Generator().manual_seed(cfg.seed)
    labels, logits, kept, kept_labels = [], [], [], []
    counts = [0] * cfg.data.num_classes
    for index in tqdm(
        range(len(cache)), desc="decide: training statistics", disable=not cfg.progress
    ):
        feats, lgts, lbls = cache.batch(index).labelled()
        labels.append(lbls)
        logits.append(lgts)
        for c in torch.unique(lbls).tolist():
            rows = feats[lbls == c]
            pick = torch.randperm(rows.shape[0], generator=generator)[: max(cap - counts[c], 0)]
            kept.append(rows[pick])
            kept_labels.append(torch.full((pick.numel(),), c, dtype=torch.long))
            counts[c] += int(pick.numel())
    return {
        "labels": torch.cat(labels),
        "logits": torch.cat(logits),
        "kmeans_features": torch.cat(kept),
        "kmeans_labels": torch.cat(kept_labels),
    }


def run_decide(exp: Experiment, ctx: DistContext) -> dict[str, Any]:
    cfg = exp.config
    cache, model = training_cache(exp, ctx)
    if not ctx.is_main:
        return {}
    backbone, decoder = model.backbone.cpu(), model.decoder.cpu()
    stats = training_statistics(cache, cfg)
    eval_role = cfg.decide.eval_split
    eval_data = None
    if cfg.data.splits.get(eval_role):
        eval_data = parts.dataset(cfg, eval_role, resize=False)
        eval_data = eval_data if eval_data.has_ood else None
    results: dict[str, Any] = {}
    for step, name in enumerate(cfg.decide.scorers, start=1):
        if name in WITHOUT_PROTOTYPES:
            exp.log(f"{STAGE}: {name} skipped: model.family internimage has no condensation")
            continue
        torch.manual_seed(cfg.seed)
        scored = end_to_end(cfg, backbone, decoder, fit_scorer(name, stats, [], cfg))
        save_checkpoint(scored, exp.path("checkpoints", name))
        metrics: dict[str, Any] = {"checkpoint": str(exp.path("checkpoints", name))}
        if eval_data is not None:
            metrics.update(evaluate_anomaly(scored, eval_data, cfg, ctx.device, f"eval {name}"))
            exp.log(
                f"{STAGE}: {name:8s} AP {metrics['ap']:.4f}  AUROC {metrics['auroc']:.4f}  "
                f"FPR95 {metrics['fpr95']:.4f}"
            )
        results[name] = metrics
        maybe_test_kill(STAGE, step)
    summary = {
        "eval_split": cfg.data.splits.get(eval_role) if eval_data is not None else None,
        "eval_region": cfg.decide.eval_region,
        "eval_labels": cfg.model.eval_labels,
        "training_patches": int(stats["labels"].numel()),
        "scorers": results,
    }
    exp.update_metrics(STAGE, summary)
    exp.mark_done(STAGE, {"scorers": list(results)})
    return summary
