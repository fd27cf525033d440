"""Compressed forms of the node's picture outputs, on image_transport's `<topic>/compressed`.

A remote viewer or a recorder over Wi-Fi cannot take 12 MB of raw outputs per 1280x720 frame.
The overlay is for eyes, so it goes out as JPEG; the mask and the class ids are data, so they go
out as PNG, which is lossless: a decoded PNG mask equals `~/anomaly_mask` byte for byte. The
`format` field follows compressed_image_transport ("bgr8; jpeg compressed bgr8"), so its
republisher and rqt_image_view decode them, and so does our own input decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# Output name -> codec of its compressed form (the float outputs have none: PNG holds no float).
CODECS = {"overlay": "jpeg", "anomaly_mask": "png", "semantic": "png"}
DEFAULT_JPEG_QUALITY = 90
DEFAULT_PNG_LEVEL = 1  # zlib level; masks and class ids shrink well even at level 1
COMPRESSED_SUFFIX = "/compressed"
# Masks and class ids are long runs of equal bytes: without PNG's row filters and with zlib's
# run-length matching they encode ~4x faster than with the defaults and smaller (a 1280x720
# synthetic-scene mask: under 1 KB in 1.4 ms CPU, against 4 KB in 6 ms).
_PNG_RUNS = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11; older ones keep their filters
    _PNG_RUNS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


@dataclass(frozen=True)
class Compression:
    """Encoder settings of the compressed outputs."""

    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    png_level: int = DEFAULT_PNG_LEVEL


def compressed_format(name: str, encoding: str) -> str:
    """The CompressedImage `format` of output `name` in `encoding`, image_transport style."""
    return f"{encoding}; {CODECS[name]} compressed {encoding}"


def encode_picture(name: str, pixels: np.ndarray, compression: Compression) -> np.ndarray:
    """The compressed bytes (a uint8 array) of output `name`'s pixels (BGR or mono8)."""
    if CODECS[name] == "jpeg":
        ok, data = cv2.imencode(
            ".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, compression.jpeg_quality]
        )
    else:
        ok, data = cv2.imencode(
            ".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, compression.png_level, *_PNG_RUNS]
        )
    if not ok:
        raise ValueError(f"OpenCV could not encode {name} as {CODECS[name]}")
    return data


def _default_compressed_type() -> type:
    from sensor_msgs.msg import CompressedImage

    return CompressedImage


def compressed_message(
    name: str,
    encoding: str,
    pixels: np.ndarray,
    header: Any,
    compression: Compression,
    msg_type: type | None = None,
) -> Any:
    """A CompressedImage (or `msg_type`) of output `name` with the camera frame's `header`."""
    msg = (msg_type or _default_compressed_type())()
    msg.header = header
    msg.format = compressed_format(name, encoding)
    msg.data = encode_picture(name, pixels, compression).tobytes()
    return msg
