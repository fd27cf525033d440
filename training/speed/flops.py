"""Matrix FLOPs of a PixOOD model per frame, counted from its layer shapes, and the dense fp16
tensor peak of known GPUs: together the FLOP bound a GPU timing is measured against.

Counted analytically (2 FLOPs per multiply-add) rather than with torch.utils.flop_counter, whose
CPU attention kernels are not counted: patch embedding, every Linear of the blocks the backbone
runs, attention (Q·Kᵀ and A·V, 4·N²·D per block) and the decoder's 1x1 convolutions. Resizing,
norms, softmax and the scorer are left out: they are memory-bound, not FLOP-bound.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pixood_training.models.preprocess import network_input_size

PATCH = 14
# Dense (no sparsity) fp16 tensor-core peaks from the vendors' data sheets, TFLOP/s; the first
# name fragment found in torch.cuda.get_device_name() wins, so the specific ones come first.
PEAK_FP16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    ("H200", 989.5, "H200 SXM, dense fp16 tensor"),
    ("H100 PCIe", 756.0, "H100 PCIe, dense fp16 tensor"),
    ("H100 NVL", 835.0, "H100 NVL, dense fp16 tensor"),
    ("H100", 989.5, "H100 SXM, dense fp16 tensor"),
    ("A100", 312.0, "A100, dense fp16 tensor"),
    ("L40S", 362.0, "L40S, dense fp16 tensor"),
    ("L4", 121.0, "L4, dense fp16 tensor"),
    ("Orin", 42.5, "Jetson AGX Orin 64GB GPU, dense fp16 tensor"),
)


def peak_tflops(device_name: str, override: float | None = None) -> tuple[float | None, str]:
    """(peak TFLOP/s, where the figure comes from) for the device, None when unknown."""
    if override is not None:
        return override, "--peak-tflops"
    for fragment, value, what in PEAK_FP16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return value, f"table: {what}"
    return None, f"unknown GPU {device_name!r}: give --peak-tflops"


def _linear_flops(module: nn.Module, rows: int) -> int:
    return sum(
        2 * rows * layer.in_features * layer.out_features
        for layer in module.modules()
        if isinstance(layer, nn.Linear)
    )


def model_flops(
    model: Any, height: int, width: int, long_side: int | None = None
) -> dict[str, Any]:
    """Matrix FLOPs of one `height` x `width` frame through backbone and decoder, at the model's
    network long side or at `long_side`."""
    backbone = model.backbone
    side = model.network_long_side if long_side is None else long_side
    net_h, net_w = network_input_size(height, width, side)
    grid_h, grid_w = net_h // PATCH, net_w // PATCH
    patches = grid_h * grid_w
    prefix = 1 + backbone.config.num_register_tokens
    tokens = patches + prefix
    dim = backbone.embed_dim
    blocks = list(backbone.vit.blocks)[: max(backbone.blocks) + 1]
    linear = sum(_linear_flops(block, tokens) for block in blocks)
    attention = len(blocks) * 4 * tokens * tokens * dim
    patch_embed = 2 * patches * 3 * PATCH * PATCH * dim
    decoder = sum(
        2 * patches * layer.in_channels * layer.out_channels
        for layer in model.decoder.modules()
        if isinstance(layer, nn.Conv2d)
    )
    total = linear + attention + patch_embed + decoder
    return {
        "network_size": [int(net_h), int(net_w)],
        "tokens": int(tokens),
        "patch_embed": patch_embed,
        "block_linear": linear,
        "attention": attention,
        "decoder": decoder,
        "total": total,
        "attention_share": attention / total,
    }
