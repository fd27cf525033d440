"""Resizing to the network input size and the optional horizontal flip.

The network sees images whose sides are multiples of the ViT patch size (14). docs/method.md §1: the
longest side becomes ``long_side`` and the other side is scaled with the same factor and floored to
a multiple of 14. Images are resized with antialiased bilinear interpolation (as torchvision's
``resize(antialias=True)``); labels and OOD masks with nearest neighbour, so no new label values
appear.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ..models.preprocess import PATCH_SIZE, network_input_size


def network_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(H, W) fed to the network for an image of ``height`` x ``width`` (docs/method.md §1).

    Same rule (and code) as the exported model's in-graph resize, so training and deployment see
    the same sizes."""
    if long_side <= 0 or long_side % PATCH_SIZE:
        raise ValueError(f"long side {long_side} is not a positive multiple of {PATCH_SIZE}")
    h, w = network_input_size(int(height), int(width), int(long_side))
    return int(h), int(w)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 HxWx3 RGB -> float [3, H, W] in [0, 1] at ``size`` (antialiased bilinear)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    out = F.interpolate(
        tensor[None], size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return out[0].clamp_(0.0, 1.0)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """int HxW -> long [H, W] at ``size`` (nearest neighbour, values preserved)."""
    tensor = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))
    if tuple(tensor.shape) == tuple(size):
        return tensor
    out = F.interpolate(tensor[None, None].float(), size=size, mode="nearest")
    return out[0, 0].round_().long()


def flip_decision(seed: int, epoch: int, index: int) -> bool:
    """Deterministic coin flip for (seed, epoch, sample): the same on every worker, every rank
    and after a resume, which a stateful RNG inside DataLoader workers would not give."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return bool(digest[0] & 1)
