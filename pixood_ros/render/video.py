"""MP4 videos of rendered frames, playable in browsers when an H.264 encoder (ffmpeg) is present.

One writer for every tool that makes a video, so they all produce the same kind of file and say
which codec it has."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np


class VideoWriter:
    """MP4 writer for RGB frames of one size: OpenCV (mp4v) while frames arrive, then re-encoded
    to H.264 with ffmpeg when it is on PATH (mp4v does not play in browsers or most chat tools);
    `codec` says which one the file has. Opens on the first frame (the size is known only then).
    Use as a context manager."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self._raw = self.path.with_name(self.path.stem + ".mp4v.mp4")
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0
        self.codec: str | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = rgb.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._raw), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write video {self._raw}")
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path (None when no frame was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is not None:
            command = [
                ffmpeg, "-y", "-loglevel", "error", "-i", str(self._raw), "-c:v", "libx264",
                "-pix_fmt", "yuv420p", "-crf", "23", "-preset", "veryfast", str(self.path),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                self._raw.unlink(missing_ok=True)
                self.codec = "h264"
                return self.path
        self._raw.replace(self.path)
        self.codec = "mp4v"
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
