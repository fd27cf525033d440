"""sensor_msgs/Image and CompressedImage <-> numpy, with every malformed input caught.

Camera drivers, bag files and hand-written publishers all produce broken frames now and then
(wrong `step`, truncated data, an encoding we do not know, NaN in a depth image, a half-written
JPEG). The node must skip such a frame and keep serving, and it needs to know *what* was wrong
to count it per kind in its diagnostics, so every problem raises `BadImage(kind, message)`.

Functions read only message attributes (`height`, `width`, `encoding`, `is_bigendian`, `step`,
`data`; `format`, `data` for compressed images), so rclpy messages, rosbags' message classes and
plain test objects all work. Encoding semantics follow ROS' cv_bridge (and rosbags-image):

- ``yuv422``/``uyvy`` are U Y0 V Y1 byte order, ``yuv422_yuy2``/``yuyv`` are Y0 U Y1 V
  (ITU-R BT.601, video range, as OpenCV decodes them);
- ``bayer_rggb8`` etc. name the top-left 2x2 tile; they are demosaiced bilinearly;
- 16-bit colour/mono images are scaled to 8 bit by 255/65535 (cv_bridge's depth conversion);
- ``8UC3``/``8UC4`` carry no channel order (cv_bridge passes them through unchanged to any
  colour encoding asked for); we read them as BGR/BGRA because their usual producer is
  ``cv2_to_imgmsg(bgr_image)`` with the default passthrough encoding;
- ``16UC1``, ``32FC1`` and ``64FC1`` (depth-like images) are min-max normalised per frame to
  gray, like cv_bridge's ``cvtColorForDisplay``; NaN/inf are rejected, never silently mapped.

The decode is numpy and OpenCV only (not cv_bridge): the same pixels on every install.
"""

from __future__ import annotations

import array
import math
import struct
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# Kinds of bad input, counted separately in the node's diagnostics.
EMPTY = "empty"
TOO_LARGE = "too_large"
BAD_STEP = "bad_step"
SIZE_MISMATCH = "size_mismatch"
BAD_DIMENSIONS = "bad_dimensions"
UNSUPPORTED_ENCODING = "unsupported_encoding"
NON_FINITE = "non_finite"
CORRUPT_COMPRESSED = "corrupt_compressed"
BAD_IMAGE_KINDS = (EMPTY, TOO_LARGE, BAD_STEP, SIZE_MISMATCH, BAD_DIMENSIONS)
BAD_IMAGE_KINDS += (UNSUPPORTED_ENCODING, NON_FINITE, CORRUPT_COMPRESSED)

# 8K UHD: far beyond any camera a robot carries, small enough not to exhaust memory.
DEFAULT_MAX_PIXELS = 7680 * 4320

_SYSTEM_BIG_ENDIAN = sys.byteorder == "big"


