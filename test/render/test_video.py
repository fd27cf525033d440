"""The one video writer: every frame lands in a file OpenCV can play back, at the frame size, with
the codec it reports (H.264 where ffmpeg is installed, mp4v otherwise) and no temporary left."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from pixood_ros.render.video import VideoWriter


def _frame(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A frame whose brightness says its index (survives lossy coding)."""
    return np.full((height, width, 3), 20 + 40 * index, np.uint8)


def test_frames_written_are_played_back_in_order(tmp_path):
    path = tmp_path / "videos" / "clip.mp4"
    with VideoWriter(path, fps=5.0) as video:
        for index in range(5):
            video.write(_frame(index))
    assert video.frames == 5
    assert video.codec == ("h264" if shutil.which("ffmpeg") else "mp4v")
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.mp4"]  # no temporary left
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 64
    assert capture.get(cv2.CAP_PROP_FRAME_HEIGHT) == 48
    assert capture.get(cv2.CAP_PROP_FPS) == 5.0
    means = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        means.append(float(bgr.mean()))
    capture.release()
    assert len(means) == 5
    np.testing.assert_allclose(means, [20 + 40 * i for i in range(5)], atol=4)


def test_red_stays_red(tmp_path):
    """Frames are RGB: the writer converts them to OpenCV's BGR order."""
    path = tmp_path / "red.mp4"
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    with VideoWriter(path, fps=2.0) as video:
        video.write(red)
    ok, bgr = cv2.VideoCapture(str(path)).read()
    assert ok and bgr[..., 2].mean() > 200 and bgr[..., 0].mean() < 50


def test_no_frames_no_file(tmp_path):
    video = VideoWriter(tmp_path / "empty.mp4", fps=10.0)
    assert video.close() is None
    assert video.codec is None and not any(tmp_path.iterdir())
