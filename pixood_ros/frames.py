"""Frame sources: an image folder, one image file, a video file or a pixood-synth split, read
the same way by pixood-infer, pixood-make-bag, pixood-bag-eval (ground-truth folders),
pixood-bravo and the demo, with one list of image suffixes and one set of error messages.

A source yields `Frame`s (RGB image + optional OOD mask + optional semantic labels); ground truth
is paired with frames by file stem (ignoring Cityscapes-style suffixes) and, failing that, by
sorted order when the counts agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pixood_ros.cli import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
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

# Called with the file and the error for an image that cannot be decoded, instead of raising.
OnUnreadable = Callable[[Path, "SourceError"], None]


class SourceError(UserError):
    """A user-facing problem with the input frames or labels (one line, exit code 2)."""


@dataclass
class Frame:
    """One frame: `name` is its file name (folders) or `frame_NNNNNN` (videos)."""

    name: str
    rgb: np.ndarray
    ood: np.ndarray | None = None
    semantic: np.ndarray | None = None


@dataclass
class Source:
    """Frames to read plus what is known up front (count for the progress bar, native rate)."""

    frames: Iterator[Frame]
    count: int | None
    native_rate: float | None = None
    has_ood: bool = False
    has_semantic: bool = False
    #: the file names of an image folder or image, in frame order (None for a video), so a
    #: consumer can name its outputs before it reads the first frame
    file_names: list[str] | None = None


def scene_key(path: Path) -> str:
    stem = path.stem
    for suffix in ROLE_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def list_images(folder: Path) -> list[Path]:
    """The image files of `folder`, sorted by name; SourceError when there is none."""
    if not folder.is_dir():
        raise SourceError(f"not a directory: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
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


def read_image(path: Path, flags: int) -> np.ndarray | None:
    """`cv2.imread`, None for a missing or undecodable file, without OpenCV's "can't open/read
    file" warning on stderr (the callers report the problem in their own line)."""
    if not path.is_file():
        return None
    return cv2.imread(str(path), flags)


def read_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB (grey, 16-bit and alpha images are converted as OpenCV does)."""
    bgr = read_image(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"{path}: unreadable image (not a file OpenCV can decode)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A single-channel uint8 label image of the frame's size (grey RGB files are accepted)."""
    label = read_image(path, cv2.IMREAD_UNCHANGED)
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


def image_frames(
    files: Iterable[Path], on_unreadable: OnUnreadable | None = None
) -> Iterator[Frame]:
    """Frames of image files, read one at a time; an unreadable file raises SourceError, or is
    reported to `on_unreadable` and skipped when that is given."""
    for path in files:
        try:
            yield Frame(path.name, read_rgb(path))
        except SourceError as exc:
            if on_unreadable is None:
                raise
            on_unreadable(path, exc)


def video_frames(path: Path) -> tuple[Iterator[Frame], float | None, int | None]:
    """Frames of a video, its frame rate and frame count (when the container knows them)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    rate = fps if fps and math.isfinite(fps) and fps > 0 else None
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    def frames() -> Iterator[Frame]:
        try:
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield Frame(f"frame_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()

    return frames(), rate, count


def _input_images(path: Path) -> list[Path] | None:
    """The image files of an input (folder or single image), None for a video file."""
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if path.is_dir():
        return list_images(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return None
    raise SourceError(
        f"{path} is neither an image folder, an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
        f"({', '.join(VIDEO_SUFFIXES)})"
    )


def input_source(path: Path, on_unreadable: OnUnreadable | None = None) -> Source:
    """Frames of an image folder, one image file or a video file, without ground truth."""
    files = _input_images(path)
    if files is not None:
        return Source(
            image_frames(files, on_unreadable), len(files), file_names=[p.name for p in files]
        )
    frames, rate, count = video_frames(path)
    return Source(frames, count, rate)


def _with_labels(
    frames: Iterator[Frame], ood_files: list[Path] | None, semantic_files: list[Path] | None
) -> Iterator[Frame]:
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
    """`input_source` with OOD masks and semantic labels from folders: paired by file name with
    the images of a folder, in sorted order with the frames of a video."""
    files = _input_images(input_path)
    if files is not None:
        names = [p.name for p in files]
        ood = pair_labels(names, gt_dir, "OOD masks") if gt_dir else None
        sem = pair_labels(names, semantic_dir, "semantic labels") if semantic_dir else None
        frames, rate, count = image_frames(files), None, len(files)
    else:
        ood = list_images(gt_dir) if gt_dir else None
        sem = list_images(semantic_dir) if semantic_dir else None
        frames, rate, count = video_frames(input_path)
    return Source(_with_labels(frames, ood, sem), count, rate, ood is not None, sem is not None)


def synth_source(root: Path, split: str) -> Source:
    """A pixood-synth split (docs/architecture.md §7.1): images, OOD masks and semantic train
    ids."""
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
    frames = _with_labels(image_frames(files), ood, sem)
    return Source(frames, len(files), None, ood is not None, sem is not None)