class BadImage(ValueError):
    """A frame that cannot be turned into pixels; `kind` is one of `BAD_IMAGE_KINDS`."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in BAD_IMAGE_KINDS:
            raise ValueError(f"unknown BadImage kind {kind!r}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class _Encoding:
    channels: int
    dtype: str  # numpy dtype name, native byte order
    to_rgb: str  # how the native array becomes RGB uint8 (see _to_rgb8)


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(3, "uint8", "rgb"),
    "bgr8": _Encoding(3, "uint8", "bgr"),
    "rgba8": _Encoding(4, "uint8", "rgba"),
    "bgra8": _Encoding(4, "uint8", "bgra"),
    "rgb16": _Encoding(3, "uint16", "rgb"),
    "bgr16": _Encoding(3, "uint16", "bgr"),
    "rgba16": _Encoding(4, "uint16", "rgba"),
    "bgra16": _Encoding(4, "uint16", "bgra"),
    "mono8": _Encoding(1, "uint8", "gray"),
    "mono16": _Encoding(1, "uint16", "gray"),
    "8UC1": _Encoding(1, "uint8", "gray"),
    "8UC3": _Encoding(3, "uint8", "bgr"),
    "8UC4": _Encoding(4, "uint8", "bgra"),
    "16UC1": _Encoding(1, "uint16", "normalize"),
    "32FC1": _Encoding(1, "float32", "normalize"),
    "64FC1": _Encoding(1, "float64", "normalize"),
    "yuv422": _Encoding(2, "uint8", "uyvy"),
    "uyvy": _Encoding(2, "uint8", "uyvy"),
    "yuv422_yuy2": _Encoding(2, "uint8", "yuyv"),
    "yuyv": _Encoding(2, "uint8", "yuyv"),
    "bayer_rggb8": _Encoding(1, "uint8", "bayer_rggb"),
    "bayer_bggr8": _Encoding(1, "uint8", "bayer_bggr"),
    "bayer_gbrg8": _Encoding(1, "uint8", "bayer_gbrg"),
    "bayer_grbg8": _Encoding(1, "uint8", "bayer_grbg"),
    "bayer_rggb16": _Encoding(1, "uint16", "bayer_rggb"),
    "bayer_bggr16": _Encoding(1, "uint16", "bayer_bggr"),
    "bayer_gbrg16": _Encoding(1, "uint16", "bayer_gbrg"),
    "bayer_grbg16": _Encoding(1, "uint16", "bayer_grbg"),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)

# OpenCV names a Bayer pattern after the 2nd and 3rd pixel of the 2nd row, ROS after the
# top-left 2x2 tile, so the names are shifted (the same table cv_bridge uses).
_BAYER_TO_RGB = {
    "bayer_rggb": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg": cv2.COLOR_BayerGB2RGB,
}

# Output encodings the node publishes: encoding -> (channels, dtype).
_OUTPUT_ENCODINGS = {
    "32FC1": (1, np.dtype("float32")),
    "mono8": (1, np.dtype("uint8")),
    "bgr8": (3, np.dtype("uint8")),
    "rgb8": (3, np.dtype("uint8")),
}


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImage(EMPTY, f"image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise BadImage(
            TOO_LARGE, f"{width}x{height} exceeds the limit of {max_pixels} pixels (max_pixels)"
        )


def _as_bytes_array(data: Any) -> np.ndarray:
    """Message `data` (array.array, bytes, numpy array, list) as a flat uint8 view, no copy."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an Image message into its native pixels: (H, W) or (H, W, C), native byte order.

    Row padding is removed and multi-byte pixels are swapped to the machine's byte order.
    The result owns its memory (safe to keep after the message is gone).
    """
    encoding = str(msg.encoding)
    spec = _ENCODINGS.get(encoding)
    if spec is None:
        raise BadImage(
            UNSUPPORTED_ENCODING,
            f"encoding {encoding!r} is not supported (supported: {', '.join(SUPPORTED_ENCODINGS)})",
        )
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    if spec.to_rgb in ("uyvy", "yuyv") and width % 2:
        raise BadImage(BAD_DIMENSIONS, f"{encoding} needs an even width, got {width}")
    dtype = np.dtype(spec.dtype)
    row_bytes = width * spec.channels * dtype.itemsize
    if step < row_bytes:
        raise BadImage(
            BAD_STEP,
            f"step {step} is smaller than width*channels*bytes = {width}*{spec.channels}"
            f"*{dtype.itemsize} = {row_bytes} for {encoding}",
        )
    raw = _as_bytes_array(msg.data)
    if raw.size != step * height:
        raise BadImage(
            SIZE_MISMATCH,
            f"data has {raw.size} bytes but step*height = {step}*{height} = {step * height}",
        )
    rows = raw.reshape(height, step)[:, :row_bytes]
    big_endian = bool(msg.is_bigendian)
    wire_dtype = dtype.newbyteorder(">" if big_endian else "<") if dtype.itemsize > 1 else dtype
    # One copy detaches the pixels from the message buffer; the byte swap (if any) is in place.
    pixels = np.array(rows, copy=True).view(wire_dtype)
    if wire_dtype != dtype:
        pixels = pixels.byteswap().view(dtype)
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    return pixels.reshape(shape)


def image_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Image message -> RGB uint8 (H, W, 3), the model's input, for every supported encoding."""
    pixels = image_to_array(msg, max_pixels=max_pixels)
    return _to_rgb8(pixels, _ENCODINGS[str(msg.encoding)].to_rgb)


