"""Parse and validate the metadata_props of a PixOOD model file (docs/architecture.md §3).

Everything the runtime needs to know about a model (class names, colours, which classes define
"anomalous") travels inside the ONNX file, so a node never hard-codes it and can never disagree
with the model it runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pixood_ros.anomaly_modes import supported_modes
from pixood_ros.engine.errors import ModelError

SUPPORTED_FORMAT_VERSIONS = ("1",)
REQUIRED_KEYS = (
    "pixood_format_version",
    "class_names",
    "palette",
    "eval_labels",
    "network_long_side",
    "scorer",
    "config_hash",
)


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself. `anomaly_modes`: the modes of
    `pixood_ros.anomaly_modes` it serves (the unknown ones need its `unknown_score` output)."""

    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    eval_labels: tuple[int, ...]
    scorer: str
    network_long_side: int
    format_version: str
    config_hash: str
    anomaly_modes: tuple[str, ...] = supported_modes(has_unknown_score=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _json_value(meta: Mapping[str, str], key: str, where: str):
    try:
        return json.loads(meta[key])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: metadata '{key}' is not valid JSON ({exc})") from None


def parse_model_info(
    meta: Mapping[str, str], where: str, has_unknown_score: bool = False
) -> ModelInfo:
    """Validate the metadata dict of a model; `where` (the file name) prefixes every error.
    `has_unknown_score`: the graph has the optional `unknown_score` output."""
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ModelError(
            f"{where}: not a PixOOD model file, metadata lacks {', '.join(missing)} "
            "(export it with pixood-export)"
        )
    version = meta["pixood_format_version"].strip()
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelError(
            f"{where}: model format version {version!r} is not supported by this pixood_ros "
            f"(supported: {', '.join(SUPPORTED_FORMAT_VERSIONS)}); re-export the model or "
            "update pixood_ros"
        )

    class_names = _json_value(meta, "class_names", where)
    if (
        not isinstance(class_names, list)
        or not class_names
        or not all(isinstance(n, str) for n in class_names)
    ):
        raise ModelError(
            f"{where}: metadata 'class_names' must be a non-empty JSON list of strings"
        )
    num_classes = len(class_names)
    if num_classes > 256:
        raise ModelError(f"{where}: {num_classes} classes do not fit the uint8 semantic output")

    palette = _json_value(meta, "palette", where)
    if not isinstance(palette, list) or not all(
        isinstance(c, list)
        and len(c) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)
        for c in palette
    ):
        raise ModelError(f"{where}: metadata 'palette' must be a JSON list of [r, g, b] in 0..255")
    if len(palette) < num_classes:
        raise ModelError(
            f"{where}: metadata 'palette' has {len(palette)} colours for {num_classes} classes"
        )

    eval_labels = _json_value(meta, "eval_labels", where)
    if not isinstance(eval_labels, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < num_classes for c in eval_labels
    ):
        raise ModelError(
            f"{where}: metadata 'eval_labels' must be a JSON list of class ids "
            f"in 0..{num_classes - 1}"
        )

    try:
        long_side = int(meta["network_long_side"])
    except ValueError:
        long_side = -1
    if long_side < 0:  # 0 = the network runs at the image's own size
        raise ModelError(
            f"{where}: metadata 'network_long_side' must be an integer >= 0, "
            f"got {meta['network_long_side']!r}"
        )

    scorer = meta["scorer"].strip()
    if not scorer:
        raise ModelError(f"{where}: metadata 'scorer' is empty")

    return ModelInfo(
        class_names=tuple(class_names),
        palette=tuple(tuple(c) for c in palette[:num_classes]),
        eval_labels=tuple(eval_labels),
        scorer=scorer,
        network_long_side=long_side,
        format_version=version,
        config_hash=meta["config_hash"],
        anomaly_modes=supported_modes(has_unknown_score),
    )
