"""Frame sources for `pixood-make-bag`: an image folder, a video file or a pixood-synth split,
each optionally paired with ground-truth label images.

A source yields `Frame`s (RGB image + optional OOD mask + optional semantic labels); ground truth
is paired with frames by file stem (ignoring Cityscapes-style suffixes) and, failing that, by
sorted order when the counts agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"}
# Suffixes that name the role of a file rather than the scene, stripped before stem matching.
ROLE_SUFFIXES = (
    "_leftImg8bit",
    "_gtFine_labelTrainIds",
    "_labelTrainIds",
    "_labels",
    "_label",
    "_ood",
    "_gt",
    "_mask",
)
OOD_VALUES = (0, 1, 255)


class SourceError(Exception):
    """A user-facing problem with the input frames or labels (one line, exit code 2)."""


@dataclass
class Frame:
    name: str
    rgb: np.ndarray
    ood: np.ndarray | None = None
    semantic: np.ndarray | None = None


def scene_key(path: Path) -> str:
    stem = path.stem
    for suffix in ROLE_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"not a directory: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def pair_labels(frame_names: list[str], label_dir: Path, what: str) -> list[Path]:
    """The label file for every frame: by scene key when all match, else by sorted order."""
    labels = list_images(label_dir)
    by_key: dict[str, Path] = {}
    for path in labels:
        by_key.setdefault(scene_key(path), path)
    keys = [scene_key(Path(name)) for name in frame_names]
    if all(key in by_key for key in keys):
        return [by_key[key] for key in keys]
    if len(labels) == len(frame_names):
        return labels
    missing = next(key for key in keys if key not in by_key)
    raise SourceError(
        f"cannot pair {what} in {label_dir} with the frames: no file for {missing!r} and "
        f"{len(labels)} label files for {len(frame_names)} frames"
    )


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A single-channel uint8 label image of the frame's size (grey RGB files are accepted)."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise SourceError(f"cannot read {what} {path}")
    if label.ndim == 3:
        if not all(np.array_equal(label[..., 0], label[..., c]) for c in range(label.shape[2])):
            raise SourceError(f"{what} {path} has colour channels; expected a mono8 label image")
        label = label[..., 0]
    if label.dtype != np.uint8:
        raise SourceError(f"{what} {path} is {label.dtype}; expected 8-bit labels")
    if label.shape != shape:
        raise SourceError(
            f"{what} {path} is {label.shape[1]}x{label.shape[0]} but its frame is "
            f"{shape[1]}x{shape[0]}"
        )
    return label


def check_ood_values(mask: np.ndarray, path: Path) -> None:
    bad = np.setdiff1d(np.unique(mask), OOD_VALUES)
    if bad.size:
        raise SourceError(
            f"OOD mask {path} has values {bad[:5].tolist()}; expected 0 (in-distribution), "
            "1 (anomaly) and 255 (void)"
        )


def video_frames(path: Path) -> tuple[Iterator[Frame], float | None, int | None]:
    """Frames of a video, its frame rate and frame count (when the container knows them)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    def frames() -> Iterator[Frame]:
        try:
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield Frame(f"{path.stem}_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()

    return frames(), fps, count


@dataclass
class Source:
    """Frames to write plus what is known up front (count for the progress bar, native rate)."""

    frames: Iterator[Frame]
    count: int | None
    native_rate: float | None = None
    has_ood: bool = False
    has_semantic: bool = False


def _with_labels(
    names: list[str],
    rgb_of: list[Path] | Iterator[Frame],
    ood_files: list[Path] | None,
    semantic_files: list[Path] | None,
) -> Iterator[Frame]:
    frames = (
        (Frame(Path(p).name, read_rgb(p)) for p in rgb_of) if isinstance(rgb_of, list) else rgb_of
    )
    for index, frame in enumerate(frames):
        shape = frame.rgb.shape[:2]
        if ood_files is not None:
            if index >= len(ood_files):
                raise SourceError(f"no OOD mask for frame {index} ({frame.name})")
            frame.ood = read_label(ood_files[index], shape, "OOD mask")
            check_ood_values(frame.ood, ood_files[index])
        if semantic_files is not None:
            if index >= len(semantic_files):
                raise SourceError(f"no semantic label image for frame {index} ({frame.name})")
            frame.semantic = read_label(semantic_files[index], shape, "semantic label image")
        yield frame


def folder_or_video_source(
    input_path: Path, gt_dir: Path | None, semantic_dir: Path | None
) -> Source:
    if not input_path.exists():
        raise SourceError(f"input not found: {input_path}")
    if input_path.is_dir():
        files = list_images(input_path)
        names = [p.name for p in files]
        ood = pair_labels(names, gt_dir, "OOD masks") if gt_dir else None
        sem = pair_labels(names, semantic_dir, "semantic labels") if semantic_dir else None
        frames = _with_labels(names, files, ood, sem)
        return Source(frames, len(files), None, ood is not None, sem is not None)
    if input_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise SourceError(
            f"{input_path} is neither an image folder nor a video "
            f"({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    frames, fps, count = video_frames(input_path)
    ood = list_images(gt_dir) if gt_dir else None
    sem = list_images(semantic_dir) if semantic_dir else None
    return Source(_with_labels([], frames, ood, sem), count, fps, ood is not None, sem is not None)


def synth_source(root: Path, split: str) -> Source:
    """A pixood-synth split (TEAM.md interface 1): images, OOD masks and semantic train ids."""
    image_dir = root / "leftImg8bit" / split / "synth"
    if not image_dir.is_dir():
        available = sorted(p.name for p in (root / "leftImg8bit").glob("*") if p.is_dir())
        hint = f" (splits here: {', '.join(available)})" if available else ""
        raise SourceError(f"no split {split!r} in synthetic data set {root}{hint}")
    files = list_images(image_dir)
    names = [p.name for p in files]
    ood_dir = root / "ood" / split / "synth"
    sem_dir = root / "gtFine" / split / "synth"
    ood = pair_labels(names, ood_dir, "OOD masks") if ood_dir.is_dir() else None
    sem = pair_labels(names, sem_dir, "semantic labels") if sem_dir.is_dir() else None
    return Source(
        _with_labels(names, files, ood, sem), len(files), None, ood is not None, sem is not None
    )
