"""The one overlay (`~/overlay`, infer, bag-eval, demo): camera pixels below the threshold keep
their exact colour, flagged pixels are coloured by score, and the fast path equals the plain
formula."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.render.outputs import OutputImages, render_overlay
from pixood_ros.render.overlay import SCALE_RGB, OverlayRenderer, overlay_scratch, score_colours
from pixood_ros.render.pictures import anomaly_mask


def _plain_overlay(rgb, score, alpha, threshold):
    """The overlay written plainly: what the fast version must reproduce exactly."""
    t = np.float32(threshold)
    flagged = score >= t
    if t >= 1:
        levels = np.full(score.shape, 255)
    else:
        fraction = (score - t) * (np.float32(128) / (np.float32(1) - t))
        levels = 128 + np.clip(np.nan_to_num(fraction), 0, 127).astype(np.int64)
    colour = SCALE_RGB[levels].astype(np.float32)
    a = np.float32(alpha)
    blended = np.rint(rgb.astype(np.float32) * (np.float32(1) - a) + colour * a).astype(np.uint8)
    return np.ascontiguousarray(np.where(flagged[:, :, None], blended, rgb)[:, :, ::-1])


def _scores_with_edges(rng, height, width, threshold):
    """Scores in and out of [0, 1] with NaN, the threshold and its float32 neighbours."""
    score = rng.random((height, width), dtype=np.float32) * 1.4 - 0.2
    t = np.float32(threshold)
    score.flat[::7] = t
    score.flat[1::11] = np.nextafter(t, np.float32(2))
    score.flat[2::13] = np.nextafter(t, np.float32(-1))
    score.flat[3::17] = np.nan
    return score


@pytest.mark.parametrize("alpha", [0.0, 1 / 3, 0.6, 1.0])
def test_fast_overlay_equals_the_plain_formula(alpha):
    rng = np.random.default_rng(3)
    for height, width in [(1, 1), (3, 5), (48, 64)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        scratch = overlay_scratch(height, width)
        for threshold in (0.0, 0.3, 1 / 3, 0.5, 0.995, 1.0):
            score = _scores_with_edges(rng, height, width, threshold)
            expected = _plain_overlay(rgb, score, alpha, threshold)
            np.testing.assert_array_equal(render_overlay(rgb, score, alpha, threshold), expected)
            out = np.empty_like(rgb)
            render_overlay(rgb, score, alpha, threshold, out=out, scratch=scratch)
            np.testing.assert_array_equal(out, expected)


def test_camera_pixels_below_the_threshold_and_nan_keep_their_exact_colour():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    score = rng.random((40, 60), dtype=np.float32)
    score[0, :5] = np.nan
    for threshold in (0.5, 0.9):
        flagged = score >= threshold
        overlay = render_overlay(rgb, score, 1.0, threshold)[:, :, ::-1]  # RGB again
        np.testing.assert_array_equal(overlay[~flagged], rgb[~flagged])
        # alpha 1: flagged pixels show the upper half of the scale, green at the threshold
        # to red at 1, and nothing else changed
        assert np.all(np.any(overlay[flagged] != rgb[flagged], axis=1))
        np.testing.assert_array_equal(overlay[flagged], score_colours(score, threshold)[flagged])
    low = render_overlay(rgb, score, 0.6, 0.5)
    high = render_overlay(rgb, score, 0.6, 0.9)
    changed_low = np.any(low != rgb[:, :, ::-1], axis=2)
    changed_high = np.any(high != rgb[:, :, ::-1], axis=2)
    assert changed_high.sum() < changed_low.sum()  # the threshold decides what one sees
    assert not np.any(changed_high & ~(score >= 0.9))


def test_scale_splits_at_the_threshold():
    score = np.array([[0.0, 0.49, 0.5, 0.75, 1.0, np.nan]], np.float32)
    colours = score_colours(score, 0.5)
    np.testing.assert_array_equal(colours[0, :5], SCALE_RGB[[0, 125, 128, 192, 255]])
    np.testing.assert_array_equal(colours[0, 5], [0, 0, 0])  # NaN: black in a heat map


def test_reused_messages_render_the_overlay_at_the_given_threshold():
    outputs = OutputImages()
    rng = np.random.default_rng(4)
    for height, width in [(6, 8), (5, 3)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        buffers = outputs.engine_buffers(height, width)
        buffers.anomaly_score[:] = rng.random((height, width), dtype=np.float32)
        for threshold in (0.3, 0.8):
            message = outputs.message("overlay", rgb, None, threshold, 0.6)
            pixels = np.asarray(message.data, np.uint8).reshape(height, width, 3)
            expected = _plain_overlay(rgb, buffers.anomaly_score, 0.6, threshold)
            np.testing.assert_array_equal(pixels, expected)


def test_mask_equals_the_plain_formula_at_the_threshold_edges():
    rng = np.random.default_rng(3)
    for height, width in [(1, 1), (3, 5), (48, 64)]:
        for threshold in (0.0, 0.3, 1 / 3, 0.5, 1.0):
            score = _scores_with_edges(rng, height, width, threshold)
            expected = np.where(score >= np.float32(threshold), 255, 0).astype(np.uint8)
            np.testing.assert_array_equal(anomaly_mask(score, threshold), expected)


def test_overlay_renderer_reuses_its_buffers_and_follows_the_frame_size():
    """A stream of frames (bag-eval's): each equals the plain formula, also after a size change."""
    rng = np.random.default_rng(7)
    renderer = OverlayRenderer()
    pictures = []
    for height, width in [(24, 40), (24, 40), (16, 30)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        score = rng.random((height, width), dtype=np.float32)
        picture = renderer(rgb, score, 0.6, 0.5)
        np.testing.assert_array_equal(picture, _plain_overlay(rgb, score, 0.6, 0.5))
        pictures.append(picture)
    assert pictures[1] is pictures[0]  # same size: the same buffer, overwritten
    assert pictures[2].shape == (16, 30, 3)
