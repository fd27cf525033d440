"""Training configuration: YAML file + ``key.path=value`` overrides, checked up front.

A config is a plain nested dict (it is written back as ``config.yaml`` into the experiment
directory and hashed to decide whether a finished stage is still up to date). Defaults below are
the paper's values (METHOD.md §3-§5); the YAML files in ``config/train/`` override them.
Mistakes (unknown keys, wrong types, bad values) raise ``ConfigError`` with one line naming the
key, so the CLI can exit 2 instead of failing an hour into a run.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A user mistake in a config file or override."""


DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "progress": True,
    "model": {
        # BackboneConfig fields (training/models/backbone.py).
        "backbone": {"arch": "vit_large_patch14_dinov2", "blocks": [5, 11, 17, 23]},
        # Local DINOv2 weights file (official or timm format); null = random init (tests/demo).
        "backbone_weights": None,
        "decoder": {"hidden_dim": 4096},
        "class_names": "cityscapes",  # "cityscapes" or an explicit list
        "palette": "cityscapes",
        "eval_labels": [0, 1],  # road + sidewalk (METHOD.md §5.4 default)
        # LayerScale gain of a randomly initialised backbone: null = timm's DINOv2 init (1e-5,
        # blocks start near identity); 1.0 = what the DINOv2 hub code builds. Ignored with weights.
        "random_init_layerscale": None,
    },
    "data": {
        "kind": "cityscapes",  # cityscapes | synth | folder
        "root": None,
        "splits": {"train": "train", "val": "val"},
        "label_kind": "auto",
        "num_classes": 19,
        "long_side": 1792,
        "size": None,  # [H, W], multiples of 14; overrides long_side
        "hflip": False,  # the published code intended p=0.5 flips (METHOD.md §1.4)
        "num_workers": 2,
    },
    # Stand-in for DINOv2's self-supervised pretraining, for the synthetic demo ONLY (no DINOv2
    # weights can be downloaded where it is built): train the small random ViT on the train split
    # (segmentation CE + optional patch-pixel reconstruction), then freeze it for stages 1-3.
    # Must stay off with real DINOv2 weights (model.backbone_weights); training/train/pretrain.py.
    "pretrain": {
        "enabled": False,
        "epochs": 10,
        "batch_size": 8,
        "lr": 1.0e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 1,
        "crop": None,  # side of random patch-aligned training crops (null = whole images)
        "reconstruction_weight": 0.0,
    },
    "stage1": {
        "epochs": 30,
        "batch_size": 4,
        "lr": 1.0e-4,
        "weight_decay": 5.0e-4,
        "val_batch_size": 1,
        "val_every": 1,
        "max_val_images": None,
    },
    "condense": {
        "cache_batch_size": 4,
        "patch_threshold": 0.9,
        "K": 1000,
        "epochs": 100,
        "lr": 0.1,
        "init_per_class": 10000,
        "init_tau": 10.0,
        "reset_threshold": 0.5,
        "reinit": True,
    },
    "decide": {
        "scorers": ["pixood", "msp", "maxlogit", "energy", "kmeans"],
        "kmeans": {"clusters_per_class": 16, "iterations": 20, "max_samples_per_class": 20000},
        "grid_size": 2000,  # Neyman-Pearson grid points per axis (METHOD.md §5.3)
        "eval_split": "ood",  # data.splits entry used for the anomaly metrics (if present)
        # Pixels scored: "all" (every non-void pixel, SMIYC anomaly track) or "eval_labels"
        # (only pixels of the eval-label classes + anomalies, SMIYC obstacle-track protocol).
        "eval_region": "all",
        "max_eval_images": None,
    },
}

# Sections whose keys are forwarded to another team's code and therefore not checked here.
OPEN_SECTIONS = {("model", "backbone"), ("model", "decoder"), ("data", "splits"), ("condense",)}


def _merge(base: dict[str, Any], update: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    for key, value in update.items():
        here = (*path, str(key))
        dotted = ".".join(here)
        open_section = any(here[: len(s)] == s for s in OPEN_SECTIONS if len(here) > len(s))
        if key not in base and not open_section:
            raise ConfigError(f"unknown config key {dotted!r}")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, here)
        else:
            base[key] = value


def _set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    _merge(config, nested)


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        return key.strip(), yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: cannot parse value ({exc})") from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults <- YAML file <- overrides, then validated."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot read config {path}: {first}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
        _merge(config, loaded)
    for text in overrides or []:
        _set_path(config, *parse_override(text))
    validate(config)
    return config


