"""Where inputs, predictions and ground truth live, for the two folder layouts pixood-bravo reads.

- BRAVO data set (docs/evaluation.md §2.1): `ROOT/bravo_<split>/...`; predictions mirror the input
  path (`X.png` → `X_pred.png`, `X_conf.png`), ground truth is found by the split's suffixes.
- pixood-synth root (docs/architecture.md §7.1):
  `ROOT/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png` with
  `gtFine/..._gtFine_labelTrainIds.png` and `ood/..._ood.png`; predictions mirror the image path
  the same way. Each synthetic split stands in for one kind of BRAVO subset (see
  `SYNTH_ROLES`), so a model can be scored "the BRAVO way" on data we can generate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pixood_ros.bravo.files import (
    CONF_SUFFIX,
    PRED_SUFFIX,
    SPLIT_SUFFIXES,
    mirrored_paths,
    prediction_paths,
    subset_of,
)
from pixood_ros.cli import UserError
from pixood_ros.frames import IMAGE_SUFFIXES
from pixood_ros.metrics.bravo import SUBSETS, SubsetSpec

BRAVO = "bravo"
SYNTH = "synth"
SYNTH_IMAGE_SUFFIX = "_leftImg8bit.png"
SYNTH_GT_SUFFIX = "_gtFine_labelTrainIds.png"
SYNTH_OOD_SUFFIX = "_ood.png"


class LayoutError(UserError, ValueError):
    """The folder is not what the command needs; the message is one line for the user."""


@dataclass(frozen=True)
class SynthRole:
    """How one pixood-synth split is scored: which BRAVO subset it stands in for and which
    metric groups it contributes (semantic ``*_valid`` and/or OOD ``*_ood``)."""

    stands_in_for: str
    semantic: bool
    ood: bool


#: pixood-synth split → BRAVO stand-in. In-distribution splits play the semantic-only subsets
#: (outofcontext / ACDC: mIoU and calibration of "prediction correct"); anomaly splits play
#: synobjs (semantic metrics on the non-anomalous pixels + OOD metrics of "pixel is an
#: anomaly"), because unlike SMIYC our anomaly frames have full semantic labels; `ood_shift`
#: (dark/fog/blur plus anomalies) plays the shifted ACDC-like subsets and synobjs at once.
SYNTH_ROLES: dict[str, SynthRole] = {
    "train": SynthRole("outofcontext-like (in-distribution, training frames)", True, False),
    "val": SynthRole("outofcontext-like (in-distribution)", True, False),
    "ood_val": SynthRole("synobjs-like (anomalies on the road)", True, True),
    "ood_small": SynthRole("synobjs-like (small anomalies)", True, True),
    "ood_roadlike": SynthRole("synobjs-like (road-coloured anomalies)", True, True),
    "ood_shift": SynthRole("ACDC-like shift + synobjs-like anomalies", True, True),
}


def synth_role(split: str) -> SynthRole:
    """Role of a split; splits unknown to this version follow the naming rule of
    docs/architecture.md §7.1 (`ood_*` holds anomalies, anything else is in-distribution)."""
    if split in SYNTH_ROLES:
        return SYNTH_ROLES[split]
    if split.startswith("ood_"):
        return SynthRole("synobjs-like (anomalies)", True, True)
    return SynthRole("outofcontext-like (in-distribution)", True, False)


def subset_spec(layout: str, subset: str) -> SubsetSpec:
    """Metric groups of a subset (a BRAVO subset name or a synth split name)."""
    if layout == BRAVO:
        return SUBSETS[subset]
    role = synth_role(subset)
    return SubsetSpec(subset, None, role.semantic, role.ood)


def subset_description(layout: str, subset: str) -> str:
    if layout == BRAVO:
        spec = SUBSETS[subset]
        groups = [g for g, on in (("semantic", spec.semantic), ("OOD", spec.ood)) if on]
        return " + ".join(groups)
    return synth_role(subset).stands_in_for


@dataclass(frozen=True)
class InputImage:
    """One image to predict: its file, its path relative to the data-set root and its subset
    (BRAVO subset name or synth split)."""

    path: Path
    relpath: str
    subset: str


def _is_synth_root(root: Path) -> bool:
    meta = root / "meta.json"
    if meta.is_file():
        try:
            content = json.loads(meta.read_text())
        except (OSError, ValueError):
            content = None
        if isinstance(content, dict) and content.get("generator") == "pixood-synth":
            return True
    return (root / "leftImg8bit").is_dir() and (
        (root / "gtFine").is_dir() or (root / "ood").is_dir()
    )


def _has_bravo_splits(root: Path) -> bool:
    return any((root / f"bravo_{split}").is_dir() for split in SPLIT_SUFFIXES)


def detect_layout(root: str | Path, what: str = "input folder") -> str:
    """`BRAVO` or `SYNTH`; a missing or unrecognised folder is a LayoutError."""
    root = Path(root)
    if not root.exists():
        raise LayoutError(f"{what} not found: {root}")
    if not root.is_dir():
        raise LayoutError(f"{what} is not a directory: {root}")
    if _has_bravo_splits(root):
        return BRAVO
    if _is_synth_root(root):
        return SYNTH
    folders = ", ".join(f"bravo_{s}/" for s in SPLIT_SUFFIXES)
    raise LayoutError(
        f"{root}: neither a BRAVO data set (no {folders} folder) nor a pixood-synth root "
        "(meta.json + leftImg8bit/)"
    )


def _is_bravo_input(name: str, split: str) -> bool:
    """Inputs are the images whose `_pred.png` name carries the split's pred suffix; ground
    truth, masks and earlier predictions lying next to them are not inputs."""
    suffixes = SPLIT_SUFFIXES[split]
    path = Path(name)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    if any(name.endswith(s) for s in (suffixes.gt, suffixes.mask, PRED_SUFFIX, CONF_SUFFIX)):
        return False
    return (path.stem + PRED_SUFFIX).endswith(suffixes.pred)


def bravo_inputs(root: Path) -> list[InputImage]:
    images = []
    for split in SPLIT_SUFFIXES:
        folder = root / f"bravo_{split}"
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not _is_bravo_input(path.name, split):
                continue
            rel = path.relative_to(root).as_posix()
            try:
                subset = subset_of(rel)
            except ValueError:  # e.g. ACDC reference frames outside fog/rain/night/snow
                continue
            images.append(InputImage(path, rel, subset))
    return images


def synth_inputs(root: Path) -> list[InputImage]:
    images = []
    for path in sorted((root / "leftImg8bit").glob(f"*/*/*{SYNTH_IMAGE_SUFFIX}")):
        rel = path.relative_to(root).as_posix()
        images.append(InputImage(path, rel, rel.split("/")[1]))
    return images


T = TypeVar("T")


def select_subsets(
    items: list[T], subset_of: Callable[[T], str], subsets: list[str] | None, missing: str
) -> list[T]:
    """The items of the requested subsets (all without a request); LayoutError starting with
    `missing` when a requested subset has no item."""
    if not subsets:
        return items
    known = sorted({subset_of(item) for item in items})
    unknown = [s for s in subsets if s not in known]
    if unknown:
        raise LayoutError(f"{missing} {', '.join(unknown)} (found: {', '.join(known) or 'none'})")
    return [item for item in items if subset_of(item) in subsets]


def find_inputs(root: str | Path, subsets: list[str] | None = None) -> tuple[str, list[InputImage]]:
    """(layout, images) of a data-set root, optionally only some subsets / splits."""
    root = Path(root)
    layout = detect_layout(root)
    images = bravo_inputs(root) if layout == BRAVO else synth_inputs(root)
    images = select_subsets(images, lambda i: i.subset, subsets, f"{root}: no images of subset(s)")
    if not images:
        raise LayoutError(f"{root}: no input images found ({layout} layout)")
    return layout, images


def output_paths(layout: str, image: InputImage, out_root: str | Path) -> tuple[Path, Path]:
    """(`_pred.png`, `_conf.png`) of an input: same relative folder, input stem + suffix."""
    if layout == BRAVO:
        return prediction_paths(image.relpath, out_root)
    return mirrored_paths(image.relpath, out_root)


@dataclass(frozen=True)
class SynthFrame:
    """Ground truth and submission files of one pixood-synth frame."""

    split: str
    gt: Path
    ood: Path
    pred: Path
    conf: Path


def synth_frames(gt_root: Path, submission_root: Path) -> list[SynthFrame]:
    """Every labelled frame of a pixood-synth root, with the submission files it needs."""
    frames = []
    for gt in sorted((gt_root / "gtFine").glob(f"*/*/*{SYNTH_GT_SUFFIX}")):
        split, city = gt.parent.parent.name, gt.parent.name
        stem = gt.name[: -len(SYNTH_GT_SUFFIX)]
        image_rel = Path("leftImg8bit") / split / city / f"{stem}{SYNTH_IMAGE_SUFFIX}"
        pred, conf = mirrored_paths(image_rel, submission_root)
        ood = gt_root / "ood" / split / city / f"{stem}{SYNTH_OOD_SUFFIX}"
        frames.append(SynthFrame(split, gt, ood, pred, conf))
    return frames
