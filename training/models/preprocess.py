"""Image -> network input, inside the exported graph (docs/method.md §1, eval mode).

The network size keeps the aspect ratio: the longest side becomes ``long_side`` (a multiple of 14;
0 = the image's own longest side rounded down to a multiple of 14, the official test-time rule) and
the other side is floored to a multiple of 14. It is computed with integer arithmetic on the
(possibly symbolic) image sizes, so the same code runs eagerly and in a dynamic-shape ONNX export;
integer floor division is the exact value of the official float formula (which can be one patch
off from rounding on exact boundaries).

Resize: bilinear, ``align_corners=False``. The official training transform uses an antialiased
resize; ``antialias=True`` reproduces it and exports (ONNX ``Resize`` with ``antialias=1``, opset
18+). ``antialias=False`` is plain bilinear (cheaper, and the only choice for runtimes without
antialiased Resize); it differs from the training resize only where the image is shrunk by a lot.
Normalisation (ImageNet mean/std) is applied after the resize: both are linear per channel with
weights summing to one, so the order does not change the result.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

PATCH_SIZE = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def network_input_size(height: Any, width: Any, long_side: int = 0) -> tuple[Any, Any]:
    """(h, w) network size, multiples of 14, for an image of height x width (ints or SymInts).

    ``long_side`` 0 = native resolution (longest side floored to a multiple of 14); otherwise it
    must be a positive multiple of 14. Each side is at least 14.
    """
    if long_side < 0 or long_side % PATCH_SIZE:
        raise ValueError(f"network_long_side must be 0 or a multiple of {PATCH_SIZE}: {long_side}")
    longest = torch.sym_max(height, width)
    if long_side == 0:
        target = (longest // PATCH_SIZE) * PATCH_SIZE
        target = torch.sym_max(target, PATCH_SIZE)
    else:
        target = long_side
    h = torch.sym_max(((height * target) // (PATCH_SIZE * longest)) * PATCH_SIZE, PATCH_SIZE)
    w = torch.sym_max(((width * target) // (PATCH_SIZE * longest)) * PATCH_SIZE, PATCH_SIZE)
    return h, w


def normalize(image: torch.Tensor) -> torch.Tensor:
    """float [B,3,h,w] in [0,1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image - mean) / std


def preprocess_image(
    image: torch.Tensor, long_side: int = 0, antialias: bool = True
) -> torch.Tensor:
    """uint8 RGB [B,H,W,3] -> normalised float [B,3,h,w] at the network size."""
    # The resize is linear with weights summing to one, so scaling to [0, 1] after it gives the
    # same values (to float rounding) on the small network-size image instead of the full frame.
    x = image.permute(0, 3, 1, 2).to(torch.float32)
    h, w = network_input_size(image.shape[1], image.shape[2], long_side)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
    return normalize(x / 255.0)
