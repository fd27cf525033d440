"""Image / CompressedImage <-> numpy: every encoding against hand-made byte vectors, row padding,
big-endian data, and every kind of bad frame raising the right `BadImage` kind.

rosbags-image (the reference for encoding semantics named in docs/architecture.md §6) is
compared where it is installed.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest

from pixood_ros import image_conversion as ic
from pixood_ros.image_conversion import BadImage


@dataclass
class FakeImage:
    """Only the attributes of sensor_msgs/Image: what the conversion is allowed to read."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


@dataclass
class FakeCompressed:
    format: str
    data: bytes
    header: object = field(default=None)


def make_image(
    pixels: np.ndarray, encoding: str, big_endian: bool = False, padding: int = 0
) -> FakeImage:
    """Serialise native pixels the way a driver would, optionally with row padding bytes."""
    height, width = pixels.shape[:2]
    wire = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<"))
    rows = wire.reshape(height, -1).view(np.uint8)
    pad = np.full((height, padding), 0xEE, dtype=np.uint8)
    data = np.concatenate([rows, pad], axis=1)
    return FakeImage(height, width, encoding, int(big_endian), data.shape[1], data.tobytes())


RGB = np.array(
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [200, 100, 50], [7, 8, 9]]],
    dtype=np.uint8,
)  # 2 x 3
GRAY = np.array([[0, 1, 128], [254, 255, 77]], dtype=np.uint8)


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def bt601(y: int, u: int, v: int) -> np.ndarray:
    """Video-range BT.601 YUV -> RGB, the reference formula for the 4:2:2 encodings."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    rgb = [c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d]
    return np.clip(np.rint(rgb), 0, 255)


def _mono16_vector():
    values = np.array([[0, 257, 65535], [128, 384, 32896]], dtype=np.uint16)
    # round(x / 257): 128/257 -> 0, 384/257 -> 1.49 -> 1, 32896/257 -> 128
    return values, gray_rgb(np.array([[0, 1, 255], [0, 1, 128]], dtype=np.uint8))


def _rgb16_vector():
    values = RGB.astype(np.uint16) * 257  # exact multiples: 8-bit values come back exactly
    return values, RGB


def _float_vector(dtype):
    values = np.array([[-1.0, 0.0, 1.0], [0.5, 3.0, 2.0]], dtype=dtype)
    # min-max to 0..255: (v + 1) / 4 * 255
    expected = np.rint((values.astype(np.float64) + 1) / 4 * 255).astype(np.uint8)
    return values, gray_rgb(expected)


def _yuv_vectors():
    """Two pixel pairs: gray (U=V=128) and a saturated red-ish colour, in both byte orders."""
    pairs = [((16, 235), 128, 128), ((81, 81), 90, 240)]
    uyvy = np.array([[[u, y0], [v, y1]] for (y0, y1), u, v in pairs], dtype=np.uint8)
    uyvy = uyvy.reshape(1, 4, 2)
    yuyv = np.array([[[y0, u], [y1, v]] for (y0, y1), u, v in pairs], dtype=np.uint8)
    yuyv = yuyv.reshape(1, 4, 2)
    expected = np.array(
        [[bt601(y, u, v) for (ys, u, v) in pairs for y in ys]], dtype=np.uint8
    )  # 1 x 4 x 3
    return uyvy, yuyv, expected


def _bayer_mosaic(pattern: str, rgb=(200, 100, 50), size=(6, 8), dtype=np.uint8, scale=1):
    """A constant-colour scene seen through a Bayer filter named like ROS names it."""
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.zeros(size, dtype=dtype)
    for index, letter in enumerate(pattern):
        row, col = divmod(index, 2)
        mosaic[row::2, col::2] = rgb[channel[letter]] * scale
    return mosaic, np.broadcast_to(np.array(rgb, np.uint8), (*size, 3))


def encoding_vectors():
    """(encoding, native pixels, expected RGB uint8, tolerance) for every supported encoding."""
    mono16, mono16_rgb = _mono16_vector()
    rgb16, rgb16_rgb = _rgb16_vector()
    uyvy, yuyv, yuv_rgb = _yuv_vectors()
    alpha = np.full((2, 3, 1), 99, dtype=np.uint8)
    vectors = [
        ("rgb8", RGB, RGB, 0),
        ("bgr8", RGB[:, :, ::-1].copy(), RGB, 0),
        ("rgba8", np.concatenate([RGB, alpha], axis=2), RGB, 0),
        ("bgra8", np.concatenate([RGB[:, :, ::-1], alpha], axis=2), RGB, 0),
        ("8UC3", RGB[:, :, ::-1].copy(), RGB, 0),
        ("8UC4", np.concatenate([RGB[:, :, ::-1], alpha], axis=2), RGB, 0),
        ("mono8", GRAY, gray_rgb(GRAY), 0),
        ("8UC1", GRAY, gray_rgb(GRAY), 0),
        ("mono16", mono16, mono16_rgb, 0),
        ("rgb16", rgb16, rgb16_rgb, 0),
        ("bgr16", rgb16[:, :, ::-1].copy(), rgb16_rgb, 0),
        ("rgba16", np.concatenate([rgb16, alpha.astype(np.uint16)], axis=2), rgb16_rgb, 0),
        ("bgra16", np.concatenate([rgb16[:, :, ::-1], alpha.astype(np.uint16)], 2), rgb16_rgb, 0),
        ("16UC1", (np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000 + 500), None, 0),
        ("32FC1", *_float_vector(np.float32), 0),
        ("64FC1", *_float_vector(np.float64), 0),
        ("yuv422", uyvy, yuv_rgb, 1),
        ("uyvy", uyvy, yuv_rgb, 1),
        ("yuv422_yuy2", yuyv, yuv_rgb, 1),
        ("yuyv", yuyv, yuv_rgb, 1),
    ]
    depth = vectors[13][1]
    vectors[13] = ("16UC1", depth, gray_rgb(np.rint(np.arange(6) * 51).reshape(2, 3)), 0)
    for pattern in ("rggb", "bggr", "gbrg", "grbg"):
        vectors.append((f"bayer_{pattern}8", *_bayer_mosaic(pattern), 0))
        mosaic16, expected = _bayer_mosaic(pattern, dtype=np.uint16, scale=257)
        vectors.append((f"bayer_{pattern}16", mosaic16, expected, 0))
    return vectors


VECTORS = encoding_vectors()
VECTOR_IDS = [v[0] for v in VECTORS]


def test_every_supported_encoding_has_a_vector():
    assert set(VECTOR_IDS) == set(ic.SUPPORTED_ENCODINGS)


@pytest.mark.parametrize("big_endian", [False, True], ids=["little", "big"])
@pytest.mark.parametrize("padding", [0, 5], ids=["dense", "padded"])
@pytest.mark.parametrize(("encoding", "pixels", "expected", "tol"), VECTORS, ids=VECTOR_IDS)
def test_encoding_to_rgb(encoding, pixels, expected, tol, padding, big_endian):
    msg = make_image(pixels, encoding, big_endian=big_endian, padding=padding)
    native = ic.image_to_array(msg)
    assert native.dtype == pixels.dtype.newbyteorder("=")
    np.testing.assert_array_equal(native, pixels)
    rgb = ic.image_to_rgb(msg)
    assert rgb.dtype == np.uint8 and rgb.shape == (*pixels.shape[:2], 3)
    diff = np.abs(rgb.astype(int) - np.asarray(expected, dtype=int))
    assert diff.max() <= tol, f"{encoding}: max difference {diff.max()}"


def test_decoded_pixels_do_not_alias_the_message_buffer():
    data = bytearray(make_image(RGB, "rgb8").data)
    msg = FakeImage(2, 3, "rgb8", 0, 9, data)
    rgb = ic.image_to_rgb(msg)
    data[:] = bytes(len(data))
    np.testing.assert_array_equal(rgb, RGB)


@pytest.mark.parametrize(("encoding", "pixels", "expected", "tol"), VECTORS, ids=VECTOR_IDS)
def test_rosbags_message_classes_are_accepted(encoding, pixels, expected, tol):
    typestore = pytest.importorskip("rosbags.typesys").get_typestore
    from rosbags.typesys import Stores

    store = typestore(Stores.ROS2_KILTED)
    image_type = store.types["sensor_msgs/msg/Image"]
    header_type = store.types["std_msgs/msg/Header"]
    time_type = store.types["builtin_interfaces/msg/Time"]
    fake = make_image(pixels, encoding, padding=3)
    msg = image_type(
        header=header_type(stamp=time_type(sec=1, nanosec=2), frame_id="cam"),
        height=fake.height,
        width=fake.width,
        encoding=encoding,
        is_bigendian=0,
        step=fake.step,
        data=np.frombuffer(fake.data, dtype=np.uint8),
    )
    diff = np.abs(ic.image_to_rgb(msg).astype(int) - np.asarray(expected, dtype=int))
    assert diff.max() <= tol


@pytest.mark.parametrize(("encoding", "pixels", "expected", "tol"), VECTORS, ids=VECTOR_IDS)
def test_matches_rosbags_image_reference(encoding, pixels, expected, tol):
    """Same pixels as rosbags-image (cv_bridge semantics) for every encoding it can convert.

    rosbags-image truncates when scaling 16 bit to 8 bit where cv_bridge (and we) round, hence
    the tolerance of 1 there; it ignores row padding, so the vectors here are dense.
    """
    rosbags_image = pytest.importorskip("rosbags.image")
    if encoding in ("16UC1", "32FC1", "64FC1", "8UC1", "8UC3", "8UC4"):
        pytest.skip("generic encodings have no colour conversion in cv_bridge / rosbags-image")
    msg = make_image(pixels, encoding)
    msg.data = np.frombuffer(msg.data, dtype=np.uint8)
    reference = rosbags_image.image_to_cvimage(msg, "rgb8")
    ours = ic.image_to_rgb(msg)
    limit = 1 if pixels.dtype == np.uint16 else 0
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= limit


# --- compressed ---------------------------------------------------------------------------------


def _scene(height=32, width=48, seed=0, block=16) -> np.ndarray:
    """Flat colour blocks aligned to JPEG's 16x16 MCUs, so JPEG error stays small."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height // block, width // block, 3), dtype=np.uint8)
    return cv2.resize(base, (width, height), interpolation=cv2.INTER_NEAREST)


