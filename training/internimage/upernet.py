"""UperNet decode head (Xiao et al., ECCV 2018) as mmsegmentation's ``UPerHead`` computes it.

Pyramid pooling on the last level (average pools to 1, 2, 3, 6 cells, 1x1 conv, upsampled back,
concatenated with the input, 3x3 bottleneck), FPN on the others (1x1 lateral convs, top-down
sum of bilinearly upsampled coarser maps, 3x3 convs), every level upsampled to 1/4 resolution,
concatenated, fused by a 3x3 conv, and a 1x1 classifier. Conv + BatchNorm + ReLU units are named
``conv`` / ``bn`` as in mmseg checkpoints. The adaptive average pooling is written with a summed-
area table so that it exports for any (dynamic) input size: same bins as ``AdaptiveAvgPool2d``
(bin i covers [floor(i*n/s), ceil((i+1)*n/s))). The training-only auxiliary head is not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

POOL_SCALES = (1, 2, 3, 6)


class ConvModule(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def _bin_edges(length: Any, cells: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) indices of the ``cells`` adaptive-pooling bins over ``length`` elements."""
    size = torch.ones(length, device=device, dtype=torch.long).sum()
    index = torch.arange(cells, device=device)
    start = (index * size) // cells
    end = ((index + 1) * size + cells - 1) // cells
    return start, end


def adaptive_avg_pool(x: torch.Tensor, cells: int) -> torch.Tensor:
    """``AdaptiveAvgPool2d(cells)`` via a summed-area table (exportable for dynamic sizes)."""
    b, c, h, w = x.shape
    table = F.pad(x.cumsum(dim=2).cumsum(dim=3), (1, 0, 1, 0))
    top, bottom = _bin_edges(h, cells, x.device)
    left, right = _bin_edges(w, cells, x.device)

    def corners(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return table.index_select(2, rows).index_select(3, cols)

    total = (
        corners(bottom, right) - corners(top, right) - corners(bottom, left) + corners(top, left)
    )
    area = (bottom - top).view(-1, 1) * (right - left).view(1, -1)
    return total / area.to(x.dtype)


class AdaptivePool(nn.Module):
    def __init__(self, cells: int) -> None:
        super().__init__()
        self.cells = int(cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool(x, self.cells)


def _resize(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class UperNetHead(nn.Module):
    """Feature pyramid (4 maps, fine to coarse) -> (fused features, logits) at the finest grid."""

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        pool_scales: Sequence[int] = POOL_SCALES,
    ) -> None:
        super().__init__()
        self.in_channels = tuple(int(c) for c in in_channels)
        self.num_classes, self.channels = int(num_classes), int(channels)
        self.pool_scales = tuple(int(s) for s in pool_scales)
        last = self.in_channels[-1]
        self.psp_modules = nn.ModuleList(
            nn.Sequential(AdaptivePool(s), ConvModule(last, channels, 1)) for s in self.pool_scales
        )
        self.bottleneck = ConvModule(last + len(self.pool_scales) * channels, channels, 3)
        finer = self.in_channels[:-1]
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in finer)
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in finer)
        self.fpn_bottleneck = ConvModule(len(self.in_channels) * channels, channels, 3)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def pyramid_pooling(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [_resize(module(x), x) for module in self.psp_modules]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))

    def fused(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The fused 1/4-resolution features right before the classifier."""
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs, strict=False)]
        laterals.append(self.pyramid_pooling(inputs[-1]))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + _resize(laterals[i], laterals[i - 1])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals, strict=False)]
        outs.append(laterals[-1])
        outs = [outs[0], *(_resize(x, outs[0]) for x in outs[1:])]
        return self.fpn_bottleneck(torch.cat(outs, dim=1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv_seg(self.fused(inputs))

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": list(self.in_channels),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "pool_scales": list(self.pool_scales),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UperNetHead:
        return cls(
            in_channels=config["in_channels"],
            num_classes=int(config["num_classes"]),
            channels=int(config.get("channels", 512)),
            pool_scales=config.get("pool_scales", POOL_SCALES),
        )
