"""The metadata_props written into every model file (docs/architecture.md §3).

The runtime reads class names, colours and eval labels from here, so they are taken from the
checkpoint's model_config.json (what training wrote) and never re-typed by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

FORMAT_VERSION = "1"
DEFAULT_EVAL_LABELS = (0, 1)  # road + sidewalk: the road-obstacle mode of docs/method.md §5.4


def config_hash(model_config: Mapping[str, Any]) -> str:
    """Short, stable hash of the model configuration (key order does not matter)."""
    canonical = json.dumps(model_config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _scorer_name(scorer: Any) -> str:
    if isinstance(scorer, Mapping):
        return str(scorer.get("name", ""))
    return str(scorer or "")


def model_metadata(model_config: Mapping[str, Any], model: Any = None) -> dict[str, str]:
    """metadata_props (all strings) for a checkpoint's model_config.json.

    Values missing from the config are taken from attributes of the loaded module when it has
    them (class_names, palette, eval_labels, network_long_side, scorer); a value found nowhere is
    an error, because a model file without it would be rejected by the runtime.
    """

    def pick(key: str, default: Any = None) -> Any:
        if key in model_config and model_config[key] is not None:
            return model_config[key]
        if model is not None and getattr(model, key, None) is not None:
            return getattr(model, key)
        if default is not None:
            return default
        raise ValueError(f"model_config.json has no '{key}' and the model does not say either")

    class_names = [str(n) for n in pick("class_names")]
    palette = [[int(v) for v in colour] for colour in pick("palette")]
    if len(palette) < len(class_names):
        raise ValueError(f"palette has {len(palette)} colours for {len(class_names)} classes")
    eval_labels = [int(c) for c in pick("eval_labels", list(DEFAULT_EVAL_LABELS))]
    scorer = _scorer_name(model_config.get("scorer"))
    if not scorer and model is not None:
        scorer = _scorer_name(getattr(getattr(model, "scorer", None), "name", None))
    if not scorer:
        raise ValueError("model_config.json does not name the scorer")
    return {
        "pixood_format_version": FORMAT_VERSION,
        "class_names": json.dumps(class_names),
        "palette": json.dumps(palette),
        "eval_labels": json.dumps(eval_labels),
        "network_long_side": str(int(pick("network_long_side"))),
        "scorer": scorer,
        "config_hash": config_hash(model_config),
    }
