"""Readers for the three official PixOOD files (docs/method.md §7): only what inference needs.

* stage-1 ``checkpoint-backbone.pth``: the MLP decoder weights (``_orig_mod.`` stripped);
* stage-2/3 ``checkpoint-latest.pth``: the per-class raw-space prototypes
  ``custom_data['knn_model'][c].clusters`` and the Neyman-Pearson model ``custom_data['n_p_model']``
  (class means/covariances, OOD covariance, the ``interp_fnc[c].x / .y`` knot tables);
* ``parameters.yaml`` (yacs dump) and optionally ``code/config/dinov2_vit_l.yaml``.

Everything else in the pickles (optimizer state, training histories, the pickled condensation
module) is read by the restricted unpickler as inert data and dropped. Every problem is an
``OfficialFormatError`` with a one-line message naming the file.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixood_ros.cli import UserError, one_line

from ..documents import read_document
from .archive import load_official_checkpoint
from .unpickler import OfficialObject, UnsafePickleError

DECODER_KEYS = ("decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias")
COMPILE_PREFIX = "_orig_mod."
PIXOOD_NETS = ("GROODNetKNMSoftMultiClass",)

# official hub names (MODEL.ARCH) -> timm architectures of pixood_training.models.backbone
HUB_ARCHS = {
    "dinov2_vits14": "vit_small_patch14_dinov2",
    "dinov2_vitb14": "vit_base_patch14_dinov2",
    "dinov2_vitl14": "vit_large_patch14_dinov2",
    "dinov2_vitg14": "vit_giant_patch14_dinov2",
    "dinov2_vits14_reg": "vit_small_patch14_reg4_dinov2",
    "dinov2_vitb14_reg": "vit_base_patch14_reg4_dinov2",
    "dinov2_vitl14_reg": "vit_large_patch14_reg4_dinov2",
    "dinov2_vitg14_reg": "vit_giant_patch14_reg4_dinov2",
}


class OfficialFormatError(UserError, ValueError):
    """An official file is missing, unreadable, refused, or not laid out as docs/method.md §7."""


@dataclass
class OfficialParameters:
    """The parts of ``parameters.yaml`` that decide inference."""

    num_classes: int
    emb_size: int | None
    net: str | None
    arch: str | None = None
    multiscale: Any = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class OfficialPixOOD:
    """Prototypes and Neyman-Pearson model of the stage-2/3 checkpoint, as plain arrays."""

    prototypes: list[torch.Tensor]  # per class [K_c, D] float32, raw feature space
    class_means: np.ndarray  # [C, 2]
    class_covs: np.ndarray  # [C, 2, 2]
    ood_means: np.ndarray  # [C, 2]
    ood_covs: np.ndarray  # [C, 2, 2]
    knots_x: list[np.ndarray]  # interp1d .x per class (ratios; may hold NaN / inf)
    knots_y: list[np.ndarray]  # interp1d .y per class (mass)

    @property
    def num_classes(self) -> int:
        return len(self.prototypes)


# -- generic helpers ----------------------------------------------------------------------------
def _load(path: Path, what: str) -> Any:
    if not path.is_file():
        raise OfficialFormatError(f"{what} not found: {path}")
    try:
        return load_official_checkpoint(path)
    except UnsafePickleError as exc:
        raise OfficialFormatError(f"{path}: {exc}") from exc
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise OfficialFormatError(f"cannot read {what} {path}: {one_line(exc)}") from exc
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise OfficialFormatError(f"{path} is not a valid {what}: {one_line(exc)}") from exc


def _field(obj: Any, name: str, path: Path, where: str) -> Any:
    """``obj.name`` / ``obj[name]`` for SimpleNamespace, inert official objects and dicts."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
    elif name in getattr(obj, "__dict__", {}):
        return obj.__dict__[name]
    raise OfficialFormatError(f"{path}: {where} has no '{name}' (not an official PixOOD file?)")


