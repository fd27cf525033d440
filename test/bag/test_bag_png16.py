"""The bag's own 16-bit PNG writer: files any PNG reader decodes to the exact samples, with ISA-L
and with the standard library's zlib (what runs where isal is not installed)."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from pixood_ros.bag import png16

SHAPES = [(1, 1), (1, 7), (5, 1), (37, 53), (240, 320)]


def _decoded(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None, "OpenCV could not read the PNG"
    return pixels


@pytest.mark.parametrize("shape", SHAPES)
def test_random_samples_round_trip_exactly(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 1 << 16, shape, dtype=np.uint16)
    pixels.flat[0], pixels.flat[-1] = 0, 65535  # both ends of the range
    decoded = _decoded(png16.encode_png16(pixels))
    assert decoded.dtype == np.uint16 and decoded.shape == shape
    np.testing.assert_array_equal(decoded, pixels)


def test_standard_zlib_writes_the_same_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without isal the file is still a valid PNG of the same samples."""
    pixels = np.random.default_rng(1).integers(0, 1 << 16, (31, 45), dtype=np.uint16)
    monkeypatch.setattr(png16, "_deflate", zlib)
    np.testing.assert_array_equal(_decoded(png16.encode_png16(pixels)), pixels)


def test_a_smooth_score_map_is_about_as_small_as_with_opencv() -> None:
    """A patch grid upsampled bilinearly (how the model's score maps are made): within 10 % of the
    size OpenCV's zlib level 1 gave the bag before, and under half of the raw 2 bytes per pixel."""
    grid = np.random.default_rng(2).random((18, 32), dtype=np.float32)
    upsampled = cv2.resize(grid, (480, 270), interpolation=cv2.INTER_LINEAR)
    smooth = (upsampled * 65535).astype(np.uint16)
    data = png16.encode_png16(smooth)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11: the Sub filter the bag used
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
    assert len(data) <= 1.1 * cv2.imencode(".png", smooth, params)[1].size
    assert len(data) < smooth.nbytes / 2
    np.testing.assert_array_equal(_decoded(data), smooth)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 1), np.uint16), np.zeros((0, 4), np.uint16)],
    ids=["uint8", "three-dimensional", "empty"],
)
def test_anything_but_a_2d_uint16_array_is_refused(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="16-bit PNG"):
        png16.encode_png16(pixels)