def _encode(ext: str, pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


def test_compressed_png_is_lossless():
    rgb = _scene()
    msg = FakeCompressed("rgb8; png compressed bgr8", _encode(".png", rgb[:, :, ::-1]))
    np.testing.assert_array_equal(ic.compressed_to_rgb(msg), rgb)
    np.testing.assert_array_equal(ic.message_to_rgb(msg), rgb)


def test_compressed_jpeg_is_close():
    rgb = _scene()
    msg = FakeCompressed("jpeg", _encode(".jpg", rgb[:, :, ::-1]))
    decoded = ic.compressed_to_rgb(msg)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - rgb.astype(int)).mean() < 4
    # and the channel order is right: far from the same image read as BGR
    assert np.abs(decoded.astype(int) - rgb[:, :, ::-1].astype(int)).mean() > 20


@pytest.mark.parametrize("channels", [3, 1], ids=["colour", "grey"])
def test_jpeg_decoded_straight_to_rgb_equals_the_general_path(
    monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    """OpenCV's direct RGB decode gives the bytes of BGR decode + cvtColor (and grey as RGB)."""
    scene = _scene(48, 64, seed=3, block=4)  # detailed: JPEG's colour conversion matters
    pixels = scene if channels == 3 else scene[:, :, 1]
    msg = FakeCompressed("jpeg", _encode(".jpg", pixels))
    fast = ic.compressed_to_rgb(msg)
    monkeypatch.setattr(ic, "_JPEG_TO_RGB", None)  # what an OpenCV older than 4.10 does
    general = ic.compressed_to_rgb(msg)
    assert fast.shape == (48, 64, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, general)


def test_compressed_gray_bgra_and_16bit_png():
    np.testing.assert_array_equal(
        ic.compressed_to_rgb(FakeCompressed("png", _encode(".png", GRAY))), gray_rgb(GRAY)
    )
    bgra = np.concatenate([RGB[:, :, ::-1], np.full((2, 3, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(
        ic.compressed_to_rgb(FakeCompressed("png", _encode(".png", bgra))), RGB
    )
    mono16, expected = _mono16_vector()
    np.testing.assert_array_equal(
        ic.compressed_to_rgb(FakeCompressed("png", _encode(".png", mono16))), expected
    )


def test_compressed_depth_png_is_normalised():
    depth = np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000 + 500
    header = struct.pack("<iff", 0, 0.0, 0.0)  # compressed_depth_image_transport ConfigHeader
    msg = FakeCompressed("16UC1; compressedDepth png", header + _encode(".png", depth))
    expected = gray_rgb(np.rint(np.arange(6) * 51).reshape(2, 3).astype(np.uint8))
    np.testing.assert_array_equal(ic.compressed_to_rgb(msg), expected)


# --- outputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("32FC1", np.array([[0.0, 0.25], [1.0, 0.5]], dtype=np.float32)),
        ("mono8", np.array([[0, 255], [3, 4]], dtype=np.uint8)),
        ("bgr8", RGB[:, :, ::-1].copy()),
    ],
)
def test_output_messages_round_trip_with_header(encoding, pixels):
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = ic.array_to_image(pixels, encoding, header)
    assert isinstance(msg, Image)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.nanosec == 345
    assert (msg.height, msg.width, msg.encoding) == (2, pixels.shape[1], encoding)
    assert msg.is_bigendian == int(sys.byteorder == "big")
    assert msg.step == pixels.shape[1] * pixels.itemsize * (3 if pixels.ndim == 3 else 1)
    np.testing.assert_array_equal(ic.image_to_array(msg), pixels)


def test_output_messages_with_rosbags_type():
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    image_type = store.types["sensor_msgs/msg/Image"]
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="f"
    )
    scores = np.array([[0.5, 1.0]], dtype=np.float32)
    msg = ic.array_to_image(scores, "32FC1", header, msg_type=image_type)
    raw = store.serialize_cdr(msg, image_type.__msgtype__)  # the bag writer accepts it
    back = store.deserialize_cdr(raw, image_type.__msgtype__)
    np.testing.assert_array_equal(ic.image_to_array(back), scores)
    assert back.header.frame_id == "f"


def test_output_rejects_wrong_dtype_or_shape():
    with pytest.raises(ValueError, match="dtype"):
        ic.array_to_image(np.zeros((2, 2), np.float64), "32FC1")
    with pytest.raises(ValueError, match="shape"):
        ic.array_to_image(np.zeros((2, 2), np.uint8), "bgr8")
    with pytest.raises(ValueError, match="cannot publish"):
        ic.array_to_image(np.zeros((2, 2), np.uint8), "yuv422")


# --- bad input ----------------------------------------------------------------------------------


def _png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def _bad_frames():
    good = make_image(RGB, "rgb8")
    nan = np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32)
    inf = np.array([[0.0, np.inf], [1.0, 2.0]], dtype=np.float32)
    jpeg = _encode(".jpg", _scene())
    return [
        ("zero_width", FakeImage(2, 0, "rgb8", 0, 0, b""), ic.EMPTY),
        ("zero_height", FakeImage(0, 3, "rgb8", 0, 9, b""), ic.EMPTY),
        ("huge", FakeImage(100_000, 100_000, "mono8", 0, 100_000, b""), ic.TOO_LARGE),
        ("step_too_small", FakeImage(2, 3, "rgb8", 0, 8, good.data[:16]), ic.BAD_STEP),
        ("truncated", FakeImage(2, 3, "rgb8", 0, 9, good.data[:-1]), ic.SIZE_MISMATCH),
        ("extra_bytes", FakeImage(2, 3, "rgb8", 0, 9, good.data + b"\0"), ic.SIZE_MISMATCH),
        ("odd_width_yuv", FakeImage(1, 3, "yuv422", 0, 6, bytes(6)), ic.BAD_DIMENSIONS),
        ("unknown_encoding", FakeImage(2, 3, "rgb9", 0, 9, good.data), ic.UNSUPPORTED_ENCODING),
        ("nan", make_image(nan, "32FC1"), ic.NON_FINITE),
        ("inf_big_endian", make_image(inf, "32FC1", big_endian=True), ic.NON_FINITE),
        ("empty_compressed", FakeCompressed("jpeg", b""), ic.EMPTY),
        (
            "garbage_compressed",
            FakeCompressed("jpeg", b"not an image at all"),
            ic.CORRUPT_COMPRESSED,
        ),
        ("broken_png", FakeCompressed("png", _png_header_claiming(4, 4)), ic.CORRUPT_COMPRESSED),
        ("png_bomb", FakeCompressed("png", _png_header_claiming(60_000, 60_000)), ic.TOO_LARGE),
        ("jpeg_head_only", FakeCompressed("jpeg", jpeg[:20]), ic.CORRUPT_COMPRESSED),
    ]


BAD = _bad_frames()


@pytest.mark.parametrize(("name", "msg", "kind"), BAD, ids=[b[0] for b in BAD])
def test_bad_frames_raise_their_kind(name, msg, kind):
    with pytest.raises(BadImage) as info:
        ic.message_to_rgb(msg)
    assert info.value.kind == kind, str(info.value)
    assert info.value.message


def test_every_bad_kind_is_exercised():
    assert {b[2] for b in BAD} == set(ic.BAD_IMAGE_KINDS)


def test_max_pixels_is_a_parameter():
    msg = make_image(RGB, "rgb8")
    with pytest.raises(BadImage) as info:
        ic.image_to_rgb(msg, max_pixels=5)
    assert info.value.kind == ic.TOO_LARGE
    assert ic.image_to_rgb(msg, max_pixels=6).shape == (2, 3, 3)
    compressed = FakeCompressed("png", _encode(".png", RGB))
    with pytest.raises(BadImage):
        ic.compressed_to_rgb(compressed, max_pixels=5)


def test_bad_image_is_a_value_error_with_a_known_kind():
    assert issubclass(BadImage, ValueError)
    with pytest.raises(ValueError, match="unknown BadImage kind"):
        BadImage("whatever", "x")


# --- compressed headers: the size is known before decoding -------------------------------------


def _jpeg_parts(width: int = 24, height: int = 16) -> tuple[bytes, bytes]:
    """A real JPEG split in front of its frame header (SOF0): (SOI + tables, SOF0 + rest)."""
    jpeg = _encode(".jpg", _scene(height, width))
    sof = jpeg.index(b"\xff\xc0")
    assert struct.unpack(">HH", jpeg[sof + 5 : sof + 9]) == (height, width)
    return jpeg[:sof], jpeg[sof:]


def _claiming(sof_and_rest: bytes, width: int, height: int) -> bytes:
    return sof_and_rest[:5] + struct.pack(">HH", height, width) + sof_and_rest[9:]


@pytest.fixture
def no_decoding(monkeypatch):
    """cv2.imdecode fails the test: the frame must be refused from its header alone."""

    def imdecode(*args):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(ic.cv2, "imdecode", imdecode)


def test_jpeg_size_behind_fill_bytes_is_refused_without_decoding(no_decoding):
    head, sof = _jpeg_parts()
    bomb = head + b"\xff\xff\xff" + _claiming(sof, 6000, 6000)  # fill bytes before SOF0
    with pytest.raises(BadImage) as info:
        ic.compressed_to_rgb(FakeCompressed("jpeg", bomb))
    assert info.value.kind == ic.TOO_LARGE and "6000x6000" in info.value.message


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("unknown_marker_code", b"\xff\xd8\xff\x00\x00\x08"),
        ("garbage_between_segments", b"\xff\xd8\x12\x34\xff\xc0\x00\x11\x08\x17\x70\x17\x70"),
        ("scan_before_frame_header", b"\xff\xd8\xff\xda\x00\x08" + bytes(6)),
        ("end_before_frame_header", b"\xff\xd8\xff\xd9"),
        ("cut_inside_frame_header", b"\xff\xd8\xff\xc0\x00\x11\x08\x17"),
        ("segment_length_below_2", b"\xff\xd8\xff\xe0\x00\x01\xff\xc0\x00\x11\x08\x17\x70\x17"),
        ("only_fill_bytes", b"\xff\xd8\xff\xff\xff"),
        ("png_without_ihdr", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT" + bytes(13)),
    ],
)
def test_unreadable_header_is_refused_without_decoding(no_decoding, name, payload):
    with pytest.raises(BadImage) as info:
        ic.compressed_to_rgb(FakeCompressed("jpeg", payload))
    assert info.value.kind == ic.CORRUPT_COMPRESSED


