"""Published InternImage UperNet mmsegmentation checkpoints -> our end-to-end model.

A published file (e.g. ``upernet_internimage_xl_512x1024_160k_mapillary2cityscapes.pth``) is a
pickle of ``{"meta": {...}, "state_dict": {"backbone.*", "decode_head.*", "auxiliary_head.*"}}``
(some releases hold the state dict at the top level). It is opened with the restricted reader of
training/convert_official (no ``torch.load``, nothing in the file runs). Everything that shapes
the model is read from the tensors: stem width, blocks per level, DCNv3 groups (3x3 kernels:
mask outputs / 9), MLP ratio, layer scale (``gamma1`` present), pre- or post-norm (level norms
present or not), depthwise kernel, UperNet widths and class count. Only ``offset_scale`` is not in
the weights: it comes from the published preset of the same width (T/S/B 1.0, L/XL 2.0) or the
caller. Our modules carry the published names, so the weights load by renaming ``decode_head.``
to ``decoder.``; the training-only ``auxiliary_head`` is dropped. Any tensor left over or missing
is a ``MMSegFormatError`` (one line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixood_ros.cli import UserError

from ..convert_official.archive import load_official_checkpoint
from ..convert_official.unpickler import UnsafePickleError
from ..model import CITYSCAPES_CLASSES
from ..state_dict import state_dict_mismatch
from .backbone import PRESETS, InternImageConfig
from .upernet import POOL_SCALES

KERNEL_POINTS = 9  # InternImage's DCNv3 always samples 3x3 points
RENAMES = {"backbone.": "backbone.", "decode_head.": "decoder."}
DROPPED = "auxiliary_head."


class MMSegFormatError(UserError, ValueError):
    """The file is not a (supported) InternImage UperNet mmsegmentation checkpoint."""


@dataclass
class PublishedCheckpoint:
    """The tensors of a published checkpoint under our names, and what was read from it."""

    state: dict[str, torch.Tensor]
    backbone: InternImageConfig
    decoder: dict[str, Any]
    class_names: list[str]
    palette: list[list[int]] | None
    dropped: int  # auxiliary-head tensors left out


def _tensor(state: dict[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise MMSegFormatError(f"{path}: no tensor {key!r}; not an InternImage UperNet checkpoint")
    return state[key]


def _count(state: dict[str, Any], pattern: str) -> int:
    found = {m.group(1) for k in state if (m := re.match(pattern, k))}
    return len(found)


def infer_backbone(
    state: dict[str, torch.Tensor], path: Path, offset_scale: float | None = None
) -> InternImageConfig:
    """The backbone configuration the ``backbone.*`` tensors (our names) were trained with."""
    channels = int(_tensor(state, "backbone.patch_embed.conv2.weight", path).shape[0])
    depths, groups = [], []
    for level in range(4):
        prefix = f"backbone.levels.{level}.blocks"
        depths.append(_count(state, rf"{re.escape(prefix)}\.(\d+)\."))
        mask = _tensor(state, f"{prefix}.0.dcn.mask.weight", path).shape[0]
        if mask % KERNEL_POINTS:
            raise MMSegFormatError(f"{path}: level {level} mask has {mask} outputs, not 9 x groups")
        groups.append(mask // KERNEL_POINTS)
    hidden = _tensor(state, "backbone.levels.0.blocks.0.mlp.fc1.weight", path).shape[0]
    dw = int(_tensor(state, "backbone.levels.0.blocks.0.dcn.dw_conv.0.weight", path).shape[-1])
    if offset_scale is None:
        known = {p.channels: p.offset_scale for name, p in PRESETS.items() if len(name) <= 2}
        if channels not in known:
            raise MMSegFormatError(
                f"{path}: width {channels} matches no published preset (T/S/B/L/XL); "
                "give --offset-scale"
            )
        offset_scale = known[channels]
    try:
        return InternImageConfig(
            channels=channels,
            depths=tuple(depths),
            groups=tuple(groups),
            mlp_ratio=hidden / channels,
            layer_scale=1.0 if "backbone.levels.0.blocks.0.gamma1" in state else None,
            offset_scale=float(offset_scale),
            post_norm="backbone.levels.0.norm.0.weight" not in state,
            dw_kernel_size=None if dw == 3 else dw,
        )
    except ValueError as exc:
        raise MMSegFormatError(f"{path}: {exc}") from None


def infer_decoder(state: dict[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """UperNet widths and class count from the ``decoder.*`` tensors."""
    classifier = _tensor(state, "decoder.conv_seg.weight", path)
    lateral = [
        int(_tensor(state, f"decoder.lateral_convs.{i}.conv.weight", path).shape[1])
        for i in range(3)
    ]
    last = int(_tensor(state, "decoder.psp_modules.0.1.conv.weight", path).shape[1])
    pools = _count(state, r"decoder\.psp_modules\.(\d+)\.")
    if pools != len(POOL_SCALES):
        raise MMSegFormatError(f"{path}: {pools} pyramid pooling branches, expected 4 (1,2,3,6)")
    return {
        "in_channels": [*lateral, last],
        "num_classes": int(classifier.shape[0]),
        "channels": int(classifier.shape[1]),
        "pool_scales": list(POOL_SCALES),
    }


def _meta_names(meta: Any, num_classes: int) -> tuple[list[str], list[list[int]] | None]:
    """Class names and palette from ``meta`` when they fit the class count."""
    meta = meta if isinstance(meta, dict) else {}
    names, palette = meta.get("CLASSES"), meta.get("PALETTE")
    if not (isinstance(names, (list, tuple)) and len(names) == num_classes):
        generic = [f"class{i}" for i in range(num_classes)]
        names = CITYSCAPES_CLASSES if num_classes == 19 else generic
    ok = isinstance(palette, (list, tuple)) and len(palette) == num_classes
    colours = [[int(v) for v in c] for c in palette] if ok else None  # type: ignore[union-attr]
    return [str(n) for n in names], colours


def read_published_checkpoint(
    path: str | Path, offset_scale: float | None = None
) -> PublishedCheckpoint:
    """Open and interpret a published checkpoint (tensors only, no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise MMSegFormatError(f"checkpoint not found: {path}")
    try:
        loaded = load_official_checkpoint(path)
    except UnsafePickleError as exc:
        raise MMSegFormatError(f"{path}: refused: {exc}") from None
    except Exception as exc:  # a damaged archive raises zipfile / pickle / EOF errors
        raise MMSegFormatError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from None
    if not isinstance(loaded, dict):
        raise MMSegFormatError(f"{path}: holds a {type(loaded).__name__}, not a checkpoint dict")
    source = loaded.get("state_dict", loaded)
    state, dropped = {}, 0
    for key, value in source.items() if isinstance(source, dict) else ():
        if not isinstance(value, torch.Tensor):
            continue
        prefix = next((p for p in RENAMES if key.startswith(p)), None)
        if prefix is not None:
            state[RENAMES[prefix] + key[len(prefix) :]] = value.detach().float()
        elif key.startswith(DROPPED):
            dropped += 1
    if not state:
        raise MMSegFormatError(f"{path}: no backbone.* / decode_head.* tensors")
    for key in [k for k in state if k.endswith("num_batches_tracked")]:
        state[key] = state[key].long()
    decoder = infer_decoder(state, path)
    names, palette = _meta_names(loaded.get("meta"), decoder["num_classes"])
    return PublishedCheckpoint(
        state, infer_backbone(state, path, offset_scale), decoder, names, palette, dropped
    )


def check_fits(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path):
    """One-line error when the file's tensors do not fill the inferred model exactly."""
    problems = state_dict_mismatch(state, expected)
    if problems:
        raise MMSegFormatError(f"{path} does not fit the inferred model: " + "; ".join(problems))
