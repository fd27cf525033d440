"""The InternImage backbone (Wang et al., CVPR 2023), written for this project.

Stem (two stride-2 3x3 convolutions, 1/4 resolution), four levels of DCNv3 blocks with a stride-2
convolution between levels (channels double), and the four level outputs (before downsampling) as
the feature pyramid [C, 2C, 4C, 8C] at 1/4 .. 1/32 of the input. A block is DCNv3 + MLP, each a
residual branch with optional layer scale, normalised before (pre-norm) or after (post-norm) the
branch; pre-norm models also normalise each level's output. Modules are named as in the published
mmsegmentation checkpoints (``patch_embed.norm1.1.weight``, ``levels.2.blocks.7.dcn.offset``...)
so that converting one only renames the prefix (training/internimage/mmseg.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .dcnv3 import DCNv3, channels_norm


@dataclass(frozen=True)
class InternImageConfig:
    """The published configuration fields (mmseg ``backbone=dict(...)``) that shape the model."""

    channels: int = 64
    depths: tuple[int, ...] = (4, 4, 18, 4)
    groups: tuple[int, ...] = (4, 8, 16, 32)
    mlp_ratio: float = 4.0
    layer_scale: float | None = 1.0
    offset_scale: float = 1.0
    post_norm: bool = False
    kernel_size: int = 3
    dw_kernel_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "groups", tuple(int(g) for g in self.groups))
        if len(self.depths) != 4 or len(self.groups) != 4:
            raise ValueError(f"depths and groups need 4 levels: {self.depths}, {self.groups}")
        for level, groups in enumerate(self.groups):
            width = self.channels * 2**level
            if width % groups:
                raise ValueError(f"level {level}: {width} channels, {groups} groups")
        if self.channels % 2 or self.kernel_size % 2 == 0:
            raise ValueError("channels must be even and kernel_size odd")

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(self.channels * 2**level for level in range(4))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["depths"], values["groups"] = list(self.depths), list(self.groups)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InternImageConfig:
        """Preset name (``preset``) and/or explicit fields; unknown keys are an error."""
        values = dict(values)
        preset = values.pop("preset", None)
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown InternImage preset {preset!r}; known: {sorted(PRESETS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown InternImage backbone option(s) {unknown}")
        base = dataclasses.asdict(PRESETS[preset]) if preset else {}
        return cls(**{**base, **values})


# The published configurations (InternImage segmentation configs) and tiny ones for tests.
PRESETS: dict[str, InternImageConfig] = {
    "T": InternImageConfig(64, (4, 4, 18, 4), (4, 8, 16, 32), 4.0, 1.0, 1.0, False),
    "S": InternImageConfig(80, (4, 4, 21, 4), (5, 10, 20, 40), 4.0, 1.0, 1.0, True),
    "B": InternImageConfig(112, (4, 4, 21, 4), (7, 14, 28, 56), 4.0, 1.0, 1.0, True),
    "L": InternImageConfig(160, (5, 5, 22, 5), (10, 20, 40, 80), 4.0, 1.0, 2.0, True),
    "XL": InternImageConfig(192, (5, 5, 24, 5), (12, 24, 48, 96), 4.0, 1.0, 2.0, True),
    "tiny": InternImageConfig(16, (1, 1, 2, 1), (2, 4, 8, 16), 2.0, 1.0, 1.0, False),
    "tiny_post": InternImageConfig(16, (1, 1, 1, 1), (1, 2, 4, 8), 2.0, 1.0, 2.0, True),
}


class StemLayer(nn.Module):
    """3 -> C/2 -> C channels, two stride-2 3x3 convolutions; channels-last out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1)
        self.norm1 = channels_norm(half, "channels_first", "channels_first")
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(half, channels, 3, stride=2, padding=1)
        self.norm2 = channels_norm(channels, "channels_first", "channels_last")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class DownsampleLayer(nn.Module):
    """Channels-last C -> 2C at half the resolution (3x3 stride-2 convolution, no bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.norm = channels_norm(2 * channels, "channels_first", "channels_last")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class MLP(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class InternImageLayer(nn.Module):
    """One block: x + DCNv3 branch, then x + MLP branch (pre- or post-norm, layer scale)."""

    def __init__(self, channels: int, groups: int, config: InternImageConfig) -> None:
        super().__init__()
        self.post_norm = config.post_norm
        self.norm1 = channels_norm(channels, "channels_last", "channels_last")
        self.dcn = DCNv3(
            channels,
            groups,
            kernel_size=config.kernel_size,
            dw_kernel_size=config.dw_kernel_size,
            offset_scale=config.offset_scale,
        )
        self.norm2 = channels_norm(channels, "channels_last", "channels_last")
        self.mlp = MLP(channels, int(channels * config.mlp_ratio))
        self.layer_scale = config.layer_scale is not None
        if self.layer_scale:
            scale = float(config.layer_scale)  # type: ignore[arg-type]
            self.gamma1 = nn.Parameter(torch.full((channels,), scale))
            self.gamma2 = nn.Parameter(torch.full((channels,), scale))

    def _branch(self, x: torch.Tensor, layer: nn.Module, norm: nn.Module) -> torch.Tensor:
        return norm(layer(x)) if self.post_norm else layer(norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dcn = self._branch(x, self.dcn, self.norm1)
        x = x + (self.gamma1 * dcn if self.layer_scale else dcn)
        mlp = self._branch(x, self.mlp, self.norm2)
        return x + (self.gamma2 * mlp if self.layer_scale else mlp)


class InternImageLevel(nn.Module):
    """The blocks of one resolution, the level norm (pre-norm models), the downsampling."""

    def __init__(self, level: int, config: InternImageConfig) -> None:
        super().__init__()
        channels = config.out_channels[level]
        self.blocks = nn.ModuleList(
            InternImageLayer(channels, config.groups[level], config)
            for _ in range(config.depths[level])
        )
        self.norm = None if config.post_norm else channels_norm(channels, "channels_last", "")
        self.downsample = DownsampleLayer(channels) if level < 3 else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (this level's output, channels-last input of the next level or None)."""
        for block in self.blocks:
            x = block(x)
        if self.norm is not None:
            x = self.norm(x)
        return x, (self.downsample(x) if self.downsample is not None else None)


class InternImage(nn.Module):
    """Normalised image [B,3,H,W] (H, W multiples of 32) -> 4 feature maps, channels-first."""

    def __init__(self, config: InternImageConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = StemLayer(config.channels)
        self.levels = nn.ModuleList(InternImageLevel(level, config) for level in range(4))
        self.out_channels = config.out_channels
        self.apply(_init_weights)
        for module in self.modules():
            if isinstance(module, DCNv3):
                module.start_undeformed()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x: torch.Tensor | None = self.patch_embed(image)
        outputs = []
        for level in self.levels:
            out, x = level(x)
            outputs.append(out.permute(0, 3, 1, 2))
        return outputs

    def freeze(self) -> None:
        """No gradients (the backbone is frozen after training; docs/method.md InternImage-OOD)."""
        for param in self.parameters():
            param.requires_grad_(False)


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights, unit LayerNorms (the published initialisation)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
