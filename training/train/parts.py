"""Backbone, decoder and data sets built from a training config, shared by the three stages.

A randomly initialised backbone (``model.backbone_weights: null``: tests and the synthetic demo,
since DINOv2 weights cannot be downloaded here) is drawn from the config seed once in stage 1 and
saved as ``stage1/backbone.pt``; later stages load that file, so every stage and the exported
model use the very same frozen weights. With ``pretrain.enabled`` (demo only, see pretrain.py)
the backbone is instead the one the pretrain step wrote (``pretrain/backbone.pt``), frozen.

``model.family: internimage`` builds an InternImage backbone (``model.backbone``: a preset and/or
InternImageConfig fields, training/internimage/backbone.py) and a UperNet decoder whose width is
``model.decoder.hidden_dim``; the rest of stage 1 is shared.
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

INTERNIMAGE = "internimage"
INTERNIMAGE_STRIDE = 32  # network sizes of the family are multiples of its coarsest stride


def is_internimage(config: TrainConfig) -> bool:
    return config.model.family == INTERNIMAGE


def check_family(config: TrainConfig) -> None:
    """The options the InternImage family cannot use, refused before anything runs."""
    if not is_internimage(config):
        return
    if config.pretrain.enabled:
        raise ConfigError(
            "pretrain is the DINOv2 family's demo stand-in; set pretrain.enabled=false"
        )
    if config.model.backbone_weights is not None:
        raise ConfigError(
            "model.backbone_weights is for DINOv2; published InternImage checkpoints are "
            "converted with pixood-convert-internimage"
        )
    internimage_config(config)
    sides = config.data.size or [config.data.long_side]
    if any(side % INTERNIMAGE_STRIDE for side in sides):
        raise ConfigError(
            "model.family internimage needs data.size / data.long_side multiples of 32 (and of "
            "14, as every config: e.g. 224, 448)"
        )


def internimage_config(config: TrainConfig):
    """``model.backbone`` as an InternImageConfig. The config loader merges a file's mapping
    into the DINOv2 default (arch, blocks); the entries still equal to that default are its."""
    from ..internimage.backbone import InternImageConfig
    from .config import ModelSection

    dinov2 = ModelSection().backbone
    options = {k: v for k, v in config.model.backbone.items() if dinov2.get(k, object()) != v}
    try:
        return InternImageConfig.from_dict(options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.backbone: {exc}") from None


def weights_module(backbone: torch.nn.Module) -> torch.nn.Module:
    """The module whose state dict is the backbone's saved weights (the ViT inside DINOv2)."""
    return getattr(backbone, "vit", backbone)


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
    if is_internimage(config):
        from ..internimage.backbone import InternImage

        torch.manual_seed(config.seed)
        return InternImage(internimage_config(config))  # type: ignore[return-value]
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
            weights_module(backbone).load_state_dict(load_torch(path))
        elif exp.is_main:
            save_torch(weights_module(backbone).state_dict(), path)
    backbone.freeze()
    return backbone.eval()


def new_decoder(config: TrainConfig, backbone: DinoV2Backbone) -> MLPDecoder:
    hidden = config.model.decoder.hidden_dim
    if is_internimage(config):
        from ..internimage.upernet import UperNetHead

        channels = hidden or 512
        return UperNetHead(backbone.out_channels, config.data.num_classes, channels)  # type: ignore[return-value]
    return MLPDecoder(backbone.out_channels, config.data.num_classes, hidden)


def load_best_decoder(exp: Experiment, backbone: DinoV2Backbone) -> MLPDecoder:
    decoder = new_decoder(exp.config, backbone)
    path = exp.path("stage1", "decoder_best.pt")
    decoder.load_state_dict(load_torch(path))
    return decoder.eval()


def dataset(
    config: TrainConfig, role: str, *, augment: bool = False, resize: bool = True
) -> SegmentationDataset:
    stride = INTERNIMAGE_STRIDE if is_internimage(config) else 14
    return build_dataset(
        {**dataclasses.asdict(config.data), "stride": stride},
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
        "backbone_weights": state_dict_hash(weights_module(backbone)),
        "decoder_weights": state_dict_hash(decoder),
        "size": config.data.size,
        "long_side": config.data.long_side,
        "data": data.fingerprint(),
    }
