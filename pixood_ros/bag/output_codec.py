"""How the node's outputs are stored in a bag: the compact form bag-eval writes by default and the
raw form the node publishes (and `--raw-outputs` writes), and reading either back.

Compact form (about 1-2 MB per 1920x1080 frame instead of 28 MB; docs/architecture.md):
- `anomaly_score` and `confidence`: 16-bit PNG `CompressedImage` on `<name>/compressed`
  (image_transport's topic convention), value v = floor(score * 65536) clipped to 65535,
  written by png16.py (ISA-L deflate: ~7 ms per 1080p score map where OpenCV took ~38). The
  decoded score v / 65536 is at most 1/65536 below the true one and never above it, and it falls
  in the same bin of `PixelMetricAccumulator` (65536 bins, the same floor), so binned pixel
  metrics of a decoded bag equal those of the full-precision scores.
- `overlay`: JPEG `CompressedImage` on `overlay/compressed` (a picture for people).
- `anomaly_mask` and `semantic`: raw mono8 `Image` on the node's topics; they compress to a few
  kB in the bag's zstd chunks, cheaper and smaller than PNG. The mask is computed from the
  full-precision scores, so it is exact.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pixood_ros import image_conversion
from pixood_ros.bag import bagio
from pixood_ros.bag.png16 import encode_png16
from pixood_ros.render.compressed import (
    COMPRESSED_SUFFIX,
    Compression,
    compressed_format,
    encode_picture,
)
from pixood_ros.render.outputs import ENCODINGS

SCORE_SCALE = 65536  # = pixood_ros.metrics.pixel's default bins
SCORE_ERROR_BOUND = 1.0 / SCORE_SCALE
_QUANTISED = ("anomaly_score", "confidence")
_PNG16 = "mono16; png compressed mono16"
# The overlay as the node's overlay/compressed: same format and encoder settings.
_FORMATS = {
    "anomaly_score": _PNG16,
    "confidence": _PNG16,
    "overlay": compressed_format("overlay", "bgr8"),
}


def quantise(scores: np.ndarray) -> np.ndarray:
    """uint16 floor(scores * 65536), clipped to [0, 65535] (exact: 65536 is a power of two)."""
    scaled = np.multiply(scores, np.float32(SCORE_SCALE), dtype=np.float32)
    np.clip(scaled, 0, SCORE_SCALE - 1, out=scaled)
    return scaled.astype(np.uint16)


def dequantise(values: np.ndarray) -> np.ndarray:
    """float32 scores of quantised values (the lower edge of each value's interval)."""
    return values.astype(np.float32) * np.float32(1.0 / SCORE_SCALE)


def stored_form(name: str, raw: bool) -> tuple[str, str]:
    """(topic suffix, message type) of output `name` in the raw or the compact form."""
    if raw or name not in _FORMATS:
        return name, bagio.IMAGE_TYPE
    return name + COMPRESSED_SUFFIX, bagio.COMPRESSED_TYPE


def encode(name: str, pixels: np.ndarray, header: Any, raw: bool) -> bytes:
    """Serialized message of output `name` (pixels as the node renders them) in either form."""
    if raw or name not in _FORMATS:
        msg_type = bagio.TYPESTORE.types[bagio.IMAGE_TYPE]
        return bagio.serialize(
            image_conversion.array_to_image(pixels, ENCODINGS[name], header, msg_type=msg_type)
        )
    if name in _QUANTISED:
        data = np.frombuffer(encode_png16(quantise(pixels)), np.uint8)
    else:
        data = encode_picture(name, pixels, Compression())
    CompressedImage = bagio.TYPESTORE.types[bagio.COMPRESSED_TYPE]
    return bagio.serialize(
        CompressedImage(header=header, format=_FORMATS[name], data=data.reshape(-1))
    )


def decode(name: str, msg: Any) -> np.ndarray:
    """Pixels of output `name` from either form: float32 scores / confidence, mono8 mask and
    semantic, BGR overlay (image_conversion.BadImage for undecodable data)."""
    if hasattr(msg, "encoding"):
        return image_conversion.image_to_array(msg)
    pixels = cv2.imdecode(np.asarray(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise image_conversion.BadImage(f"undecodable {name} ({msg.format!r})")
    return dequantise(pixels) if name in _QUANTISED else pixels
