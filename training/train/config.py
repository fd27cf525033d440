"""Training configuration: typed sections read from a YAML file + ``key.path=value`` overrides.

Every option is a field of a dataclass below, with its type and, where it has one, its rule; one
function (``_build``) checks a value against both and ``TrainConfig.check`` holds the rules that
span sections, so a mistake (unknown key, wrong type, bad value) raises ``ConfigError`` with one
line naming the key before anything runs. Defaults are the paper's values (docs/method.md §3-§5);
the YAML files in ``config/train/`` override them.

``TrainConfig.to_dict()`` is the nested dict the loader has always produced: it is written back as
``config.yaml`` into the experiment directory and hashed per stage (``section_hash``) to decide
whether a finished stage is still up to date, so it keeps the same keys and values (an unchanged
config keeps its hash). Sections forwarded to other code stay mappings: ``model.backbone``
(``BackboneConfig``), ``data.splits``; the ``condense`` section is flat in YAML and its trainer
options are checked against ``CondensationConfig``'s fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from pixood_ros.cli import UserError

from ..condensation import CondensationConfig
from ..documents import read_document
from ..scorers import SCORERS


class ConfigError(UserError, ValueError):
    """A user mistake in a config file or override."""


# --- rules: (check, what the value must be) -------------------------------------------------


@dataclass(frozen=True)
class Rule:
    check: typing.Callable[[Any], bool]
    what: str


POSITIVE = Rule(lambda v: v > 0, "a positive integer")
NON_NEGATIVE_INT = Rule(lambda v: v >= 0, "a non-negative integer")
NON_NEGATIVE = Rule(lambda v: v >= 0, "a non-negative number")
PATCH_MULTIPLE = Rule(lambda v: v > 0 and v % 14 == 0, "a positive multiple of 14")
OPTIONAL_PATCH_MULTIPLE = Rule(lambda v: v > 0 and v % 14 == 0, "null or a positive multiple of 14")
POSITIVE_NUMBER = Rule(lambda v: v > 0, "null or a positive number")


def option(
    default: Any = None,
    rule: Rule | None = None,
    *,
    factory: Any = None,
    written_when_set: bool = False,
) -> Any:
    """A config field with its default and optional value rule (checked only when not null).

    ``written_when_set``: an option added after configs were already hashed, whose default is
    what those configs meant; ``to_dict`` leaves it out at its default so their hash stays put.
    """
    meta: dict[str, Any] = {"rule": rule} if rule else {}
    if written_when_set:
        meta["written_when_set"] = True
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --- sections ------------------------------------------------------------------------------


@dataclass
class DecoderSection:
    hidden_dim: int | None = 4096


@dataclass
class ModelSection:
    # Model family: "dinov2" (PixOOD: DINOv2 + MLP decoder) or "internimage" (InternImage +
    # UperNet, training/internimage/); ``backbone`` holds that family's backbone options.
    family: Literal["dinov2", "internimage"] = option("dinov2", written_when_set=True)
    # BackboneConfig fields (training/models/backbone.py), checked there.
    backbone: dict[str, Any] = option(
        factory=lambda: {"arch": "vit_large_patch14_dinov2", "blocks": [5, 11, 17, 23]}
    )
    # Local DINOv2 weights file (official or timm format); null = random init (tests/demo).
    backbone_weights: str | None = None
    decoder: DecoderSection = option(factory=DecoderSection)
    class_names: str | list[str] = "cityscapes"  # "cityscapes" or an explicit list
    palette: str | list[list[int]] | None = "cityscapes"
    eval_labels: list[int] = option(factory=lambda: [0, 1])  # road + sidewalk (docs/method.md §5.4)
    # LayerScale gain of a randomly initialised backbone: null = timm's DINOv2 init (1e-5,
    # blocks start near identity); 1.0 = what the DINOv2 hub code builds. Ignored with weights.
    random_init_layerscale: float | None = option(None, POSITIVE_NUMBER)


@dataclass
class DataSection:
    kind: Literal["cityscapes", "synth", "folder"] = "cityscapes"
    root: str | None = None
    # role -> split name (cityscapes, synth) or {images, labels, ood} directories (folder)
    splits: dict[str, Any] = option(factory=lambda: {"train": "train", "val": "val"})
    label_kind: Literal["auto", "trainids", "labelids"] = "auto"
    num_classes: int = option(19, POSITIVE)
    long_side: int = option(1792, PATCH_MULTIPLE)
    size: list[int] | None = None  # [H, W], multiples of 14; overrides long_side
    hflip: bool = False  # the published code intended p=0.5 flips (docs/method.md §1.4)
    num_workers: int = option(2, NON_NEGATIVE_INT)


@dataclass
class PretrainSection:
    """Stand-in for DINOv2's self-supervised pretraining, for the synthetic demo ONLY (no DINOv2
    weights can be downloaded where it is built): train the small random ViT on the train split,
    then freeze it for stages 1-3. Never with real DINOv2 weights (training/train/pretrain.py)."""

    enabled: bool = False
    epochs: int = option(10, POSITIVE)
    batch_size: int = option(8, POSITIVE)
    lr: float = option(1.0e-3, NON_NEGATIVE)
    weight_decay: float = option(0.05, NON_NEGATIVE)
    warmup_epochs: int = option(1, NON_NEGATIVE_INT)
    crop: int | None = option(None, OPTIONAL_PATCH_MULTIPLE)  # side of random training crops
    reconstruction_weight: float = option(0.0, NON_NEGATIVE)


@dataclass
class Stage1Section:
    epochs: int = option(30, POSITIVE)
    batch_size: int = option(4, POSITIVE)
    lr: float = option(1.0e-4, NON_NEGATIVE)
    weight_decay: float = option(5.0e-4, NON_NEGATIVE)
    val_batch_size: int = option(1, POSITIVE)
    val_every: int = option(1, POSITIVE)
    max_val_images: int | None = option(None, NON_NEGATIVE_INT)  # null or 0 = all


# CondensationConfig options every training config lists (they are part of its hash).
# reinit_stop_epoch joined when its default changed from a fixed 90 to 0.9 x epochs (as
# published): listing it moves the condense hash, so a stage fitted the old way reruns.
_LISTED = ("K", "epochs", "lr", "init_per_class", "init_tau", "reset_threshold", "reinit")
_LISTED += ("reinit_stop_epoch",)


def _listed_trainer_options() -> dict[str, Any]:
    defaults = CondensationConfig()
    return {name: getattr(defaults, name) for name in _LISTED}


@dataclass
class CondenseSection:
    """Feature caching and checkpointing of stage 2; every other key of the (flat) YAML section
    is a ``CondensationConfig`` option and lands in ``trainer``."""

    TRAINER: ClassVar[type] = CondensationConfig
    cache_batch_size: int = option(4, POSITIVE)
    patch_threshold: float = option(0.9, Rule(lambda v: 0 < v <= 1, "in (0, 1]"))
    trainer: dict[str, Any] = option(factory=_listed_trainer_options)
    # iterations between resume saves (besides every epoch's end); absent = epoch ends only
    checkpoint_every: int | None = option(None, NON_NEGATIVE_INT)


@dataclass
class KMeansSection:
    clusters_per_class: int = option(16, POSITIVE)
    iterations: int = option(20, POSITIVE)
    max_samples_per_class: int = option(20000, POSITIVE)
    # "fixed": our per-class k-means score (docs/method.md); "published": InternImage-OOD's rule
    # (low-confidence pixels only, predicted-class clusters, per-image threshold).
    rule: Literal["fixed", "published"] = option("fixed", written_when_set=True)


def _registered_scorers() -> list[str]:
    """PixOOD first, then the baselines in registry order."""
    return ["pixood", *(name for name in SCORERS if name != "pixood")]


@dataclass
class DecideSection:
    scorers: list[str] = option(
        factory=_registered_scorers,
        rule=Rule(
            lambda v: bool(v) and set(v) <= set(SCORERS),
            f"a non-empty list out of {sorted(SCORERS)}",
        ),
    )
    kmeans: KMeansSection = option(factory=KMeansSection)
    # Decision strategy: "monotone" (ours: the likelihood ratio clamped so it cannot turn back,
    # docs/method.md) or "published" (the paper's formulation, exactly).
    rule: Literal["monotone", "published"] = "monotone"
    grid_size: int = option(2000, Rule(lambda v: v >= 10, "an integer >= 10"))  # §5.3 grid
    eval_split: str = "ood"  # data.splits entry used for the anomaly metrics (if present)
    # Pixels scored: "all" (every non-void pixel, SMIYC anomaly track) or "eval_labels"
    # (only pixels of the eval-label classes + anomalies, SMIYC obstacle-track protocol).
    eval_region: Literal["all", "eval_labels"] = "all"
    max_eval_images: int | None = option(None, NON_NEGATIVE_INT)  # null or 0 = all


@dataclass
class TrainConfig:
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool = True
    model: ModelSection = option(factory=ModelSection)
    data: DataSection = option(factory=DataSection)
    pretrain: PretrainSection = option(factory=PretrainSection)
    stage1: Stage1Section = option(factory=Stage1Section)
    condense: CondenseSection = option(factory=CondenseSection)
    decide: DecideSection = option(factory=DecideSection)

    def check(self) -> None:
        """The rules that span fields (each field's own type and rule are checked on build)."""
        if self.pretrain.enabled and self.model.backbone_weights is not None:
            raise ConfigError(
                "pretrain.enabled is a stand-in for DINOv2 pretraining (demo only); it cannot be "
                "used with model.backbone_weights - set pretrain.enabled=false"
            )
        data = self.data
        if data.kind != "folder" and not data.root:
            raise ConfigError("data.root is not set (path of the data set)")
        size = data.size
        if size is not None and (len(size) != 2 or any(s <= 0 or s % 14 for s in size)):
            raise ConfigError(f"data.size must be [H, W], positive multiples of 14, got {size}")
        for role in ("train", "val"):
            if role not in data.splits:
                raise ConfigError(f"data.splits.{role} is not set")
        if not all(0 <= v < data.num_classes for v in self.model.eval_labels):
            raise ConfigError(f"model.eval_labels must be a list of class ids < {data.num_classes}")
        self.condensation()

    def condensation(self) -> CondensationConfig:
        """Stage 2's trainer options (the data set fixes the class count, the seed defaults to
        the config's)."""
        values = {"seed": self.seed, **self.condense.trainer, "num_classes": self.data.num_classes}
        try:
            return CondensationConfig(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"condense: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


# --- building a section from a mapping: the one place values are checked ----------------------


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    names.update({type(None): "null", dict: "a mapping"})
    return names.get(origin or hint, str(hint))


def _fits(hint: Any, value: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(args[0], v) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:  # an int is a number too; kept as written so the config hash stays put
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, values: Any, path: str) -> Any:
    """``cls`` with its defaults replaced by ``values`` (a mapping), every value checked."""
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must be a mapping, got {values!r}")
    section = cls()
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    trainer_cls = getattr(cls, "TRAINER", None)
    for key, value in values.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key not in names or (trainer_cls and key == "trainer"):
            if trainer_cls is None:
                raise ConfigError(f"unknown config key {dotted!r}")
            checked = _trainer_value(trainer_cls, key, value, dotted)
            section.trainer = {**section.trainer, key: checked}
            continue
        hint, rule = hints[key], names[key].metadata.get("rule")
        if dataclasses.is_dataclass(hint):
            setattr(section, key, _build(hint, value, dotted))
            continue
        if typing.get_origin(hint) is dict and isinstance(value, dict):
            value = _merge(getattr(section, key), value)
        if not _fits(hint, value) or (value is not None and rule and not rule.check(value)):
            what = rule.what if rule else _describe(hint)
            raise ConfigError(f"{dotted} must be {what}, got {value!r}")
        setattr(section, key, value)
    return section


def _trainer_value(trainer_cls: type, key: str, value: Any, dotted: str) -> Any:
    hints = typing.get_type_hints(trainer_cls)
    if key not in hints or key == "num_classes":
        raise ConfigError(f"unknown config key {dotted!r}")
    if not _fits(hints[key], value):
        raise ConfigError(f"{dotted} must be {_describe(hints[key])}, got {value!r}")
    return value


def _to_dict(section: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = _to_dict(value)
        elif f.name == "trainer" and hasattr(section, "TRAINER"):
            out.update(value)  # flat in YAML
        elif f.name == "checkpoint_every" and value is None:
            continue  # absent unless given (as it always was)
        elif f.metadata.get("written_when_set") and value == f.default:
            continue  # see ``option``
        else:
            out[f.name] = value
    return out


# --- loading ---------------------------------------------------------------------------------


def parse_override(text: str) -> dict[str, Any]:
    """``a.b.c=value`` (value in YAML syntax) -> {"a": {"b": {"c": value}}}."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        nested: Any = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: cannot parse value ({exc})") from None
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def _read_yaml(path: Path) -> dict[str, Any]:
    loaded = read_document(path, yaml.safe_load, "config file", ConfigError) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return loaded


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides, then checked."""
    values = _read_yaml(Path(path)) if path is not None else {}
    for text in overrides or []:
        values = _merge(values, parse_override(text))
    config = _build(TrainConfig, values, "")
    config.check()
    return config


def section_hash(config: TrainConfig, keys: list[str]) -> str:
    """Hash of the named top-level sections (a stage is stale when the sections it depends on
    change)."""
    values = config.to_dict()
    subset = {k: values.get(k) for k in keys}
    return hashlib.sha256(json.dumps(subset, sort_keys=True, default=str).encode()).hexdigest()


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
