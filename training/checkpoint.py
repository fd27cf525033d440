"""Checkpoint directory of a trained end-to-end model (docs/architecture.md §7.2).

``CKPT_DIR/model_config.json`` describes the structure (backbone arch/size/blocks, decoder dims,
classes, palette, eval labels, network size, scorer config) and ``CKPT_DIR/model.safetensors``
holds the full state dict, backbone included, so export needs nothing else. Loading rebuilds the
empty module from the JSON and fills it strictly: any missing, extra or mis-shaped tensor is an
error naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pixood_ros import durable
from pixood_ros.cli import UserError

from .documents import read_document
from .families import build_model
from .model import PixOODModel
from .state_dict import state_dict_mismatch

CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint directory is missing files or its files are corrupt or inconsistent."""


def save_model(model: PixOODModel, ckpt_dir: str | Path) -> Path:
    """Write model_config.json + model.safetensors into ckpt_dir (created if needed), each
    complete or absent (``pixood_ros.durable``)."""
    from safetensors.torch import save_file

    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    config = {"format_version": FORMAT_VERSION, **model.get_config()}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with durable.replacing(ckpt_dir / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format_version": "1"})
    durable.write_text(ckpt_dir / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return ckpt_dir


def read_model_config(ckpt_dir: str | Path) -> dict[str, Any]:
    """The parsed model_config.json of a checkpoint directory."""
    path = Path(ckpt_dir) / CONFIG_FILE
    config = read_document(path, json.loads, "checkpoint config", CheckpointError)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported format_version {version!r}")
    return config


def load_model(ckpt_dir: str | Path, map_location: str | torch.device = "cpu") -> PixOODModel:
    """Rebuild the end-to-end module from a checkpoint directory (eval mode)."""
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    config_path = ckpt_dir / CONFIG_FILE
    config = read_model_config(ckpt_dir)
    try:
        model = build_model({k: v for k, v in config.items() if k != "format_version"})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid model description in {config_path}: {exc}") from exc
    weights_path = ckpt_dir / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights_path}")
    try:
        state = load_file(str(weights_path), device=str(map_location))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"cannot read {weights_path}: {exc}") from exc
    problems = state_dict_mismatch(state, model.state_dict())
    if problems:
        raise CheckpointError(
            f"{weights_path} does not match {config_path}: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)
    model.backbone.freeze()
    return model.to(map_location).eval()