def _expect(
    config: dict[str, Any], dotted: str, kind: type | tuple[type, ...], check=None, what: str = ""
) -> None:
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(f"{dotted} must be {what or kind}, got {value!r}")
    if not isinstance(value, kind) or (check is not None and not check(value)):
        raise ConfigError(f"{dotted} must be {what or kind}, got {value!r}")


def validate(config: dict[str, Any]) -> None:
    pos_int = (int, lambda v: v > 0, "a positive integer")
    _expect(config, "seed", int, None, "an integer")
    _expect(config, "device", str, None, "a device string (auto, cpu, cuda)")
    for key in ("stage1.epochs", "stage1.batch_size", "stage1.val_batch_size", "stage1.val_every"):
        _expect(config, key, *pos_int)
    for key in ("condense.cache_batch_size", "data.num_classes"):
        _expect(config, key, *pos_int)
    _expect(config, "data.num_workers", int, lambda v: v >= 0, "a non-negative integer")
    for key in ("stage1.lr", "stage1.weight_decay"):
        _expect(config, key, (int, float), lambda v: v >= 0, "a non-negative number")
    pre = config["pretrain"]
    _expect(config, "pretrain.enabled", bool, None, "true or false")
    for key in ("pretrain.epochs", "pretrain.batch_size"):
        _expect(config, key, *pos_int)
    if pre["crop"] is not None:
        _expect(config, "pretrain.crop", int, lambda v: v > 0 and v % 14 == 0,
                "null or a positive multiple of 14")  # fmt: skip
    _expect(config, "pretrain.warmup_epochs", int, lambda v: v >= 0, "a non-negative integer")
    for key in ("pretrain.lr", "pretrain.weight_decay", "pretrain.reconstruction_weight"):
        _expect(config, key, (int, float), lambda v: v >= 0, "a non-negative number")
    if pre["enabled"] and config["model"]["backbone_weights"] is not None:
        raise ConfigError(
            "pretrain.enabled is a stand-in for DINOv2 pretraining (demo only); it cannot be used "
            "with model.backbone_weights - set pretrain.enabled=false"
        )
    layerscale = config["model"]["random_init_layerscale"]
    if layerscale is not None and (
        isinstance(layerscale, bool) or not isinstance(layerscale, (int, float)) or layerscale <= 0
    ):
        raise ConfigError(
            f"model.random_init_layerscale must be null or a positive number, got {layerscale!r}"
        )
    _expect(config, "condense.patch_threshold", (int, float), lambda v: 0 < v <= 1, "in (0, 1]")
    data = config["data"]
    if data["kind"] not in ("cityscapes", "synth", "folder"):
        raise ConfigError(f"data.kind must be cityscapes, synth or folder, got {data['kind']!r}")
    if data["kind"] != "folder" and not data["root"]:
        raise ConfigError("data.root is not set (path of the data set)")
    if data["size"] is not None:
        size = data["size"]
        is_pair = isinstance(size, list) and len(size) == 2
        if not is_pair or not all(isinstance(s, int) for s in size):
            raise ConfigError(f"data.size must be [H, W], got {size!r}")
        if any(s <= 0 or s % 14 for s in size):
            raise ConfigError(f"data.size {size} must be positive multiples of 14")
    else:
        _expect(
            config,
            "data.long_side",
            int,
            lambda v: v > 0 and v % 14 == 0,
            "a positive multiple of 14",
        )
    for role in ("train", "val"):
        if role not in data["splits"]:
            raise ConfigError(f"data.splits.{role} is not set")
    scorers = config["decide"]["scorers"]
    known = {"pixood", "msp", "maxlogit", "energy", "kmeans"}
    if not isinstance(scorers, list) or not scorers or not set(scorers) <= known:
        raise ConfigError(f"decide.scorers must be a non-empty list out of {sorted(known)}")
    if config["decide"]["eval_region"] not in ("all", "eval_labels"):
        raise ConfigError("decide.eval_region must be 'all' or 'eval_labels'")
    _expect(config, "decide.grid_size", int, lambda v: v >= 10, "an integer >= 10")
    labels = config["model"]["eval_labels"]
    num_classes = data["num_classes"]
    if not isinstance(labels, list) or not all(
        isinstance(v, int) and 0 <= v < num_classes for v in labels
    ):
        raise ConfigError(f"model.eval_labels must be a list of class ids < {num_classes}")


def section_hash(config: dict[str, Any], keys: list[str]) -> str:
    """Hash of the named top-level sections (a stage is stale when the sections it depends on
    change)."""
    subset = {k: config.get(k) for k in keys}
    return hashlib.sha256(json.dumps(subset, sort_keys=True, default=str).encode()).hexdigest()


def dump_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
