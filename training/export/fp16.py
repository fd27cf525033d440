"""Half-precision export: the backbone (nearly all FLOPs and weight bytes) runs in fp16, the
decoder, prototype distances and decision stage stay fp32.

Why not convert the finished ONNX graph: graph-level float16 converters trip over the dynamo
exporter's typed value_info and mixed-dtype shape arithmetic, and docs/method.md §5.6(a) wants the
distance expansion in fp32 anyway (cancellation). Casting at the backbone boundary in PyTorch
gives an exact, exportable fp16 graph whose I/O dtypes are unchanged (uint8 in, float32 out).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class HalfPrecisionBackbone(nn.Module):
    """Wraps a backbone: casts its input to fp16 and its features back to fp32.

    Attribute look-ups fall through to the wrapped backbone (embed_dim, out_channels, config),
    so the end-to-end module uses it unchanged.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.inner = backbone.half()

    def forward(self, image: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        features = self.inner(image.to(torch.float16))
        if isinstance(features, (list, tuple)):  # multi-scale backbones (InternImage)
            return [f.to(torch.float32) for f in features]
        return features.to(torch.float32)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)


def with_half_precision_backbone(model: nn.Module) -> nn.Module:
    """A copy of the end-to-end module whose `backbone` runs in fp16 (the original is untouched,
    so parity is checked against the fp32 model)."""
    if not hasattr(model, "backbone"):
        raise ValueError("fp16 export needs a model with a `backbone` submodule")
    half = copy.deepcopy(model)
    half.backbone = HalfPrecisionBackbone(half.backbone)
    return half.eval()