def _array(value: Any, path: Path, where: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OfficialFormatError(f"{path}: {where} is not numeric: {one_line(exc)}") from exc


def _checkpoint_dict(path: Path, what: str) -> dict[str, Any]:
    data = _load(path, what)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise OfficialFormatError(f"{path} is not an official {what} (no 'state_dict' entry)")
    return data


# -- stage 1 ------------------------------------------------------------------------------------
def read_backbone_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Decoder weights ``decoder.{0,2}.{weight,bias}`` from ``checkpoint-backbone.pth``."""
    path = Path(path)
    state = _checkpoint_dict(path, "backbone checkpoint")["state_dict"]
    if not isinstance(state, dict):
        raise OfficialFormatError(f"{path}: 'state_dict' is not a dict")
    clean = {str(k).replace(COMPILE_PREFIX, ""): v for k, v in state.items()}
    missing = [k for k in DECODER_KEYS if k not in clean]
    if missing:
        raise OfficialFormatError(f"{path}: decoder weights missing: {', '.join(missing)}")
    decoder = {}
    for key in DECODER_KEYS:
        value = clean[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise OfficialFormatError(f"{path}: {key} is not a float tensor")
        decoder[key] = value.detach().float().contiguous()
    w0, b0, w2, b2 = (decoder[k] for k in DECODER_KEYS)
    hidden, classes = w0.shape[0], w2.shape[0]
    if (
        w0.dim() != 4
        or w0.shape[2:] != (1, 1)
        or tuple(w2.shape) != (classes, hidden, 1, 1)
        or tuple(b0.shape) != (hidden,)
        or tuple(b2.shape) != (classes,)
    ):
        shapes = {k: tuple(v.shape) for k, v in decoder.items()}
        raise OfficialFormatError(f"{path}: unexpected decoder shapes {shapes}")
    return decoder


# -- stages 2 + 3 -------------------------------------------------------------------------------
def read_pixood_checkpoint(path: str | Path) -> OfficialPixOOD:
    """Prototypes and N-P model from ``checkpoint-latest.pth`` (``custom_data``)."""
    path = Path(path)
    data = _checkpoint_dict(path, "PixOOD checkpoint")
    custom = data.get("custom_data")
    if not isinstance(custom, dict):
        raise OfficialFormatError(f"{path}: no 'custom_data' dict (not a stage-2 checkpoint?)")
    knn = _field(custom, "knn_model", path, "custom_data")
    if not isinstance(knn, list | tuple) or not knn:
        raise OfficialFormatError(f"{path}: custom_data['knn_model'] is not a list of classes")
    prototypes = []
    for c, model in enumerate(knn):
        where = f"knn_model[{c}]"
        for flag in ("mahalanobis_dist", "normalize_by_tau"):
            if isinstance(model, OfficialObject) and model.__dict__.get(flag):
                raise OfficialFormatError(
                    f"{path}: {where}.{flag} is set; only the published plain Euclidean "
                    "prototype distance is supported"
                )
        clusters = _field(model, "clusters", path, where)
        clusters = torch.as_tensor(_array(clusters, path, f"{where}.clusters"), dtype=torch.float32)
        if clusters.dim() != 2:
            raise OfficialFormatError(
                f"{path}: {where}.clusters must be [K, D], got {tuple(clusters.shape)}"
            )
        if not torch.isfinite(clusters).all():
            raise OfficialFormatError(f"{path}: {where}.clusters holds non-finite values")
        prototypes.append(clusters.contiguous())
    dims = {p.shape[1] for p in prototypes}
    if len(dims) != 1:
        raise OfficialFormatError(f"{path}: prototype widths differ between classes: {dims}")

    np_model = _field(custom, "n_p_model", path, "custom_data")
    num_classes = len(prototypes)

    def per_class(name: str, shape: tuple[int, ...]) -> np.ndarray:
        values = _field(np_model, name, path, "n_p_model")
        items = list(values) if isinstance(values, list | tuple) else values
        array = _array(items, path, f"n_p_model.{name}")
        if array.shape == shape:  # one entry shared by every class
            array = np.broadcast_to(array, (num_classes, *shape)).copy()
        if array.shape != (num_classes, *shape):
            raise OfficialFormatError(
                f"{path}: n_p_model.{name} has shape {array.shape}, expected "
                f"({num_classes}, {', '.join(map(str, shape))})"
            )
        return array

    class_means = per_class("class_means", (2,))
    class_covs = per_class("class_covs", (2, 2))
    ood_means = per_class("ood_estimate_means", (2,))
    ood_covs = per_class("ood_estimate_covs", (2, 2))
    for name, array in (("class_means", class_means), ("class_covs", class_covs),
                        ("ood_estimate_covs", ood_covs)):  # fmt: skip
        if not np.isfinite(array).all():
            raise OfficialFormatError(f"{path}: n_p_model.{name} holds non-finite values")
    interp = _field(np_model, "interp_fnc", path, "n_p_model")
    if not isinstance(interp, list | tuple) or len(interp) != num_classes:
        raise OfficialFormatError(
            f"{path}: n_p_model.interp_fnc must list {num_classes} interpolators"
        )
    knots_x, knots_y = [], []
    for c, fnc in enumerate(interp):
        x = _array(_field(fnc, "x", path, f"interp_fnc[{c}]"), path, f"interp_fnc[{c}].x")
        y = _array(_field(fnc, "y", path, f"interp_fnc[{c}]"), path, f"interp_fnc[{c}].y")
        x, y = x.reshape(-1), y.reshape(-1)
        if x.size != y.size or x.size < 2:
            raise OfficialFormatError(
                f"{path}: interp_fnc[{c}] has {x.size} x and {y.size} y knots"
            )
        if not (np.isfinite(x) & (x > 0)).any():
            raise OfficialFormatError(f"{path}: interp_fnc[{c}] has no finite positive knot")
        knots_x.append(x)
        knots_y.append(y)
    return OfficialPixOOD(
        prototypes, class_means, class_covs, ood_means, ood_covs, knots_x, knots_y
    )


# -- YAML configs -------------------------------------------------------------------------------
def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    import yaml

    data = read_document(path, yaml.safe_load, what, OfficialFormatError)
    if not isinstance(data, dict) or not isinstance(data.get("MODEL"), dict):
        raise OfficialFormatError(f"{path} is not an official yacs config (no MODEL section)")
    return data


def read_parameters(path: str | Path) -> OfficialParameters:
    """``parameters.yaml`` of the stage-2 run; refuses settings the published inference lacks."""
    path = Path(path)
    data = _read_yaml(path, "parameters file")
    model = data["MODEL"]
    net = model.get("NET")
    if net is not None and net not in PIXOOD_NETS:
        raise OfficialFormatError(
            f"{path}: MODEL.NET is {net!r}, not a PixOOD model ({', '.join(PIXOOD_NETS)})"
        )
    checks = (
        ("PATCH_SIZE", 14, "the DINOv2 patch size 14"),
        ("FEATURE_RESIZE_FACTOR", 1, "FEATURE_RESIZE_FACTOR 1 (no feature resizing)"),
        ("TAU_NORM", False, "TAU_NORM false (plain Euclidean prototype distance)"),
        ("MAHALANOBIS_DIST", False, "MAHALANOBIS_DIST false"),
    )
    for key, expected, meaning in checks:
        if key in model and model[key] != expected:
            raise OfficialFormatError(
                f"{path}: MODEL.{key} = {model[key]!r}; only {meaning} is supported"
            )
    try:
        num_classes = int(model.get("NUM_CLASSES", 19))
        emb = model.get("EMB_SIZE")
        emb_size = None if emb is None else int(emb)
    except (TypeError, ValueError) as exc:
        raise OfficialFormatError(f"{path}: bad MODEL.NUM_CLASSES/EMB_SIZE: {exc}") from exc
    return OfficialParameters(
        num_classes=num_classes,
        emb_size=emb_size,
        net=net,
        arch=model.get("ARCH"),
        multiscale=model.get("MULTISCALE"),
        raw=data,
    )


def read_backbone_config(path: str | Path) -> OfficialParameters:
    """``code/config/dinov2_vit_l.yaml``: hub architecture and MULTISCALE blocks."""
    path = Path(path)
    data = _read_yaml(path, "backbone config")
    model = data["MODEL"]
    if "MULTISCALE" not in model:
        raise OfficialFormatError(f"{path}: no MODEL.MULTISCALE (intermediate blocks)")
    return OfficialParameters(
        num_classes=int(model.get("NUM_CLASSES", 19)),
        emb_size=model.get("EMB_SIZE"),
        net=model.get("NET"),
        arch=model.get("ARCH"),
        multiscale=model["MULTISCALE"],
        raw=data,
    )


def multiscale_blocks(multiscale: Any, depth: int, source: str) -> tuple[int, ...]:
    """Official MULTISCALE -> 0-based block indices: a list is taken as is; an int n means the
    last n blocks (``depth - 1 - arange(n)``, as DINOv2's get_intermediate_layers)."""
    if isinstance(multiscale, bool):
        raise OfficialFormatError(f"{source}: MODEL.MULTISCALE must be a list or an int")
    if isinstance(multiscale, int):
        if not 1 <= multiscale <= depth:
            raise OfficialFormatError(
                f"{source}: MODEL.MULTISCALE = {multiscale} for a {depth}-block ViT"
            )
        return tuple(sorted(depth - 1 - i for i in range(multiscale)))
    if not isinstance(multiscale, list | tuple) or not multiscale:
        raise OfficialFormatError(f"{source}: MODEL.MULTISCALE must be a list or an int")
    try:
        blocks = tuple(sorted({int(b) for b in multiscale}))
    except (TypeError, ValueError) as exc:
        raise OfficialFormatError(f"{source}: bad MODEL.MULTISCALE {multiscale!r}") from exc
    if any(not 0 <= b < depth for b in blocks):
        raise OfficialFormatError(
            f"{source}: MODEL.MULTISCALE {list(blocks)} out of range for a {depth}-block ViT"
        )
    return blocks
