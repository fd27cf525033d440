"""16-bit grayscale PNG encoding at the speed the bag writer needs.

OpenCV spends ~38 ms on one 1920x1080 16-bit score map at zlib level 1 (libpng's deflate is most
of it), more than the rest of a frame's output writing. The PNG file format is small: scanlines
with a filter byte each, deflated into IDAT, framed by CRC'd chunks. Here the Sub filter (each
sample minus the one left of it, the filter the bag used with OpenCV) runs as one numpy
subtraction and the deflate stream comes from ISA-L (`isal`, ~6 ms for that map, a smaller file
than zlib level 1), or from the standard library's zlib when ISA-L is not installed (same file
format, zlib's speed). Any PNG reader decodes the result (cv2.imdecode, image_transport).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a runtime dependency; zlib keeps PNG working
    _deflate = zlib

LEVEL = 1  # ISA-L's level 1: its best speed / size trade for smooth score maps
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUB = 1  # PNG filter type: Raw(x) - Raw(x - bytes per pixel)
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _chunk(kind: bytes, data: bytes | memoryview) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)))


def sub_filtered(pixels: np.ndarray) -> np.ndarray:
    """PNG scanlines of uint16 `pixels` [H, W] with the Sub filter: [H, 1 + 2W] bytes, big-endian
    samples, each byte minus the byte one sample (two bytes) to its left (mod 256)."""
    raw = pixels.astype(">u2").view(np.uint8).reshape(pixels.shape[0], -1)
    lines = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    lines[:, 0] = _SUB
    lines[:, 1:3] = raw[:, :2]
    np.subtract(raw[:, 2:], raw[:, :-2], out=lines[:, 3:])
    return lines


def encode_png16(pixels: np.ndarray, level: int = LEVEL) -> bytes:
    """A 16-bit grayscale PNG file of uint16 `pixels` [H, W] (ValueError for anything else)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2 or 0 in pixels.shape:
        raise ValueError(
            f"a 16-bit PNG needs a non-empty 2-D uint16 array, got {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)  # 16-bit gray, no interlace
    data = _deflate.compress(sub_filtered(pixels).data, level)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _IEND))
