"""Inference settings chosen at export time instead of at training time (`pixood-export
--eval-scale-factor`, `--network-long-side`).

Both only change how the trained module is run, never its weights: the test-time upsampling of
features and logits before scoring (the published ``eval_scale_factor``; the authors evaluated at
7) and the network input size (0 = the image's own size floored to the patch grid, as the
published inference does). The value is set on the module and in the configuration the metadata
and config hash are written from, so the file says what it computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from pixood_ros.cli import UserError

# module attribute = model_config.json key = option name with dashes
OVERRIDABLE = {"eval_scale_factor": 1, "network_long_side": 0}  # name -> smallest value


def apply_overrides(
    model: torch.nn.Module, model_config: Mapping[str, Any], **values: int | None
) -> dict[str, Any]:
    """Set the given (non-None) settings on ``model``; return the configuration with them.

    Raises UserError naming the option when the model rejects a value (e.g. a network size
    that is not a multiple of its patch size).
    """
    config = dict(model_config)
    for name, value in values.items():
        if name not in OVERRIDABLE:
            raise ValueError(f"not an export-time setting: {name}")
        if value is None:
            continue
        if value < OVERRIDABLE[name]:
            option = "--" + name.replace("_", "-")
            raise UserError(f"{option} must be >= {OVERRIDABLE[name]}, got {value}")
        setattr(model, name, int(value))
        config[name] = int(value)
    _check_runs(model, values)
    return config


def _check_runs(model: torch.nn.Module, values: Mapping[str, int | None]) -> None:
    """Preprocess a tiny image: the model's own size rules judge the network size."""
    if values.get("network_long_side") is None:
        return
    try:
        model.preprocess(torch.zeros((1, 8, 8, 3), dtype=torch.uint8))
    except ValueError as exc:
        raise UserError(f"--network-long-side {values['network_long_side']}: {exc}") from None
