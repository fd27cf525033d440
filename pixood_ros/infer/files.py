"""pixood-infer's files: what each input frame's outputs are called and how they are written
(all of a frame's files or none; never through a symlink; a failed write is an error)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from pixood_ros.cli import one_line
from pixood_ros.engine import SegmentationResult
from pixood_ros.render.pictures import anomaly_mask, colorize_semantic

SCORE_PNG_SCALE = 65535  # 16-bit anomaly PNGs: value = round(score * 65535)
NAMING = (
    "Output files are named after the input file's stem (street.jpg -> anomaly/street.png, "
    "mask/street.png, semantic/street.png; video frames frame_000000, ...); inputs whose stems "
    "collide keep their full names (a.jpg, a.png -> anomaly/a.jpg.png, anomaly/a.png.png)."
)


def output_names(file_names: Sequence[str]) -> dict[str, str]:
    """Output name of each input file: its stem, or its full name where stems collide (a.jpg and
    a.png), so no input's files overwrite another's. Depends only on the set of inputs, so a
    rerun (also with --limit) names every frame as before."""
    names = {name: Path(name).stem for name in file_names}
    while True:
        counts = Counter(names.values())
        clashing = [n for n, out in names.items() if counts[out] > 1 and out != n]
        if not clashing:  # full file names are unique in a folder: this ends
            return names
        names.update({n: n for n in clashing})


def _save(path: Path, save: Callable[[Path], None], written: list[Path]) -> None:
    """Write one output file; a symlink there is replaced, not written through."""
    if path.is_symlink():
        path.unlink()
    written.append(path)
    save(path)


def _png(image: np.ndarray) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        try:
            ok = cv2.imwrite(str(path), image)
        except cv2.error as exc:
            raise OSError(f"could not write {path}: {one_line(exc)}") from exc
        if not ok:
            raise OSError(f"could not write {path} (disk full or folder not writable?)")

    return save


class FrameFiles:
    """Writes the per-frame files: anomaly/ (PNG and/or NPY), mask/ and semantic/ (PNG)."""

    def __init__(
        self, out: Path, save: str, threshold: float, palette: Sequence[Sequence[int]]
    ) -> None:
        self.out = out
        self.threshold = threshold
        self.palette = palette
        self.png = save in ("png", "both")
        self.npy = save in ("npy", "both")
        self.maps = save != "none"
        folders = {"anomaly": self.png or self.npy, "mask": self.maps, "semantic": self.maps}
        for name, wanted in folders.items():
            if wanted:
                (self.out / name).mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, result: SegmentationResult, score: np.ndarray) -> None:
        """All files of one frame (`score`: the mode's anomaly map), or none: a failed write
        removes the frame's files."""
        written: list[Path] = []
        try:
            if self.png:
                levels = np.round(np.clip(score, 0, 1) * SCORE_PNG_SCALE).astype(np.uint16)
                _save(self.out / "anomaly" / f"{name}.png", _png(levels), written)
            if self.npy:
                _save(self.out / "anomaly" / f"{name}.npy", lambda p: np.save(p, score), written)
            if self.maps:
                mask = anomaly_mask(score, self.threshold)
                _save(self.out / "mask" / f"{name}.png", _png(mask), written)
                semantic_bgr = colorize_semantic(result.semantic, self.palette)[..., ::-1]
                _save(self.out / "semantic" / f"{name}.png", _png(semantic_bgr), written)
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
