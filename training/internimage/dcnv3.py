"""DCNv3, InternImage's deformable convolution, in exportable PyTorch operations.

The published operator is a compiled CUDA kernel. The same arithmetic here: every output pixel
samples ``kernel_size**2`` points per group around itself, each moved by a learnt offset (times
``offset_scale``), reads the value there with bilinear interpolation (``grid_sample``, zeros
outside the image, ``align_corners=False``) and sums the samples weighted by a softmax over the
points of its group. Offsets and weights come from a depthwise convolution of the input followed
by two linear layers. Sampling positions are computed in pixels of the unpadded image: the
published code zero-pads by one pixel first and normalises by the padded size, which reads the
same values. The kernel points are enumerated x-major (all rows of the first column first), the
order the published weights expect. ONNX: ``GridSample`` (opset 16+), no data-dependent control
flow, dynamic height and width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6


class Permute(nn.Module):
    """Channels-first <-> channels-last (no parameters; keeps the published module indices)."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def channels_norm(dim: int, in_format: str, out_format: str) -> nn.Sequential:
    """LayerNorm over channels between the given layouts, as ``Sequential`` so that its weights
    are named like the published ones (``norm.1.weight`` after a layout change)."""
    layers: list[nn.Module] = []
    if in_format == "channels_first":
        layers.append(Permute(0, 2, 3, 1))
    layers.append(nn.LayerNorm(dim, eps=LN_EPS))
    if out_format == "channels_first":
        layers.append(Permute(0, 3, 1, 2))
    return nn.Sequential(*layers)


def kernel_points(kernel_size: int) -> torch.Tensor:
    """[P, 2] (dx, dy) pixel offsets of the kernel points, x-major, centred on 0."""
    half = (kernel_size - 1) // 2
    steps = torch.arange(kernel_size, dtype=torch.float32) - half
    dx, dy = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)


def deformable_sample(
    value: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    points: torch.Tensor,
    groups: int,
    offset_scale: float,
) -> torch.Tensor:
    """The DCNv3 core (stride 1, dilation 1).

    value [N,H,W,C] (channels-last), offset [N,H,W,G*P*2] in pixels (x, y per point), weight
    [N,H,W,G*P] (softmaxed per group), points [P,2] -> [N,H,W,C].
    """
    n, h, w, c = value.shape
    num_points = points.shape[0]
    per_group = c // groups
    rows = torch.arange(h, device=value.device, dtype=value.dtype) + 0.5
    cols = torch.arange(w, device=value.device, dtype=value.dtype) + 0.5
    centre_y, centre_x = torch.meshgrid(rows, cols, indexing="ij")
    centre = torch.stack([centre_x, centre_y], dim=-1).view(1, h, w, 1, 1, 2)
    base = centre + (points.to(value.dtype) * offset_scale).view(1, 1, 1, 1, num_points, 2)
    location = base + offset.view(n, h, w, groups, num_points, 2) * offset_scale
    # the sizes as tensors (sums of ones): exports for symbolic H, W without SymFloat maths
    size = torch.stack([torch.ones_like(cols).sum(), torch.ones_like(rows).sum()])
    grid = location * (2.0 / size) - 1.0  # [N,H,W,G,P,2] in grid_sample's [-1, 1]
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(n * groups, h, w * num_points, 2)
    source = value.view(n, h, w, groups, per_group).permute(0, 3, 4, 1, 2)
    source = source.reshape(n * groups, per_group, h, w)
    sampled = F.grid_sample(
        source, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    ).view(n * groups, per_group, h, w, num_points)
    weights = weight.view(n, h, w, groups, num_points).permute(0, 3, 1, 2, 4)
    weights = weights.reshape(n * groups, 1, h, w, num_points)
    out = (sampled * weights).sum(dim=-1).view(n, groups, per_group, h, w)
    return out.permute(0, 3, 4, 1, 2).reshape(n, h, w, c)


class DCNv3(nn.Module):
    """Deformable convolution v3 on channels-last features [N,H,W,C] (stride 1, padding k//2)."""

    def __init__(
        self,
        channels: int,
        groups: int,
        kernel_size: int = 3,
        dw_kernel_size: int | None = None,
        offset_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"channels {channels} not divisible by groups {groups}")
        dw = int(dw_kernel_size or kernel_size)
        self.channels, self.groups = int(channels), int(groups)
        self.kernel_size, self.offset_scale = int(kernel_size), float(offset_scale)
        num_points = self.kernel_size**2
        self.dw_conv = nn.Sequential(
            nn.Conv2d(channels, channels, dw, padding=(dw - 1) // 2, groups=channels),
            channels_norm(channels, "channels_first", "channels_last"),
            nn.GELU(),
        )
        self.offset = nn.Linear(channels, groups * num_points * 2)
        self.mask = nn.Linear(channels, groups * num_points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        self.register_buffer("points", kernel_points(self.kernel_size), persistent=False)
        self.start_undeformed()

    def start_undeformed(self) -> None:
        """Zero offsets and uniform point weights: a fresh layer samples the plain 3x3 grid."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = x.shape
        value = self.input_proj(x)
        local = self.dw_conv(x.permute(0, 3, 1, 2))
        offset = self.offset(local)
        mask = self.mask(local).view(n, h, w, self.groups, -1).softmax(dim=-1)
        out = deformable_sample(
            value, offset, mask.view(n, h, w, -1), self.points, self.groups, self.offset_scale
        )
        return self.output_proj(out)
