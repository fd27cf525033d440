"""Stage 1: train the MLP decoder on the frozen backbone with cross-entropy (docs/method.md §3).

AdamW (paper: lr 1e-4, weight decay 5e-4, constant LR, 30 epochs, batch 4), CE over the
full-resolution (bilinearly upsampled) logits with 255 ignored, validation mIoU after every
``val_every`` epochs, best checkpoint by mIoU. The resume state (decoder, optimizer, best decoder,
epoch, RNG states) is saved atomically after every epoch; the data order of an epoch is a pure
function of (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler
from tqdm import tqdm

from pixood_ros.metrics import ConfusionMatrixAccumulator

from ..models.preprocess import normalize
from . import parts
from .config import TrainConfig
from .distributed import DistContext
from .experiment import Experiment, maybe_test_kill, rng_state, save_torch, set_rng_state

STAGE = "stage1"


def _train_loader(ds, cfg: TrainConfig, seed: int, epoch: int, ctx: DistContext) -> DataLoader:
    batch = cfg.stage1.batch_size
    drop_last = len(ds) >= batch * ctx.world_size  # paper: drop_last; tiny sets keep their batch
    if ctx.enabled:
        sampler = DistributedSampler(ds, ctx.world_size, ctx.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        sampler = RandomSampler(ds, generator=generator)
    return DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=cfg.data.num_workers,
        persistent_workers=False,
    )


def upsampled_cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """CE of patch logits bilinearly upsampled to the label size, void (255) ignored. Sum / count
    instead of mean: an all-void batch gives zero loss, not NaN."""
    logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
    valid = int((label != 255).sum())
    return F.cross_entropy(logits, label, ignore_index=255, reduction="sum") / max(valid, 1)


def _train_epoch(backbone, model, optimizer, loader, desc: str, show: bool, device) -> float:
    """One epoch of decoder training; the mean batch loss."""
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", disable=not show)
    for batch in bar:
        image = normalize(batch["image"].to(device))
        label = batch["label"].to(device)
        with torch.no_grad():
            features = backbone(image)
        loss = upsampled_cross_entropy(model(features), label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


@torch.no_grad()
def evaluate_miou(backbone, decoder, ds, cfg: TrainConfig, ctx: DistContext) -> dict[str, Any]:
    """Semantic mIoU of the decoder on ``ds`` (labels at network size, as the paper's val)."""
    decoder.eval()
    limit = cfg.stage1.max_val_images
    indices = list(range(len(ds)))[: limit or None]
    subset = torch.utils.data.Subset(ds, indices)
    sampler = (
        DistributedSampler(subset, ctx.world_size, ctx.rank, shuffle=False)
        if ctx.enabled
        else SequentialSampler(subset)
    )
    loader = DataLoader(
        subset,
        batch_size=cfg.stage1.val_batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
    )
    acc = ConfusionMatrixAccumulator(cfg.data.num_classes)
    bar = tqdm(
        loader,
        desc="  val",
        unit="batch",
        leave=False,
        disable=not (cfg.progress and ctx.is_main),
    )
    for batch in bar:
        image = normalize(batch["image"].to(ctx.device))
        logits = decoder(backbone(image))
        logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
        acc.update(list(logits.argmax(1).cpu().numpy()), list(batch["label"].numpy()))
    matrix = ctx.all_reduce_sum(torch.from_numpy(acc.matrix).to(ctx.device)).cpu().numpy()
    acc.matrix = matrix
    iou = acc.iou()
    return {
        "miou": acc.miou(),
        "pixel_accuracy": acc.pixel_accuracy(),
        "per_class_iou": [None if v != v else float(v) for v in iou],
    }


def run_stage1(exp: Experiment, ctx: DistContext) -> dict[str, Any]:
    cfg = exp.config
    s1 = cfg.stage1
    train_ds = parts.dataset(cfg, "train", augment=True)
    val_ds = parts.dataset(cfg, "val")
    backbone = parts.stage1_backbone(exp).to(ctx.device)
    ctx.barrier()  # rank 0 may just have written backbone.pt
    torch.manual_seed(cfg.seed + 1)
    decoder = parts.new_decoder(cfg, backbone).to(ctx.device)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=s1.lr, weight_decay=s1.weight_decay)
    start_epoch, best_miou, best_epoch, history = 0, -1.0, -1, []
    best_state = copy.deepcopy(decoder.state_dict())
    state = exp.load_state(STAGE)
    if state is not None:
        decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best_miou, best_epoch = state["epoch"], state["best_miou"], state["best_epoch"]
        best_state, history = state["best_decoder"], state["history"]
        set_rng_state(state["rng"])
        exp.log(f"{STAGE}: resuming after epoch {start_epoch} (best mIoU {best_miou:.4f})")
    model = DistributedDataParallel(decoder) if ctx.enabled else decoder
    for epoch in range(start_epoch, s1.epochs):
        train_ds.set_epoch(epoch)
        loader = _train_loader(train_ds, cfg, cfg.seed, epoch, ctx)
        decoder.train()
        desc, show = f"stage1 epoch {epoch + 1}/{s1.epochs}", cfg.progress and ctx.is_main
        loss = _train_epoch(backbone, model, optimizer, loader, desc, show, ctx.device)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss}
        last = epoch + 1 == s1.epochs
        if (epoch + 1) % s1.val_every == 0 or last:
            metrics = evaluate_miou(backbone, decoder, val_ds, cfg, ctx)
            record["val_miou"] = metrics["miou"]
            if metrics["miou"] > best_miou:
                best_miou, best_epoch = metrics["miou"], epoch + 1
                best_state = copy.deepcopy(decoder.state_dict())
        history.append(record)
        exp.log(
            f"{STAGE}: epoch {epoch + 1}/{s1.epochs} loss {record['train_loss']:.4f}"
            + (f" val mIoU {record['val_miou']:.4f}" if "val_miou" in record else "")
        )
        exp.save_state(STAGE, {
            "epoch": epoch + 1,
            "decoder": decoder.state_dict(),
            "optimizer": optimizer.state_dict(),
            "best_miou": best_miou,
            "best_epoch": best_epoch,
            "best_decoder": best_state,
            "history": history,
            "rng": rng_state(),
        })  # fmt: skip
        maybe_test_kill(STAGE, epoch + 1)
    decoder.load_state_dict(best_state)
    final = evaluate_miou(backbone, decoder, val_ds, cfg, ctx)
    summary = {
        "best_epoch": best_epoch,
        "val_miou": final["miou"],
        "val_pixel_accuracy": final["pixel_accuracy"],
        "val_per_class_iou": final["per_class_iou"],
        "history": history,
    }
    if ctx.is_main:
        save_torch(best_state, exp.path(STAGE, "decoder_best.pt"))
    exp.update_metrics(STAGE, summary)
    exp.mark_done(STAGE, {"best_epoch": best_epoch, "val_miou": final["miou"]})
    exp.log(f"{STAGE}: done, best epoch {best_epoch}, val mIoU {final['miou']:.4f}")
    return summary
