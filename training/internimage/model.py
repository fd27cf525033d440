"""InternImage + UperNet as an end-to-end model of the project (docs/architecture.md §3).

It is a ``PixOODModel``: the same uint8-image-in contract, scorers, score combination, upsampling
and export. What differs: the backbone is InternImage (training/internimage/backbone.py), the
decoder the UperNet head, logits live on the 1/4-resolution grid, and the network size is a
multiple of 32 (the coarsest level is 1/32). The features a scorer sees (``last_block``) are,
per ``scorer_features``:

* ``head`` (default): the UperNet fused features right before the classifier (``channels``-d);
* ``stages``: the four backbone level outputs bilinearly upsampled to the 1/4 grid and
  concatenated (InternImage-OOD's choice, without its untrained random 1x1 projection).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..model import CITYSCAPES_CLASSES, DEFAULT_EVAL_LABELS, PixOODModel
from ..models.preprocess import normalize
from ..scorers.base import Scorer
from .backbone import InternImage, InternImageConfig
from .upernet import UperNetHead

STRIDE = 32  # the coarsest level's stride: network sizes are multiples of it
FEATURE_CHOICES = ("head", "stages")


def network_size(height: Any, width: Any, long_side: int = 0) -> tuple[Any, Any]:
    """(h, w) multiples of 32 keeping the aspect ratio; ``long_side`` 0 = the image's own longest
    side floored to a multiple of 32 (ints or symbolic sizes; each side at least 32)."""
    if long_side < 0 or long_side % STRIDE:
        raise ValueError(f"network_long_side must be 0 or a multiple of {STRIDE}: {long_side}")
    longest = torch.sym_max(height, width)
    target = torch.sym_max((longest // STRIDE) * STRIDE, STRIDE) if long_side == 0 else long_side
    h = torch.sym_max(((height * target) // (STRIDE * longest)) * STRIDE, STRIDE)
    w = torch.sym_max(((width * target) // (STRIDE * longest)) * STRIDE, STRIDE)
    return h, w


class InternImageModel(PixOODModel):
    """uint8 RGB [1,H,W,3] -> the model-file outputs, InternImage + UperNet inside."""

    grid_stride = 4  # input pixels per logit-grid cell (UperNet predicts at 1/4)

    def __init__(
        self,
        backbone: InternImage,
        decoder: UperNetHead,
        scorer: Scorer,
        class_names: Sequence[str] = CITYSCAPES_CLASSES,
        palette: Sequence[Sequence[int]] | None = None,
        eval_labels: Sequence[int] | None = DEFAULT_EVAL_LABELS,
        network_long_side: int = 0,
        antialias: bool = True,
        scorer_features: str = "head",
    ):
        if scorer_features not in FEATURE_CHOICES:
            raise ValueError(f"scorer_features must be one of {FEATURE_CHOICES}: {scorer_features}")
        if network_long_side % STRIDE:
            raise ValueError(f"network_long_side must be a multiple of {STRIDE}")
        super().__init__(
            backbone,  # type: ignore[arg-type]
            decoder,  # type: ignore[arg-type]
            scorer,
            class_names=class_names,
            palette=palette,
            eval_labels=eval_labels,
            network_long_side=network_long_side,
            antialias=antialias,
        )
        self.scorer_features = scorer_features

    @property
    def feature_dim(self) -> int:
        """Channels of the scorer features (``last_block``)."""
        if self.scorer_features == "head":
            return self.decoder.channels
        return sum(self.backbone.out_channels)

    def features_and_logits(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised image [B,3,h,w] -> (scorer features, logits), both on the 1/4 grid."""
        pyramid = self.backbone(image)
        fused = self.decoder.fused(pyramid)
        logits = self.decoder.conv_seg(fused)
        if self.scorer_features == "head":
            return fused, logits
        size = pyramid[0].shape[2:]
        stages = [pyramid[0]] + [
            F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in pyramid[1:]
        ]
        return torch.cat(stages, dim=1), logits

    def last_block(self, features: torch.Tensor) -> torch.Tensor:
        """The features are already the scorer's (see the module docstring)."""
        return features

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [B,H,W,3] -> normalised float at a network size of multiples of 32."""
        x = image.permute(0, 3, 1, 2).to(torch.float32)
        h, w = network_size(image.shape[1], image.shape[2], self.network_long_side)
        x = F.interpolate(
            x, size=(h, w), mode="bilinear", align_corners=False, antialias=self.antialias
        )
        return normalize(x / 255.0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("eval_scale_factor")
        config["backbone"] = self.backbone.config.to_dict()
        return {"family": "internimage", **config, "scorer_features": self.scorer_features}


def build_internimage_model(config: dict[str, Any]) -> InternImageModel:
    """Module with the structure of ``config`` (``get_config`` output), random weights."""
    from ..scorers import build_scorer

    return InternImageModel(
        InternImage(InternImageConfig.from_dict(config["backbone"])),
        UperNetHead.from_config(config["decoder"]),
        build_scorer(config["scorer"]),
        class_names=config["class_names"],
        palette=config.get("palette"),
        eval_labels=config.get("eval_labels", DEFAULT_EVAL_LABELS),
        network_long_side=int(config.get("network_long_side", 0)),
        antialias=bool(config.get("antialias", True)),
        scorer_features=str(config.get("scorer_features", "head")),
    )


def tiny_internimage_model(
    scorer: Scorer | None = None,
    num_classes: int = 19,
    seed: int = 0,
    preset: str = "tiny",
    head_channels: int = 16,
    **options: Any,
) -> InternImageModel:
    """A randomly initialised few-kB InternImage + UperNet model for tests (same code path)."""
    from ..scorers.baselines import MSPScorer

    torch.manual_seed(seed)
    backbone = InternImage(InternImageConfig.from_dict({"preset": preset}))
    decoder = UperNetHead(backbone.out_channels, num_classes, channels=head_channels)
    names = CITYSCAPES_CLASSES if num_classes == 19 else [f"class{i}" for i in range(num_classes)]
    model = InternImageModel(backbone, decoder, scorer or MSPScorer(), class_names=names, **options)
    return model.eval()
