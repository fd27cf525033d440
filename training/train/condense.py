"""Stage 2: condensation prototypes on cached training features (docs/method.md §4).

The frozen backbone and the best stage-1 decoder run once over the training split (no
augmentation, as the published cache) into the feature cache (``cache/train``), which stage 3
reuses. The condensation loop itself is ``pixood_training.condensation.CondensationTrainer``; this
module feeds it the cached batches, checkpoints it atomically every ``checkpoint_every``
iterations and after every epoch (``condense/state.pt``) and resumes from there after a crash.
"""

from __future__ import annotations

from typing import Any

import torch

from ..condensation import CondensationTrainer
from ..data.feature_cache import FeatureCache, build_feature_cache
from ..models.preprocess import normalize
from . import parts
from .distributed import DistContext
from .experiment import Experiment, maybe_test_kill, save_torch

STAGE = "condense"


class CachedPatches:
    """Sequence view of a feature cache for the trainer: item i = (features [N, D] float16,
    patch labels [N]) of cached batch i, read from disk on access (bounded memory)."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.cache.batch(index)
        return batch.features.reshape(-1, batch.features.shape[-1]), batch.labels.reshape(-1)


def training_cache(exp: Experiment, ctx: DistContext) -> tuple[FeatureCache, Any, Any]:
    """Feature cache of the training split for the current backbone + best decoder."""
    cfg = exp.config
    backbone = parts.stage1_backbone(exp).to(ctx.device)
    decoder = parts.load_best_decoder(exp, backbone).to(ctx.device)
    data = parts.dataset(cfg, "train", augment=False)
    embed_dim = backbone.embed_dim

    def extract(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = backbone(normalize(images))
        return features[:, -embed_dim:], decoder(features)

    key = parts.cache_key_inputs(cfg, backbone, decoder, data)
    cache = build_feature_cache(
        exp.path("cache", "train"),
        data,
        extract,
        key,
        batch_size=cfg.condense.cache_batch_size,
        num_workers=cfg.data.num_workers,
        threshold=cfg.condense.patch_threshold,
        device=ctx.device,
        progress=cfg.progress and ctx.is_main,
        description="caching train features",
    )
    return cache, backbone, decoder


def run_condense(exp: Experiment, ctx: DistContext) -> dict[str, Any]:
    cfg = exp.config
    ccfg = cfg.condensation()
    cache, backbone, _ = training_cache(exp, ctx)
    summary: dict[str, Any] = {}
    if ctx.is_main:  # the loop itself is cheap next to feature extraction: rank 0 only
        trainer = CondensationTrainer(ccfg, dim=backbone.embed_dim, device=ctx.device)
        state = exp.load_state(STAGE)
        if state is not None:
            try:
                trainer.load_state_dict(state)
                exp.log(f"{STAGE}: resuming at epoch {trainer.epoch}, it {trainer.iteration}")
            except (ValueError, KeyError, RuntimeError) as exc:
                exp.log(f"{STAGE}: ignoring resume state ({exc})")
                trainer = CondensationTrainer(ccfg, dim=backbone.embed_dim, device=ctx.device)

        def checkpoint(t: CondensationTrainer) -> None:
            exp.save_state(STAGE, t.state_dict())
            maybe_test_kill(STAGE, t.iteration)

        result = trainer.fit(
            CachedPatches(cache),
            on_checkpoint=checkpoint,
            checkpoint_every=cfg.condense.checkpoint_every or 0,
            progress=cfg.progress,
        )
        save_torch(
            {"prototypes": result.prototypes, "tau": result.tau, "weights": result.weights},
            exp.path(STAGE, "prototypes.pt"),
        )
        counts = [int(p.shape[0]) for p in result.prototypes]
        summary = {
            "prototypes_per_class": counts,
            "epoch_losses": result.epoch_losses,
            "cache_batches": len(cache),
            "reseeded": trainer.reseeded,
        }
        exp.update_metrics(STAGE, summary)
        exp.mark_done(STAGE, {"prototypes": sum(counts)})
        exp.log(f"{STAGE}: done, {sum(counts)} prototypes kept ({counts})")
    ctx.barrier()
    return summary
