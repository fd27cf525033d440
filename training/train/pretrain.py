"""Optional stage 0: a small stand-in for DINOv2's pretraining, for the synthetic demo ONLY.

PixOOD relies on DINOv2 features learnt by large-scale self-supervised pretraining (docs/method.md
§2). Those weights cannot be downloaded where this project is built, and a randomly initialised
ViT gives features that are little more than a random projection of each patch's pixels. So that
the demo model shows what the method does, ``pretrain.enabled: true`` trains the small ViT
backbone ONCE, on the in-distribution ``train`` split only (never an OOD split), with throw-away
1x1 heads:

* supervised segmentation: cross-entropy of a linear head on the backbone's configured blocks;
* optionally (``reconstruction_weight`` > 0) a per-patch pixel reconstruction loss (MAE-style
  normalised pixel targets) from the last block, so the features keep appearance information that
  the class labels alone would throw away (anomalies must stay distinguishable from the classes).

The heads are discarded; stage 1 then loads ``pretrain/backbone.pt``, freezes the backbone, and
stages 1-3 run exactly as the paper's method on a frozen backbone. With real DINOv2 weights
(``model.backbone_weights``) this step must stay off: the config check refuses both together.

Resume: backbone, heads, optimizer, epoch and RNG states are saved atomically after every epoch;
the data order of an epoch is a pure function of (seed, epoch).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from ..models.backbone import PATCH_SIZE, DinoV2Backbone
from ..models.preprocess import normalize
from . import parts
from .config import TrainConfig
from .distributed import DistContext
from .experiment import Experiment, maybe_test_kill, rng_state, save_torch, set_rng_state
from .stage1 import upsampled_cross_entropy

STAGE = "pretrain"
BACKBONE_FILE = "backbone.pt"


class PretrainHeads(nn.Module):
    """Throw-away heads: class logits from all configured blocks, patch pixels from the last."""

    def __init__(self, backbone: DinoV2Backbone, num_classes: int, reconstruct: bool) -> None:
        super().__init__()
        self.embed_dim = backbone.embed_dim
        self.classify = nn.Conv2d(backbone.out_channels, num_classes, kernel_size=1)
        pixels = 3 * PATCH_SIZE * PATCH_SIZE
        self.reconstruct = (
            nn.Conv2d(backbone.embed_dim, pixels, kernel_size=1) if reconstruct else None
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.classify(features)
        pixels = None
        if self.reconstruct is not None:
            pixels = self.reconstruct(features[:, -self.embed_dim :])
        return logits, pixels


def patch_pixel_targets(image: torch.Tensor) -> torch.Tensor:
    """Normalised image [B,3,H,W] -> per-patch standardised pixels [B, 3*14*14, H/14, W/14]."""
    batch, _, height, width = image.shape
    patches = F.unfold(image, PATCH_SIZE, stride=PATCH_SIZE)  # [B, 588, L]
    mean = patches.mean(dim=1, keepdim=True)
    std = patches.var(dim=1, keepdim=True, unbiased=False).add(1e-6).sqrt()
    patches = (patches - mean) / std
    return patches.reshape(batch, -1, height // PATCH_SIZE, width // PATCH_SIZE)


def set_trainable(backbone: DinoV2Backbone, trainable: bool) -> None:
    """Pretraining updates every ViT weight; afterwards the backbone is frozen again.
    (The module stays in eval mode either way: the DINOv2 ViT has no dropout / drop-path.)"""
    if trainable:
        for param in backbone.vit.parameters():
            param.requires_grad_(True)
    else:
        backbone.freeze()


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1 % of the base LR."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _loader(ds, cfg: TrainConfig, epoch: int) -> DataLoader:
    batch = cfg.pretrain.batch_size
    generator = torch.Generator().manual_seed(cfg.seed * 100_019 + epoch + 7)
    return DataLoader(
        ds,
        batch_size=batch,
        sampler=RandomSampler(ds, generator=generator),
        drop_last=len(ds) >= batch,
        num_workers=cfg.data.num_workers,
    )


def random_crop(
    image: torch.Tensor, label: torch.Tensor, crop: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same random patch-aligned crop (side ``crop``) of a batch's images and labels: fewer
    tokens per step at the same object scale as stages 1-3 (attention cost grows with tokens)."""
    height, width = image.shape[-2:]
    if not crop or (crop >= height and crop >= width):
        return image, label
    ch, cw = min(crop, height), min(crop, width)
    top = int(torch.randint(0, (height - ch) // PATCH_SIZE + 1, ())) * PATCH_SIZE
    left = int(torch.randint(0, (width - cw) // PATCH_SIZE + 1, ())) * PATCH_SIZE
    return (
        image[..., top : top + ch, left : left + cw],
        label[..., top : top + ch, left : left + cw],
    )


def _losses(
    backbone, heads, batch, crop: int | None, recon_weight: float, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, cross-entropy, reconstruction) loss of one batch."""
    image = normalize(batch["image"].to(device))
    label = batch["label"].to(device)
    image, label = random_crop(image, label, crop)
    logits, pixels = heads(backbone(image))
    ce = upsampled_cross_entropy(logits, label)
    if pixels is None:
        return ce, ce, torch.zeros(())
    recon = F.mse_loss(pixels, patch_pixel_targets(image))
    return ce + recon_weight * recon, ce, recon


def run_pretrain(exp: Experiment, ctx: DistContext) -> dict[str, Any]:
    cfg = exp.config
    pre = cfg.pretrain
    if not ctx.is_main:  # demo-sized step: rank 0 trains, the others wait at the CLI's barrier
        return {}
    train_ds = parts.dataset(cfg, "train", augment=True)
    backbone = parts.new_backbone(cfg).to(ctx.device)
    torch.manual_seed(cfg.seed + 2)
    recon_weight = float(pre.reconstruction_weight)
    heads = PretrainHeads(backbone, cfg.data.num_classes, recon_weight > 0).to(ctx.device)
    set_trainable(backbone, True)
    params = [*backbone.vit.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=pre.lr, weight_decay=pre.weight_decay)
    steps_per_epoch = len(_loader(train_ds, cfg, 0))
    total_steps = steps_per_epoch * pre.epochs
    warmup = min(total_steps, steps_per_epoch * pre.warmup_epochs) or 1
    start_epoch, history = 0, []
    state = exp.load_state(STAGE)
    if state is not None:
        backbone.vit.load_state_dict(state["backbone"])
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"], state["history"]
        set_rng_state(state["rng"])
        exp.log(f"{STAGE}: resuming after epoch {start_epoch}")
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, pre.epochs):
        train_ds.set_epoch(epoch)
        totals = {"loss": 0.0, "ce": 0.0, "recon": 0.0}
        count = 0
        bar = tqdm(
            _loader(train_ds, cfg, epoch),
            desc=f"pretrain epoch {epoch + 1}/{pre.epochs}",
            unit="batch",
            disable=not (cfg.progress and ctx.is_main),
        )
        for batch in bar:
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total_steps, pre.lr, warmup)
            loss, ce, recon = _losses(backbone, heads, batch, pre.crop, recon_weight, ctx.device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            step += 1
            count += 1
            totals["loss"] += float(loss.detach())
            totals["ce"] += float(ce.detach())
            totals["recon"] += float(recon.detach())
            bar.set_postfix(loss=f"{totals['loss'] / count:.4f}")
        record = {"epoch": epoch + 1, **{k: v / max(count, 1) for k, v in totals.items()}}
        history.append(record)
        exp.log(
            f"{STAGE}: epoch {epoch + 1}/{pre.epochs} loss {record['loss']:.4f} "
            f"(ce {record['ce']:.4f}, reconstruction {record['recon']:.4f})"
        )
        exp.save_state(STAGE, {
            "epoch": epoch + 1,
            "backbone": backbone.vit.state_dict(),
            "heads": heads.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
            "rng": rng_state(),
        })  # fmt: skip
        maybe_test_kill(STAGE, epoch + 1)
    set_trainable(backbone, False)
    if ctx.is_main:
        save_torch(backbone.vit.state_dict(), exp.path(STAGE, BACKBONE_FILE))
    summary = {"epochs": pre.epochs, "history": history}
    exp.update_metrics(STAGE, summary)
    exp.mark_done(STAGE, {"epochs": pre.epochs})
    state_file = exp.path(STAGE, "state.pt")
    if state_file.exists():  # the optimizer state is twice the backbone; not needed any more
        state_file.unlink()
    exp.log(f"{STAGE}: done; backbone frozen from here on ({exp.path(STAGE, BACKBONE_FILE)})")
    return summary
