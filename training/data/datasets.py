"""Segmentation data sets: Cityscapes layout, generic image/label folders, the synthetic set.

Every data set is a list of (image, label[, ood mask]) files found up front; a missing partner file
is an error raised at construction, an unreadable or inconsistent file (size mismatch, label values
out of range) an error raised when the sample is read. Errors are ``DatasetError`` with one line
naming the file: nothing is silently skipped, because a silently shrunken training set is a bug
that only shows up as a worse model.

A sample is a dict: ``image`` float [3, H, W] in [0, 1] at the network size (or uint8 [H0, W0, 3]
at the original size with ``resize=False``), ``label`` long [H, W] train ids with 255 void,
``ood`` long [H, W] (0 in-distribution, 1 anomaly, 255 void; only when the set has OOD masks) and
``index``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixood_ros.cli import UserError

from .labels import IGNORE_INDEX, labelids_to_trainids
from .transforms import flip_decision, network_size, resize_image, resize_labels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")
LABEL_KINDS = ("trainids", "labelids")


class DatasetError(UserError, ValueError):
    """A data problem a user must fix (missing / unreadable / inconsistent file)."""


@dataclass(frozen=True)
class SampleFiles:
    image: Path
    label: Path
    ood: Path | None = None
    label_kind: str = "trainids"

    @property
    def name(self) -> str:
        return self.image.stem


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except (OSError, ValueError) as exc:  # PIL raises OSError/UnidentifiedImageError
        raise DatasetError(f"cannot read image {path}: {exc}") from None


def _read_single_channel(path: Path, what: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            array = np.asarray(img)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc}") from None
    if array.ndim != 2:
        raise DatasetError(f"{what} {path} is not a single-channel image (shape {array.shape})")
    return array.astype(np.int64)


class SegmentationDataset(torch.utils.data.Dataset):
    """Reads, validates and resizes (image, label[, ood]) samples from a list of files."""

    def __init__(
        self,
        samples: list[SampleFiles],
        *,
        num_classes: int,
        long_side: int | None = None,
        size: tuple[int, int] | None = None,
        hflip: bool = False,
        seed: int = 0,
        resize: bool = True,
        description: str = "data set",
        stride: int = 14,
    ) -> None:
        if not samples:
            raise DatasetError(f"{description}: no samples found")
        if resize and long_side is None and size is None:
            raise ValueError("give long_side or size (or resize=False)")
        if size is not None and any(int(s) % 14 or int(s) <= 0 for s in size):
            raise DatasetError(f"{description}: network size {list(size)} must be multiples of 14")
        self.samples = samples
        self.num_classes = int(num_classes)
        self.long_side = long_side
        self.size = tuple(int(s) for s in size) if size is not None else None
        self.hflip = hflip
        self.seed = seed
        self.resize = resize
        self.description = description
        self.stride = int(stride)  # network sides are multiples of it (14 ViT, 32 InternImage)
        self.epoch = 0
        self.has_ood = all(s.ood is not None for s in samples)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Selects the flip pattern of an epoch (deterministic per (seed, epoch, index))."""
        self.epoch = int(epoch)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        assert self.long_side is not None
        if self.stride != 14:  # the InternImage family's rule (training/internimage/model.py)
            from ..internimage.model import network_size as stride_32_size

            h, w = stride_32_size(int(height), int(width), int(self.long_side))
            return int(h), int(w)
        return network_size(height, width, self.long_side)

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Original-size (image uint8 HxWx3, train-id labels int64 HxW, ood int64 HxW or None),
        validated."""
        files = self.samples[index]
        image = _read_image(files.image)
        raw = _read_single_channel(files.label, "label file")
        if files.label_kind == "labelids":
            try:
                labels = labelids_to_trainids(raw)
            except ValueError as exc:
                raise DatasetError(f"label file {files.label}: {exc}") from None
        else:
            bad = (raw != IGNORE_INDEX) & ((raw < 0) | (raw >= self.num_classes))
            if bad.any():
                values = sorted(int(v) for v in np.unique(raw[bad]))[:10]
                raise DatasetError(
                    f"label file {files.label} has values {values} outside "
                    f"0..{self.num_classes - 1} and {IGNORE_INDEX}"
                )
            labels = raw
        if labels.shape != image.shape[:2]:
            raise DatasetError(
                f"label file {files.label} is {labels.shape[1]}x{labels.shape[0]} but image "
                f"{files.image} is {image.shape[1]}x{image.shape[0]}"
            )
        ood = None
        if files.ood is not None:
            ood = _read_single_channel(files.ood, "OOD mask")
            if ood.shape != image.shape[:2]:
                raise DatasetError(
                    f"OOD mask {files.ood} is {ood.shape[1]}x{ood.shape[0]} but image "
                    f"{files.image} is {image.shape[1]}x{image.shape[0]}"
                )
            bad = ~np.isin(ood, (0, 1, IGNORE_INDEX))
            if bad.any():
                values = sorted(int(v) for v in np.unique(ood[bad]))[:10]
                raise DatasetError(f"OOD mask {files.ood} has values {values} (allowed: 0, 1, 255)")
        return image, labels, ood

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, labels, ood = self.load_raw(index)
        flip = self.hflip and flip_decision(self.seed, self.epoch, index)
        if flip:
            image, labels = image[:, ::-1], labels[:, ::-1]
            ood = ood[:, ::-1] if ood is not None else None
        sample: dict[str, Any] = {"index": index}
        if self.resize:
            size = self.output_size(*image.shape[:2])
            sample["image"] = resize_image(image, size)
            sample["label"] = resize_labels(labels, size)
            if ood is not None:
                sample["ood"] = resize_labels(ood, size)
        else:
            sample["image"] = torch.from_numpy(np.ascontiguousarray(image))
            sample["label"] = torch.from_numpy(np.ascontiguousarray(labels))
            if ood is not None:
                sample["ood"] = torch.from_numpy(np.ascontiguousarray(ood))
        return sample

    def fingerprint(self) -> list[list[Any]]:
        """Per file (path, size in bytes, mtime in ns): a change to the data list or to any file
        invalidates feature caches built from this data set."""
        entries = []
        for files in self.samples:
            for path in (files.image, files.label, files.ood):
                if path is not None:
                    stat = path.stat()
                    entries.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        return entries

    def check(self) -> None:
        """Reads and validates every sample (slow; useful before a long run)."""
        for index in range(len(self)):
            self.load_raw(index)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} {path} does not exist or is not a directory")
    return path


def scan_cityscapes(
    root: str | Path, split: str, *, label_kind: str = "auto", with_ood: bool | None = False
) -> list[SampleFiles]:
    """Files of a Cityscapes-layout split: ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png``
    with ``gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png`` (or ``_labelIds.png``, mapped
    to train ids) and, with ``with_ood``, ``ood/<split>/<city>/<stem>_ood.png``.

    ``label_kind``: ``trainids``, ``labelids`` or ``auto`` (trainIds file when present, else
    labelIds). ``with_ood=None`` means: use OOD masks when the split has an ``ood`` directory.
    """
    if label_kind not in (*LABEL_KINDS, "auto"):
        raise DatasetError(f"label_kind must be trainids, labelids or auto (got {label_kind!r})")
    root = Path(root)
    image_dir = _require_dir(root / "leftImg8bit" / split, "image directory")
    label_dir = _require_dir(root / "gtFine" / split, "label directory")
    ood_dir = root / "ood" / split
    if with_ood is None:
        with_ood = ood_dir.is_dir()
    elif with_ood:
        _require_dir(ood_dir, "OOD mask directory")
    images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
    if not images:
        raise DatasetError(f"no *_leftImg8bit.png images under {image_dir}/<city>/")
    samples = []
    for image in images:
        city = image.parent.name
        stem = image.name[: -len("_leftImg8bit.png")]
        train_ids = label_dir / city / f"{stem}_gtFine_labelTrainIds.png"
        label_ids = label_dir / city / f"{stem}_gtFine_labelIds.png"
        if label_kind in ("trainids", "auto") and train_ids.is_file():
            label, kind = train_ids, "trainids"
        elif label_kind in ("labelids", "auto") and label_ids.is_file():
            label, kind = label_ids, "labelids"
        else:
            expected = {"trainids": train_ids, "labelids": label_ids}.get(label_kind)
            wanted = str(expected) if expected else f"{train_ids} or {label_ids}"
            raise DatasetError(f"missing label file for {image}: expected {wanted}")
        ood = None
        if with_ood:
            ood = ood_dir / city / f"{stem}_ood.png"
            if not ood.is_file():
                raise DatasetError(f"missing OOD mask for {image}: expected {ood}")
        samples.append(SampleFiles(image, label, ood, kind))
    return samples


def scan_folder(
    images: str | Path,
    labels: str | Path,
    ood: str | Path | None = None,
    *,
    label_suffix: str = "",
    ood_suffix: str = "",
    label_kind: str = "trainids",
) -> list[SampleFiles]:
    """Files of a generic folder set: every image ``<stem>.<ext>`` in ``images`` pairs with
    ``labels/<stem><label_suffix>.png`` (and ``ood/<stem><ood_suffix>.png``). Images without a
    label and labels without an image are both errors (a typo in a suffix must not go unnoticed).
    """
    if label_kind not in LABEL_KINDS:
        raise DatasetError(f"label_kind must be trainids or labelids (got {label_kind!r})")
    image_dir = _require_dir(Path(images), "image directory")
    label_dir = _require_dir(Path(labels), "label directory")
    ood_dir = _require_dir(Path(ood), "OOD mask directory") if ood is not None else None
    image_files = sorted(
        p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not image_files:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    stems = [p.stem for p in image_files]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})[0]
        raise DatasetError(f"two images in {image_dir} share the stem {dup!r}")
    samples = []
    for image in image_files:
        label = label_dir / f"{image.stem}{label_suffix}.png"
        if not label.is_file():
            raise DatasetError(f"missing label file for {image}: expected {label}")
        ood_file = None
        if ood_dir is not None:
            ood_file = ood_dir / f"{image.stem}{ood_suffix}.png"
            if not ood_file.is_file():
                raise DatasetError(f"missing OOD mask for {image}: expected {ood_file}")
        samples.append(SampleFiles(image, label, ood_file, label_kind))
    expected = {f"{s}{label_suffix}.png" for s in stems}
    orphans = sorted(p for p in label_dir.glob("*.png") if p.name not in expected)
    if orphans:
        raise DatasetError(f"label file {orphans[0]} has no image in {image_dir}")
    return samples


class CityscapesDataset(SegmentationDataset):
    """Cityscapes layout (train ids, or labelIds mapped to train ids)."""

    def __init__(self, root: str | Path, split: str, *, label_kind: str = "auto", **kwargs: Any):
        kwargs.setdefault("description", f"Cityscapes {root} split {split}")
        samples = scan_cityscapes(root, split, label_kind=label_kind, with_ood=False)
        super().__init__(samples, **kwargs)


class SynthDataset(SegmentationDataset):
    """The ``pixood-synth`` set: Cityscapes layout plus ``ood/<split>`` anomaly masks (used when
    the split has them). Class names come from ``meta.json``."""

    def __init__(self, root: str | Path, split: str, **kwargs: Any):
        root = Path(root)
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{meta_path} not found: is {root} a pixood-synth data set?")
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {meta_path}: {exc}") from None
        kwargs.setdefault("description", f"synthetic set {root} split {split}")
        kwargs.setdefault("num_classes", len(self.meta.get("class_names", [])) or 19)
        samples = scan_cityscapes(root, split, label_kind="trainids", with_ood=None)
        super().__init__(samples, **kwargs)


class FolderDataset(SegmentationDataset):
    """Generic folders: images + label PNGs matched by stem (+ optional OOD masks)."""

    def __init__(
        self,
        images: str | Path,
        labels: str | Path,
        ood: str | Path | None = None,
        *,
        label_suffix: str = "",
        ood_suffix: str = "",
        label_kind: str = "trainids",
        **kwargs: Any,
    ):
        kwargs.setdefault("description", f"folder data set {images}")
        samples = scan_folder(
            images,
            labels,
            ood,
            label_suffix=label_suffix,
            ood_suffix=ood_suffix,
            label_kind=label_kind,
        )
        super().__init__(samples, **kwargs)


def build_dataset(
    data_config: Mapping[str, Any],
    role: str,
    *,
    augment: bool = False,
    resize: bool = True,
    seed: int = 0,
) -> SegmentationDataset:
    """The data set for ``role`` (``train``, ``val``, ``ood``, ...) of a training config's ``data``
    section. ``data.splits[role]`` is a split name (cityscapes / synth) or a mapping with
    ``images``, ``labels`` and optional ``ood`` directories (folder)."""
    kind = data_config.get("kind")
    splits = data_config.get("splits") or {}
    if role not in splits or splits[role] in (None, ""):
        raise DatasetError(f"data.splits has no {role!r} entry")
    spec = splits[role]
    common: dict[str, Any] = {
        "num_classes": int(data_config.get("num_classes", 19)),
        "long_side": data_config.get("long_side"),
        "size": data_config.get("size"),
        "hflip": bool(data_config.get("hflip", False)) and augment,
        "seed": seed,
        "resize": resize,
        "stride": int(data_config.get("stride", 14)),
    }
    if kind in ("cityscapes", "synth"):
        root = data_config.get("root")
        if not root:
            raise DatasetError("data.root is not set")
        if not Path(root).is_dir():
            raise DatasetError(f"data root {root} does not exist or is not a directory")
        if not isinstance(spec, str):
            raise DatasetError(f"data.splits.{role} must be a split name for kind {kind}")
        if kind == "synth":
            return SynthDataset(root, spec, **common)
        return CityscapesDataset(
            root, spec, label_kind=data_config.get("label_kind", "auto"), **common
        )
    if kind == "folder":
        if not isinstance(spec, Mapping) or "images" not in spec or "labels" not in spec:
            raise DatasetError(f"data.splits.{role} must map images/labels[/ood] directories")
        return FolderDataset(
            spec["images"],
            spec["labels"],
            spec.get("ood"),
            label_suffix=spec.get("label_suffix", ""),
            ood_suffix=spec.get("ood_suffix", ""),
            label_kind=data_config.get("label_kind", "trainids"),
            **common,
        )
    raise DatasetError(f"data.kind must be cityscapes, synth or folder (got {kind!r})")