def _app_segment(code: int, body: bytes) -> bytes:
    return bytes((0xFF, code)) + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize(
    ("name", "before_sof", "sof_marker"),
    [
        ("fill_bytes", b"\xff\xff\xff\xff", 0xC0),
        ("tem_and_fill", b"\xff\x01\xff\xff", 0xC0),
        ("exif_holding_ff_c0", _app_segment(0xE1, b"Exif\0\0\xff\xc0\x00\x11\x08\xff\xff"), 0xC0),
        ("comment", _app_segment(0xFE, b"\xff\xd9 not the end"), 0xC0),
        ("extended_sequential", b"", 0xC1),
        ("lossless_huffman", b"", 0xC3),
        ("arithmetic_coding", _app_segment(0xCC, b"\x00\x10"), 0xC9),
        ("differential_progressive_arithmetic", b"", 0xCF),
    ],
)
def test_jpeg_header_layouts_give_the_size_before_decoding(
    no_decoding, name, before_sof, sof_marker
):
    """DHT (C4), JPG (C8) and DAC (CC) are no frame headers; every other SOFn is."""
    head, sof = _jpeg_parts()
    frame = bytes((0xFF, sof_marker)) + _claiming(sof, 7000, 7000)[2:]
    with pytest.raises(BadImage) as info:
        ic.compressed_to_rgb(FakeCompressed("jpeg", head + before_sof + frame))
    assert info.value.kind == ic.TOO_LARGE and "7000x7000" in info.value.message


