"""Frozen DINOv2 ViT feature extractor (docs/method.md §2.1-2.2).

The ViT is built by timm (all DINOv2 sizes, with and without registers) but run by our own loop so
that we control two details that decide feature parity with the official PixOOD backbone:

* the outputs of the configured blocks each go through the model's *final* LayerNorm, the CLS and
  register tokens are dropped, and the blocks are concatenated on channels -> [B, n*D, Hp, Wp];
* the position embedding is interpolated exactly like the official DINOv2 hub code for inputs
  other than 518x518 (``pos_embed_interp="official"``): plain bicubic with the "+0.1 offset"
  scale factor for models without registers, antialiased bicubic to the target size for register
  models. The interpolation is written as two small matrix products computed from the (symbolic)
  patch-grid size, so it exports to ONNX with dynamic H, W (the exporter drops the scale factor of
  ``F.interpolate``, which would silently lose the offset).

Weights come from a local file in the official DINOv2 format (``dinov2_vitl14_pretrain.pth``) or in
timm's format, or from timm's hub when the machine has internet. Tiny configurations for tests go
through the same code path (``embed_dim``/``depth``/``num_heads`` overrides).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import nn

from pixood_ros.cli import UserError

from ..state_dict import state_dict_mismatch

PATCH_SIZE = 14
PRETRAIN_IMG_SIZE = 518  # 37 x 37 position-embedding grid of every DINOv2 release

# timm architecture name -> (embed_dim, depth, register tokens) of the official releases.
DINOV2_ARCHS: dict[str, tuple[int, int, int]] = {
    "vit_small_patch14_dinov2": (384, 12, 0),
    "vit_base_patch14_dinov2": (768, 12, 0),
    "vit_large_patch14_dinov2": (1024, 24, 0),
    "vit_giant_patch14_dinov2": (1536, 40, 0),
    "vit_small_patch14_reg4_dinov2": (384, 12, 4),
    "vit_base_patch14_reg4_dinov2": (768, 12, 4),
    "vit_large_patch14_reg4_dinov2": (1024, 24, 4),
    "vit_giant_patch14_reg4_dinov2": (1536, 40, 4),
}

POS_EMBED_INTERP_MODES = ("official", "timm")


class BackboneWeightsError(UserError, ValueError):
    """A weights file is missing, unreadable or does not fit the configured architecture."""


def default_blocks(depth: int) -> tuple[int, ...]:
    """Evenly spaced quarters, 0-based: (5, 11, 17, 23) for 24 blocks, (2, 5, 8, 11) for 12."""
    blocks = sorted({max(0, (depth * (k + 1)) // 4 - 1) for k in range(4)})
    return tuple(blocks)


@dataclass
class BackboneConfig:
    """Everything needed to rebuild the backbone (stored in model_config.json).

    ``embed_dim``/``depth``/``num_heads`` override the timm architecture (tiny test models);
    ``blocks`` = None means evenly spaced quarters of the depth.
    """

    arch: str = "vit_large_patch14_dinov2"
    blocks: tuple[int, ...] | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    img_size: int = PRETRAIN_IMG_SIZE
    pos_embed_interp: str = "official"

    def __post_init__(self) -> None:
        if self.arch not in DINOV2_ARCHS:
            raise ValueError(
                f"unknown backbone arch {self.arch!r}; choose one of {sorted(DINOV2_ARCHS)}"
            )
        if self.pos_embed_interp not in POS_EMBED_INTERP_MODES:
            raise ValueError(
                f"pos_embed_interp must be one of {POS_EMBED_INTERP_MODES}, "
                f"got {self.pos_embed_interp!r}"
            )
        if self.img_size % PATCH_SIZE:
            raise ValueError(f"img_size must be a multiple of {PATCH_SIZE}, got {self.img_size}")
        if self.blocks is not None:
            self.blocks = tuple(sorted(int(b) for b in self.blocks))
            depth = self.resolved_depth
            if not self.blocks or any(b < 0 or b >= depth for b in self.blocks):
                raise ValueError(f"blocks {self.blocks} out of range for a {depth}-block ViT")
            if len(set(self.blocks)) != len(self.blocks):
                raise ValueError(f"blocks must be distinct, got {self.blocks}")

    @property
    def resolved_embed_dim(self) -> int:
        return self.embed_dim or DINOV2_ARCHS[self.arch][0]

    @property
    def resolved_depth(self) -> int:
        return self.depth or DINOV2_ARCHS[self.arch][1]

    @property
    def resolved_blocks(self) -> tuple[int, ...]:
        return self.blocks if self.blocks is not None else default_blocks(self.resolved_depth)

    @property
    def num_register_tokens(self) -> int:
        return DINOV2_ARCHS[self.arch][2]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["blocks"] = list(self.resolved_blocks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown backbone config keys: {sorted(unknown)}")
        data = dict(data)
        if data.get("blocks") is not None:
            data["blocks"] = tuple(data["blocks"])
        return cls(**data)


def tiny_backbone_config(registers: bool = False, **overrides: Any) -> BackboneConfig:
    """A few-thousand-parameter DINOv2-shaped ViT for tests (same code path as the real ones)."""
    arch = "vit_small_patch14_reg4_dinov2" if registers else "vit_small_patch14_dinov2"
    values: dict[str, Any] = dict(arch=arch, embed_dim=32, depth=4, num_heads=2, img_size=70)
    values.update(overrides)
    return BackboneConfig(**values)


def _cubic_weights(t: torch.Tensor, a: float = -0.75) -> list[torch.Tensor]:
    """Keys cubic convolution weights for taps at offsets -1, 0, 1, 2 (PyTorch's coefficients)."""

    def near(x: torch.Tensor) -> torch.Tensor:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: torch.Tensor) -> torch.Tensor:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def bicubic_resize_matrix(out_size: Any, in_size: int, offset: torch.Tensor) -> torch.Tensor:
    """[out_size, in_size] matrix M with ``M @ x`` = 1-D bicubic resize of ``x`` (len in_size).

    Reproduces ``F.interpolate(mode="bicubic", align_corners=False, antialias=False,
    scale_factor=(out_size + offset) / in_size)`` (PyTorch's coordinate mapping, a = -0.75, border
    taps clamped). ``offset`` is a 0-d tensor so it can depend on symbolic sizes without a branch.
    """
    dst = torch.arange(out_size, dtype=torch.float32)
    n_out = torch.ones_like(dst).sum()
    scale = float(in_size) / (n_out + offset)
    src = (dst + 0.5) * scale - 0.5
    base = torch.floor(src)
    t = src - base
    cols = torch.arange(in_size, dtype=torch.float32)
    matrix = torch.zeros_like(dst)[:, None] * cols[None, :]
    for tap, weight in enumerate(_cubic_weights(t)):
        index = torch.clamp(base + (tap - 1), 0, in_size - 1)
        matrix = matrix + weight[:, None] * (index[:, None] == cols[None, :]).to(torch.float32)
    return matrix


