"""Backbone, decoder and data sets built from a training config, shared by the three stages.

A randomly initialised backbone (``model.backbone_weights: null``: tests and the synthetic demo,
since DINOv2 weights cannot be downloaded here) is drawn from the config seed once in stage 1 and
saved as ``stage1/backbone.pt``; later stages load that file, so every stage and the exported
model use the very same frozen weights. With ``pretrain.enabled`` (demo only, see pretrain.py)
the backbone is instead the one the pretrain step wrote (``pretrain/backbone.pt``), frozen.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..data import build_dataset
from ..data.datasets import SegmentationDataset
from ..data.feature_cache import state_dict_hash
from ..model import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from ..models.backbone import BackboneWeightsError, DinoV2Backbone, build_backbone
from ..models.decoder import MLPDecoder
from .config import ConfigError, TrainConfig
from .experiment import Experiment, load_torch, save_torch


def class_names(config: TrainConfig) -> list[str]:
    names = config.model.class_names
    num = config.data.num_classes
    if names == "cityscapes":
        names = list(CITYSCAPES_CLASSES)
    if not isinstance(names, list) or len(names) != num:
        raise ConfigError(f"model.class_names must be 'cityscapes' or a list of {num} names")
    return [str(n) for n in names]


def palette(config: TrainConfig) -> list[list[int]] | None:
    value = config.model.palette
    if value == "cityscapes":
        if config.data.num_classes != len(CITYSCAPES_PALETTE):
            return None  # the model picks distinct colours
        return [list(c) for c in CITYSCAPES_PALETTE]
    return value


def network_long_side(config: TrainConfig) -> int:
    size = config.data.size
    return int(max(size)) if size else int(config.data.long_side)


def new_backbone(config: TrainConfig) -> DinoV2Backbone:
    """Backbone per config: local weights file, or random init from the config seed."""
    model = config.model
    weights = model.backbone_weights
    if weights is not None and not Path(weights).is_file():
        raise ConfigError(f"model.backbone_weights file {weights} not found")
    torch.manual_seed(config.seed)
    try:
        backbone = build_backbone(dict(model.backbone), weights=weights)
    except BackboneWeightsError as exc:
        raise ConfigError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.backbone: {exc}") from None
    layerscale = model.random_init_layerscale
    if weights is None and layerscale is not None:
        set_layerscale(backbone, float(layerscale))
    return backbone


def set_layerscale(backbone: DinoV2Backbone, value: float) -> None:
    """Set every LayerScale gain of a randomly initialised ViT. timm starts DINOv2's at 1e-5
    (blocks ~ identity); the DINOv2 hub code builds its models with 1.0. The gains are part of
    the saved state dict, so checkpoints and exports keep the value."""
    with torch.no_grad():
        for block in backbone.vit.blocks:
            for name in ("ls1", "ls2"):
                gamma = getattr(getattr(block, name, None), "gamma", None)
                if gamma is not None:
                    gamma.fill_(value)


def stage1_backbone(exp: Experiment) -> DinoV2Backbone:
    """The frozen backbone of this experiment (saved by stage 1 when randomly initialised)."""
    config = exp.config
    backbone = new_backbone(config)
    if config.pretrain.enabled:
        path = exp.path("pretrain", "backbone.pt")
        if not path.is_file():
            raise ConfigError(f"{path} is missing: run `pixood-train pretrain` first")
        backbone.vit.load_state_dict(load_torch(path))
        backbone.freeze()
    elif config.model.backbone_weights is None:
        path = exp.path("stage1", "backbone.pt")
        if path.is_file():
            backbone.vit.load_state_dict(load_torch(path))
        elif exp.is_main:
            save_torch(backbone.vit.state_dict(), path)
    return backbone.eval()


def new_decoder(config: TrainConfig, backbone: DinoV2Backbone) -> MLPDecoder:
    hidden = config.model.decoder.hidden_dim
    return MLPDecoder(backbone.out_channels, config.data.num_classes, hidden)


def load_best_decoder(exp: Experiment, backbone: DinoV2Backbone) -> MLPDecoder:
    decoder = new_decoder(exp.config, backbone)
    path = exp.path("stage1", "decoder_best.pt")
    decoder.load_state_dict(load_torch(path))
    return decoder.eval()


def dataset(
    config: TrainConfig, role: str, *, augment: bool = False, resize: bool = True
) -> SegmentationDataset:
    return build_dataset(
        dataclasses.asdict(config.data),
        role,
        augment=augment,
        resize=resize,
        seed=config.seed,
    )


def cache_key_inputs(
    config: TrainConfig, backbone: DinoV2Backbone, decoder: MLPDecoder, data: SegmentationDataset
) -> dict[str, Any]:
    """Everything the cached features depend on (feature_cache.py)."""
    return {
        "backbone": backbone.config.to_dict(),
        "backbone_weights": state_dict_hash(backbone.vit),
        "decoder_weights": state_dict_hash(decoder),
        "size": config.data.size,
        "long_side": config.data.long_side,
        "data": data.fingerprint(),
    }
