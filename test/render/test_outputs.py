"""Offline output images (`build_output_images`): the node's encodings, mask rule and overlay, in
any Image class, with the camera header; a pre-rendered overlay is used as given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pixood_ros.engine import SegmentationResult
from pixood_ros.render.outputs import ENCODINGS, build_output_images, render_overlay


@dataclass
class PlainImage:
    """An Image class outside ROS (like rosbags'): fields given to the constructor."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any
    header: Any = None


def _result() -> tuple[np.ndarray, SegmentationResult]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    score = rng.random((6, 8), dtype=np.float32)
    result = SegmentationResult(
        anomaly_score=score,
        semantic=rng.integers(0, 19, (6, 8), dtype=np.uint8),
        confidence=rng.random((6, 8), dtype=np.float32),
    )
    return rgb, result


def _pixels(msg: PlainImage, dtype: type, channels: int = 1) -> np.ndarray:
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return np.asarray(msg.data).view(dtype).reshape(shape)


def test_every_output_in_its_encoding_with_the_camera_header():
    rgb, result = _result()
    header = object()
    msgs = build_output_images(list(ENCODINGS), rgb, result, header, 0.5, 0.6, PlainImage)
    assert {name: m.encoding for name, m in msgs.items()} == ENCODINGS
    assert all(m.header is header for m in msgs.values())
    np.testing.assert_array_equal(_pixels(msgs["anomaly_score"], np.float32), result.anomaly_score)
    expected_mask = np.where(result.anomaly_score >= 0.5, 255, 0)
    np.testing.assert_array_equal(_pixels(msgs["anomaly_mask"], np.uint8), expected_mask)
    np.testing.assert_array_equal(_pixels(msgs["semantic"], np.uint8), result.semantic)
    overlay = render_overlay(rgb, result.anomaly_score, 0.6, 0.5)
    np.testing.assert_array_equal(_pixels(msgs["overlay"], np.uint8, 3), overlay)


def test_a_rendered_overlay_is_used_as_given_and_unknown_names_are_refused():
    rgb, result = _result()
    given = np.full((6, 8, 3), 7, np.uint8)
    msgs = build_output_images(["overlay"], None, result, None, 0.5, 0.6, PlainImage, given)
    np.testing.assert_array_equal(_pixels(msgs["overlay"], np.uint8, 3), given)
    with pytest.raises(ValueError, match="unknown output 'depth'"):
        build_output_images(["depth"], rgb, result, None, 0.5, 0.6, PlainImage)
