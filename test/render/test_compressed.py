"""Compressed outputs (`render.compressed`, `OutputImages.compressed`): PNG forms decode to the
very bytes of the raw mask and class ids at every level, the JPEG overlay stays close to the raw
overlay, the `format` is compressed_image_transport's, and a changed threshold is rendered anew."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixood_ros.render.compressed import Compression, compressed_format, encode_picture
from pixood_ros.render.outputs import OutputImages


class PlainCompressed:
    """A CompressedImage class outside ROS."""

    header = None
    format = ""
    data = b""


def _decode(data) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("level", [0, 1, 9])
def test_png_forms_are_lossless_at_every_level(level):
    rng = np.random.default_rng(level)
    labels = rng.integers(0, 19, (37, 53), dtype=np.uint8)
    labels[:, 20:] = 7  # long runs, as in real class maps
    mask = np.where(rng.random((37, 53)) > 0.8, 255, 0).astype(np.uint8)
    for name, pixels in (("semantic", labels), ("anomaly_mask", mask)):
        np.testing.assert_array_equal(
            _decode(encode_picture(name, pixels, Compression(90, level))), pixels
        )


def test_compressed_messages_share_the_rendering_and_carry_the_header():
    height, width = 48, 64
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.stack([rows * 5, cols * 4, rows + cols], -1).astype(np.uint8)  # smooth: JPEG-friendly
    outputs = OutputImages(compressed_type=PlainCompressed)
    buffers = outputs.engine_buffers(height, width)
    buffers.anomaly_score[:] = cols / width  # the right half is flagged at 0.5
    buffers.semantic[:] = rows // 8
    header = object()
    raw_overlay = np.array(outputs.pixels("overlay", rgb, 0.5, 0.6))
    jpeg = outputs.compressed("overlay", rgb, header, 0.5, 0.6, Compression(jpeg_quality=95))
    assert jpeg.header is header and jpeg.format == compressed_format("overlay", "bgr8")
    assert jpeg.format == "bgr8; jpeg compressed bgr8"
    assert np.abs(_decode(jpeg.data).astype(int) - raw_overlay).mean() < 2.0
    mask = outputs.compressed("anomaly_mask", rgb, header, 0.5, 0.6, Compression())
    assert mask.format == "mono8; png compressed mono8"
    np.testing.assert_array_equal(_decode(mask.data), np.where(cols >= width / 2, 255, 0))
    # a new threshold within the frame is rendered anew, a new frame too
    moved = outputs.compressed("anomaly_mask", rgb, header, 0.75, 0.6, Compression())
    np.testing.assert_array_equal(_decode(moved.data), np.where(cols >= 0.75 * width, 255, 0))