def _scale16_to_8(pixels: np.ndarray) -> np.ndarray:
    # cv_bridge converts depth with convertTo(alpha = 255/65535), i.e. round(x / 257).
    return ((pixels.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def _normalize_to_gray(pixels: np.ndarray) -> np.ndarray:
    values = pixels.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        raise BadImage(NON_FINITE, f"{bad} NaN/inf value(s) in a float image")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    if not math.isfinite(high - low):  # e.g. -1.7e308..1.7e308: halving is exact, fits float64
        values, low, high = values * 0.5, low * 0.5, high * 0.5
    # (values - low) <= high - low: no step can overflow; dividing first keeps tiny spans finite.
    scaled = values - low
    scaled /= high - low
    scaled *= 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb8(pixels: np.ndarray, how: str) -> np.ndarray:
    if how == "normalize":
        return cv2.cvtColor(_normalize_to_gray(pixels), cv2.COLOR_GRAY2RGB)
    if how in ("uyvy", "yuyv"):
        code = cv2.COLOR_YUV2RGB_UYVY if how == "uyvy" else cv2.COLOR_YUV2RGB_YUY2
        return cv2.cvtColor(np.ascontiguousarray(pixels), code)
    if how.startswith("bayer_"):
        rgb = cv2.cvtColor(np.ascontiguousarray(pixels), _BAYER_TO_RGB[how])
        return _scale16_to_8(rgb) if rgb.dtype == np.uint16 else rgb
    if pixels.dtype == np.uint16:
        pixels = _scale16_to_8(pixels)
    if how == "rgb":
        return np.ascontiguousarray(pixels)
    code = {
        "bgr": cv2.COLOR_BGR2RGB,
        "rgba": cv2.COLOR_RGBA2RGB,
        "bgra": cv2.COLOR_BGRA2RGB,
        "gray": cv2.COLOR_GRAY2RGB,
    }[how]
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


# --- compressed images --------------------------------------------------------------------------

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8"
# OpenCV >= 4.10 decodes a JPEG straight to RGB (the same bytes as BGR + cvtColor; measured 7.6
# against 8.0 ms median per 1080p frame); older ones take the general path.
_JPEG_TO_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
# compressed_depth_image_transport prepends a 12-byte ConfigHeader (int32 + 2 float32) to a PNG.
_COMPRESSED_DEPTH_HEADER = 12


def _compressed_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG/JPEG header without decoding (to refuse a decompression bomb
    before OpenCV allocates the pixels), or None if it cannot be read."""
    if data.startswith(_PNG_MAGIC) and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])  # IHDR: always the first chunk
    return _jpeg_dimensions(data) if data.startswith(_JPEG_MAGIC) else None


# Markers without a length field: TEM, RST0..RST7, SOI.
_JPEG_STANDALONE = frozenset((0x01, *range(0xD0, 0xD9)))
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG markers as a decoder does (any number of 0xFF fill bytes before a marker
    code, segments skipped by their length) up to the first frame header (SOFn)."""
    pos, end = 2, len(data)  # after SOI
    while pos < end:
        if data[pos] != 0xFF:
            return None  # garbage between segments: a layout we refuse to guess about
        while pos < end and data[pos] == 0xFF:
            pos += 1
        marker = data[pos] if pos < end else 0x00
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD9, 0xDA) or pos + 2 > end:  # end, EOI or SOS before SOFn
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if marker in _JPEG_SOF:
            if length < 8 or pos + 7 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return width, height
        if length < 2:
            return None
        pos += length
    return None


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """CompressedImage (jpeg/png, incl. compressedDepth png) -> RGB uint8 (H, W, 3)."""
    fmt = str(getattr(msg, "format", "")).lower()
    data = _as_bytes_array(msg.data).tobytes()
    if "compresseddepth" in fmt:
        data = data[_COMPRESSED_DEPTH_HEADER:]
    if not data:
        raise BadImage(EMPTY, f"compressed image ({fmt or 'no format'}) has no data")
    dims = _compressed_dimensions(data)
    if dims is None:
        raise BadImage(
            CORRUPT_COMPRESSED,
            f"no PNG/JPEG header with an image size (format {fmt!r}, starts with {data[:4].hex()})",
        )
    _check_size(dims[0], dims[1], max_pixels)  # before OpenCV allocates the pixels
    jpeg_to_rgb = _JPEG_TO_RGB is not None and data.startswith(_JPEG_MAGIC)
    flags = _JPEG_TO_RGB if jpeg_to_rgb else cv2.IMREAD_UNCHANGED
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if decoded is None or decoded.shape[:2] != (dims[1], dims[0]):
        raise BadImage(CORRUPT_COMPRESSED, f"OpenCV could not decode the {fmt or 'image'} data")
    if jpeg_to_rgb:
        return decoded
    if "compresseddepth" in fmt:
        return _to_rgb8(decoded, "normalize")
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    return _to_rgb8(decoded, {1: "gray", 4: "bgra"}.get(channels, "bgr"))


def message_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Image or CompressedImage -> RGB uint8, told apart by their attributes."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_rgb(msg, max_pixels=max_pixels)
    return image_to_rgb(msg, max_pixels=max_pixels)


# --- numpy -> Image (outputs) -------------------------------------------------------------------


def _default_image_type() -> type:
    from sensor_msgs.msg import Image

    return Image


def _check_output(encoding: str) -> tuple[int, np.dtype]:
    if encoding not in _OUTPUT_ENCODINGS:
        raise ValueError(
            f"cannot publish encoding {encoding!r}; use one of {list(_OUTPUT_ENCODINGS)}"
        )
    return _OUTPUT_ENCODINGS[encoding]


def _is_ros_message_type(msg_type: type) -> bool:
    return hasattr(msg_type, "get_fields_and_field_types")


def _new_image(
    height: int, width: int, encoding: str, header: Any, msg_type: type, data: Any
) -> Any:
    """An Image message of `msg_type` with `data` given to the constructor."""
    channels, dtype = _OUTPUT_ENCODINGS[encoding]
    fields = {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(_SYSTEM_BIG_ENDIAN),
        "step": width * channels * dtype.itemsize,
        "data": data,
    }
    if header is not None:
        fields["header"] = header
    return msg_type(**fields)


def array_to_image(
    pixels: np.ndarray, encoding: str, header: Any = None, msg_type: type | None = None
) -> Any:
    """numpy -> Image message with `header` copied in (32FC1, mono8, bgr8 or rgb8).

    `msg_type` defaults to sensor_msgs.msg.Image; rosbags' Image class works as well (its
    `data` field then gets a numpy array instead of an array.array).
    """
    channels, dtype = _check_output(encoding)
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        raise ValueError(
            f"{encoding} needs shape (H, W{', 3' if channels > 1 else ''}), got {pixels.shape}"
        )
    if pixels.dtype != dtype:
        raise ValueError(f"{encoding} needs dtype {dtype}, got {pixels.dtype}")
    height, width = pixels.shape[:2]
    payload = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)
    msg_type = msg_type or _default_image_type()
    if not _is_ros_message_type(msg_type):
        return _new_image(height, width, encoding, header, msg_type, payload.copy())
    # rclpy's constructor and `data` setter copy whatever they get into a new array.array;
    # filling the message's own (empty) array in place makes this the only copy.
    msg = _new_image(height, width, encoding, header, msg_type, ())
    msg.data.frombytes(payload)
    return msg


def image_message_layout(
    height: int, width: int, encoding: str, msg_type: type | None = None
) -> tuple[Any, np.ndarray]:
    """An Image message with room for `height` x `width` pixels, and a writable numpy view of
    its `data` as (H, W) or (H, W, C) pixels of the encoding's dtype.

    Writing into the view fills the message without a copy, so a publisher can keep one
    message per output and refill it every frame (rclpy copies it during `publish()`).
    """
    channels, dtype = _check_output(encoding)
    size = height * width * channels * dtype.itemsize
    msg_type = msg_type or _default_image_type()
    if _is_ros_message_type(msg_type):
        msg = _new_image(height, width, encoding, None, msg_type, ())
        msg.data.frombytes(bytes(size))
        raw = np.frombuffer(msg.data, dtype=np.uint8)
    else:
        raw = np.zeros(size, np.uint8)
        msg = _new_image(height, width, encoding, None, msg_type, raw)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return msg, raw.view(dtype).reshape(shape)
