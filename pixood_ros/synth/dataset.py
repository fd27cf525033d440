"""Writes rendered frames in the Cityscapes-like layout (docs/architecture.md §7.1) plus meta.json.

Each frame's random stream is derived from (seed, split, index) only, so a frame is byte-identical
whatever the other split counts are, and the work can be spread over processes in any order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pixood_ros import durable
from pixood_ros.cli import UserError

from .anomalies import available_photos
from .classes import CLASS_NAMES, PALETTE, VOID
from .scene import ANOMALY_SPLITS, MIN_HEIGHT, MIN_WIDTH, SPLITS, render_scene

GENERATOR = "pixood-synth"
FORMAT_VERSION = 1
CITY = "synth"
FOLDERS = {
    "leftImg8bit": "_leftImg8bit.png",
    "gtFine": "_gtFine_labelTrainIds.png",
    "ood": "_ood.png",
}


class SynthError(UserError, ValueError):
    """A user mistake (bad option, unsafe output folder): the CLI prints it as one line."""


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one frame; depends on nothing but (seed, split, index)."""
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


def frame_stem(split: str, index: int) -> str:
    return f"{split}_{index:06d}"


def frame_paths(root: str | os.PathLike, split: str, index: int) -> dict[str, Path]:
    """Paths of the image, label and OOD files of one frame, keyed by top-level folder."""
    stem = frame_stem(split, index)
    return {
        top: Path(root) / top / split / CITY / f"{stem}{suffix}" for top, suffix in FOLDERS.items()
    }


def _is_previous_output(root: Path) -> bool:
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == GENERATOR


def _prepare_root(root: Path, overwrite: bool) -> None:
    """Refuse to mix our files into someone else's folder; clear our own stale frames."""
    if root.exists() and not root.is_dir():
        raise SynthError(f"output path {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not _is_previous_output(root) and not overwrite:
            raise SynthError(
                f"output directory {root} is not empty and holds no {GENERATOR} output "
                "(pass --overwrite to write into it anyway)"
            )
        # remove only frames we would have written (older runs may have had larger counts)
        for top, suffix in FOLDERS.items():
            for split in SPLITS:
                folder = root / top / split / CITY
                if folder.is_dir():
                    for f in folder.glob(f"{split}_*{suffix}"):
                        f.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _validate(splits: Mapping[str, int], width: int, height: int, seed: int) -> None:
    for name, count in splits.items():
        if name not in SPLITS:
            raise SynthError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        if int(count) != count or count < 0:
            raise SynthError(
                f"count for split {name!r} must be a non-negative integer, got {count}"
            )
    if sum(splits.values()) == 0:
        raise SynthError("nothing to write: every split count is 0")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise SynthError(f"image size {width}x{height} is too small (min {MIN_WIDTH}x{MIN_HEIGHT})")
    if seed < 0:
        raise SynthError(f"seed must be >= 0, got {seed}")


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if path.is_symlink():  # replaced, not written through
        path.unlink()
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def _render_and_write(job: tuple[str, int, str, int, int, int]) -> int:
    root, seed, split, index, width, height = job[0], job[1], job[2], job[3], job[4], job[5]
    scene = render_scene(frame_rng(seed, split, index), width, height, split)
    paths = frame_paths(root, split, index)
    _write_png(paths["leftImg8bit"], scene.image)
    _write_png(paths["gtFine"], scene.labels)
    _write_png(paths["ood"], scene.ood)
    return int((scene.ood == 1).sum())


def _meta(splits: Mapping[str, int], width: int, height: int, seed: int, complete: bool) -> dict:
    return {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "complete": complete,
        "seed": seed,
        "width": width,
        "height": height,
        "class_names": list(CLASS_NAMES),
        "palette": [list(c) for c in PALETTE],
        "ignore_index": VOID,
        "ood_values": {"in_distribution": 0, "anomaly": 1, "void": VOID},
        "splits": [s for s in SPLITS if splits.get(s, 0) > 0],
        "counts": {s: int(splits.get(s, 0)) for s in SPLITS if splits.get(s, 0) > 0},
        "anomaly_splits": [s for s in SPLITS if s in ANOMALY_SPLITS and splits.get(s, 0) > 0],
        "layout": {
            top: f"{top}/<split>/{CITY}/<split>_<index:06d>{suf}" for top, suf in FOLDERS.items()
        },
        "photo_sources": available_photos(),
    }


def write_dataset(
    root: str | os.PathLike,
    splits: Mapping[str, int],
    width: int = 512,
    height: int = 256,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
    overwrite: bool = False,
) -> dict:
    """Render and write every requested frame; returns the meta.json content.

    `root` must be missing, empty, a previous pixood-synth output (its frames are replaced) or
    `overwrite=True` (files are added, nothing foreign is deleted).
    """
    splits = {k: int(v) for k, v in splits.items() if v}  # drop zero counts, keep validation
    _validate(splits, width, height, seed)
    if workers < 1:
        raise SynthError(f"workers must be >= 1, got {workers}")
    root = Path(root)
    _prepare_root(root, overwrite)
    durable.remove_stale_temporaries(root)  # a killed run's half-written meta.json
    meta_path = root / "meta.json"
    # written first (complete=false) so an interrupted run is still recognised as ours
    durable.write_json(meta_path, _meta(splits, width, height, seed, False))
    jobs = []
    for split in SPLITS:
        for top in FOLDERS:
            if splits.get(split, 0):
                (root / top / split / CITY).mkdir(parents=True, exist_ok=True)
        jobs += [(str(root), seed, split, i, width, height) for i in range(splits.get(split, 0))]
    bar = tqdm(total=len(jobs), desc="pixood-synth", unit="frame", disable=not progress)
    with bar:
        if workers == 1:
            for job in jobs:
                _render_and_write(job)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_render_and_write, jobs, chunksize=4):
                    bar.update(1)
    meta = _meta(splits, width, height, seed, True)
    durable.write_json(meta_path, meta)
    return meta