class DinoV2Backbone(nn.Module):
    """Frozen DINOv2: image [B,3,H,W] (H, W multiples of 14) -> features [B, n*D, H/14, W/14]."""

    def __init__(self, config: BackboneConfig | None = None, pretrained_hub: bool = False):
        super().__init__()
        self.config = config or BackboneConfig()
        overrides = {
            key: value
            for key, value in (
                ("embed_dim", self.config.embed_dim),
                ("depth", self.config.depth),
                ("num_heads", self.config.num_heads),
            )
            if value is not None
        }
        self.vit = timm.create_model(
            self.config.arch,
            pretrained=pretrained_hub,
            num_classes=0,
            dynamic_img_size=True,
            img_size=self.config.img_size,
            **overrides,
        )
        self.blocks = self.config.resolved_blocks
        self.embed_dim = int(self.vit.embed_dim)
        self.out_channels = len(self.blocks) * self.embed_dim
        self.grid = self.config.img_size // PATCH_SIZE
        self.freeze()

    def freeze(self) -> None:
        for param in self.vit.parameters():
            param.requires_grad_(False)
        self.vit.eval()

    def train(self, mode: bool = True) -> DinoV2Backbone:
        """The backbone never trains (no dropout/drop-path either way): keep it in eval mode."""
        super().train(mode)
        self.vit.eval()
        return self

    # -- position embedding --------------------------------------------------------------
    def patch_pos_embed(self, hp: Any, wp: Any) -> torch.Tensor:
        """Position embedding of the patch tokens for an hp x wp grid -> [1, hp*wp, D]."""
        vit = self.vit
        prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
        pos = vit.pos_embed[:, prefix:].float()
        grid = self.grid
        if self.config.pos_embed_interp == "timm" or self.config.num_register_tokens:
            # timm's resize (antialiased bicubic to the target size) is what the official
            # register models use too (interpolate_antialias=True, interpolate_offset=0).
            return resample_abs_pos_embed(
                pos, new_size=[hp, wp], old_size=[grid, grid], num_prefix_tokens=0
            )
        # Official non-register models: bicubic, no antialias, scale (n + 0.1) / 37 - except
        # the native 37 x 37 grid, which the official code returns unchanged.
        rows = torch.ones(hp, dtype=torch.float32).sum()
        cols = torch.ones(wp, dtype=torch.float32).sum()
        native = (rows == grid) & (cols == grid)
        offset = torch.where(native, 0.0, 0.1)
        resize_h = bicubic_resize_matrix(hp, grid, offset)
        resize_w = bicubic_resize_matrix(wp, grid, offset)
        table = pos.reshape(grid, grid, -1)
        table = torch.einsum("hi,ijd->hjd", resize_h, table)
        table = torch.einsum("wj,hjd->hwd", resize_w, table)
        return table.reshape(1, -1, table.shape[-1])

    def prefix_tokens(self, batch: int) -> torch.Tensor:
        """CLS (+ registers) with their position embedding already added -> [B, P, D]."""
        vit = self.vit
        cls = vit.cls_token
        if not vit.no_embed_class:
            cls = cls + vit.pos_embed[:, :1]
        tokens = [cls]
        if vit.reg_token is not None:
            tokens.append(vit.reg_token)
        return torch.cat(tokens, dim=1).expand(batch, -1, -1)

    # -- forward ---------------------------------------------------------------------------
    def forward_blocks(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Normed outputs of the configured blocks, each [B, D, Hp, Wp], in block order."""
        if not torch.compiler.is_compiling():
            height, width = image.shape[-2:]
            if height % PATCH_SIZE or width % PATCH_SIZE:
                raise ValueError(
                    f"backbone input {height}x{width} is not a multiple of {PATCH_SIZE}; "
                    "resize with pixood_training.models.preprocess first"
                )
        vit = self.vit
        batch = image.shape[0]
        patches = vit.patch_embed(image)  # [B, Hp, Wp, D] (dynamic_img_size -> NHWC)
        hp, wp = patches.shape[1], patches.shape[2]
        tokens = patches.reshape(batch, -1, self.embed_dim)
        tokens = tokens + self.patch_pos_embed(hp, wp).to(tokens.dtype)
        prefix = self.prefix_tokens(batch).to(tokens.dtype)
        num_prefix = prefix.shape[1]
        x = torch.cat([prefix, tokens], dim=1)
        x = vit.norm_pre(vit.patch_drop(x))
        outputs = []
        last = self.blocks[-1]
        for index, block in enumerate(vit.blocks):
            if index > last:
                break
            x = block(x)
            if index in self.blocks:
                normed = vit.norm(x)[:, num_prefix:]
                outputs.append(normed.reshape(batch, hp, wp, -1).permute(0, 3, 1, 2))
        return outputs

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.forward_blocks(image), dim=1)


# -- weights ---------------------------------------------------------------------------------
def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise BackboneWeightsError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure is a bad file for the user
        raise BackboneWeightsError(f"cannot read backbone weights {path}: {exc}") from exc
    for key in ("model", "state_dict", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneWeightsError(f"{path} does not hold a flat tensor state dict")
    return state


def is_official_format(state: dict[str, torch.Tensor]) -> bool:
    """Official DINOv2 checkpoints carry ``mask_token`` (and ``register_tokens``, ``mlp.w12``)."""
    return "mask_token" in state or "register_tokens" in state


def official_to_timm(
    state: dict[str, torch.Tensor], backbone: DinoV2Backbone
) -> dict[str, torch.Tensor]:
    """Official DINOv2 keys -> timm keys, via timm's own converter (registers, SwiGLU names)."""
    return checkpoint_filter_fn(dict(state), backbone.vit)


def timm_to_official(state: dict[str, torch.Tensor], config: BackboneConfig) -> dict:
    """timm keys -> official DINOv2 layout (inverse of ``official_to_timm``; used by tests)."""
    out = {k: v for k, v in state.items() if not k.startswith("head.")}
    if config.num_register_tokens:
        # timm folded the CLS position embedding into cls_token; put the folded token back as the
        # CLS row of pos_embed and store a zero raw token, which converts back to the same sum.
        cls = out.pop("cls_token")
        out["pos_embed"] = torch.cat([cls, out.pop("pos_embed")], dim=1)
        out["cls_token"] = torch.zeros_like(cls)
        out["register_tokens"] = out.pop("reg_token")
    if "giant" in config.arch:  # official giant uses a fused SwiGLU named w12 / w3
        out = {
            k.replace(".mlp.fc1.", ".mlp.w12.").replace(".mlp.fc2.", ".mlp.w3."): v
            for k, v in out.items()
        }
    out["mask_token"] = torch.zeros(1, out["cls_token"].shape[-1])
    return out


def load_backbone_weights(backbone: DinoV2Backbone, path: str | Path) -> None:
    """Load official-format or timm-format DINOv2 weights; raise naming the file on mismatch."""
    path = Path(path)
    state = _read_state_dict(path)
    if is_official_format(state):
        state = official_to_timm(state, backbone)
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    details = state_dict_mismatch(state, backbone.vit.state_dict())
    if details:
        raise BackboneWeightsError(
            f"backbone weights {path} do not match {backbone.config.arch} "
            f"(embed_dim {backbone.embed_dim}, depth {len(backbone.vit.blocks)}): "
            + "; ".join(details)
        )
    backbone.vit.load_state_dict(state, strict=True)
    backbone.freeze()


def backbone_config_from_weights(path: str | Path, **overrides: Any) -> BackboneConfig:
    """Infer the DINOv2 size (width, depth, registers, pos-embed grid) from a weights file."""
    path = Path(path)
    state = _read_state_dict(path)
    try:
        dim = int(state["cls_token"].shape[-1])
        pos_tokens = int(state["pos_embed"].shape[1])
    except KeyError as exc:
        raise BackboneWeightsError(f"{path} is not a DINOv2 state dict (no {exc})") from exc
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    registers = "register_tokens" in state or "reg_token" in state
    official_layout = is_official_format(state)
    grid_tokens = pos_tokens - (1 if (official_layout or not registers) else 0)
    grid = math.isqrt(grid_tokens)
    if grid * grid != grid_tokens:
        raise BackboneWeightsError(f"{path}: pos_embed has {pos_tokens} tokens, not a square grid")
    by_size = {(d, n, r > 0): name for name, (d, n, r) in DINOV2_ARCHS.items()}
    arch = by_size.get((dim, depth, registers))
    values: dict[str, Any] = {"img_size": grid * PATCH_SIZE}
    if arch is None:  # non-standard size: closest family member with explicit overrides
        arch = "vit_small_patch14_reg4_dinov2" if registers else "vit_small_patch14_dinov2"
        values.update(embed_dim=dim, depth=depth, num_heads=max(1, dim // 64))
    values.update(overrides)
    return BackboneConfig(arch=arch, **values)


def build_backbone(
    config: BackboneConfig | dict[str, Any] | None = None,
    weights: str | Path | None = None,
    pretrained_hub: bool = False,
) -> DinoV2Backbone:
    """Backbone from config; weights from a local file, timm's hub (needs internet), or random."""
    if isinstance(config, dict):
        config = BackboneConfig.from_dict(config)
    backbone = DinoV2Backbone(config, pretrained_hub=pretrained_hub and weights is None)
    if weights is not None:
        load_backbone_weights(backbone, weights)
    return backbone