def test_jpeg_with_fill_bytes_and_tem_still_decodes():
    head, sof = _jpeg_parts(24, 16)
    decoded = ic.compressed_to_rgb(FakeCompressed("jpeg", head + b"\xff\x01\xff\xff" + sof))
    expected = ic.compressed_to_rgb(FakeCompressed("jpeg", head + sof))
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.shape == (16, 24, 3)


# --- float images: normalisation that cannot overflow ------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("dtype", "values", "gray"),
    [
        ("float64", [[-1.7e308, 0.0], [1.7e308, 1.7e308]], [[0, 128], [255, 255]]),
        ("float64", [[-np.finfo(np.float64).max, np.finfo(np.float64).max]], [[0, 255]]),
        ("float64", [[0.0, 5e-324]], [[0, 255]]),  # a span of one subnormal step
        ("float32", [[-3.4e38, 3.4e38]], [[0, 255]]),
        ("float32", [[2.0, 4.0], [3.0, 2.0]], [[0, 255], [128, 0]]),
    ],
)
def test_float_images_normalise_without_overflow(dtype, values, gray):
    encoding = "64FC1" if dtype == "float64" else "32FC1"
    msg = make_image(np.array(values, dtype=dtype), encoding)
    np.testing.assert_array_equal(ic.image_to_rgb(msg), gray_rgb(np.array(gray, np.uint8)))
