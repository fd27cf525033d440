"""The model families a checkpoint can hold, built from its ``model_config.json``.

``family`` "dinov2" (absent in checkpoints written before the second family existed) is PixOOD's
DINOv2 + MLP decoder (model.py); "internimage" is InternImage + UperNet (internimage/). Both are
``PixOODModel``s, so export, parity and the runtime treat them alike (docs/architecture.md §7.2).
"""

from __future__ import annotations

from typing import Any

from .model import PixOODModel, build_pixood_model


def build_model(config: dict[str, Any]) -> PixOODModel:
    """Module with the structure described by ``config``, random weights (fill it with
    ``load_state_dict``, as checkpoint.load_model does)."""
    if config.get("family", "dinov2") == "internimage":
        from .internimage.model import build_internimage_model

        return build_internimage_model(config)
    return build_pixood_model(config)
