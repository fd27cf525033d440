"""Patch labels by majority vote (docs/method.md §4.1): the label of a 14x14 patch is its most
frequent pixel label when that label covers at least ``threshold`` of the patch, else 255 (void).
Stages 2 and 3 work on patch features, so they need one label per patch; mixed patches at class
borders would blur the class models and are left out."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .labels import IGNORE_INDEX


def majority_patch_labels(
    labels: torch.Tensor, patch: int = 14, threshold: float = 0.9, num_values: int = 256
) -> torch.Tensor:
    """labels long [B, H, W] (train ids, 255 void; H, W multiples of ``patch``) -> long
    [B, H/patch, W/patch]. A patch whose majority is void stays void."""
    if labels.dim() != 3 or labels.shape[1] % patch or labels.shape[2] % patch:
        raise ValueError(f"labels must be [B, H, W] with H, W multiples of {patch}: {labels.shape}")
    values = torch.unique(labels)
    # Fraction of each present value per patch: [B, V, h, w]; loop-free and exact for V <= 256.
    onehot = (labels[:, None] == values[None, :, None, None]).float()
    fractions = F.avg_pool2d(onehot, kernel_size=patch, stride=patch)
    best, which = fractions.max(dim=1)
    out = values[which]
    out[best < threshold] = IGNORE_INDEX
    return out
