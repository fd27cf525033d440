"""Frame sources: folders, single images and videos read the same way for every tool, with one
list of image suffixes; unreadable images either stop with one clear error or are skipped."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixood_ros.cli import UserError
from pixood_ros.frames import (
    IMAGE_SUFFIXES,
    SourceError,
    folder_or_video_source,
    input_source,
    read_rgb,
)


def _image(value: int) -> np.ndarray:
    image = np.zeros((8, 10, 3), np.uint8)
    image[..., 0] = value  # red
    return image


def _write(path, rgb) -> None:
    assert cv2.imwrite(str(path), rgb[..., ::-1])


def test_every_image_suffix_is_read_as_rgb(tmp_path):
    for index, suffix in enumerate(s for s in IMAGE_SUFFIXES if s not in (".jpg", ".jpeg")):
        if suffix == ".pgm":  # grey by definition
            continue
        path = tmp_path / f"img{index}{suffix}"
        _write(path, _image(200))
        np.testing.assert_array_equal(read_rgb(path), _image(200), err_msg=suffix)
    assert {".png", ".jpg", ".ppm", ".webp"} <= set(IMAGE_SUFFIXES)


def test_folder_single_image_and_video(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    _write(folder / "b.ppm", _image(30))
    _write(folder / "a.png", _image(10))
    (folder / "notes.txt").write_text("not an image")
    source = input_source(folder)
    frames = list(source.frames)
    assert source.count == 2 and [f.name for f in frames] == ["a.png", "b.ppm"]
    assert frames[1].rgb[0, 0, 0] == 30

    single = input_source(folder / "b.ppm")
    assert single.count == 1 and [f.name for f in single.frames] == ["b.ppm"]

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (10, 8))
    for value in (50, 150, 250):
        writer.write(_image(value)[..., ::-1])
    writer.release()
    source = input_source(video)
    frames = list(source.frames)
    assert source.native_rate == 7.0 and source.count == 3
    assert [f.name for f in frames] == ["frame_000000", "frame_000001", "frame_000002"]
    assert abs(int(frames[2].rgb[..., 0].mean()) - 250) < 10


def test_unreadable_images_raise_or_are_skipped(tmp_path):
    _write(tmp_path / "a.png", _image(10))
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="b.png: unreadable image"):
        list(input_source(tmp_path).frames)
    skipped = []
    source = input_source(tmp_path, on_unreadable=lambda path, exc: skipped.append(path.name))
    assert [f.name for f in source.frames] == ["a.png"] and skipped == ["b.png"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "input not found"),
        (lambda tmp: tmp, "no images"),
        (lambda tmp: (tmp / "notes.txt").write_text("x") and tmp / "notes.txt", "neither"),
    ],
)
def test_user_mistakes_are_user_errors(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        folder_or_video_source(make(tmp_path), None, None)
