"""Video frames and figures: the overlay panel is the node's overlay, and the key band under the
panels (colour bar with the threshold, class legend) grows with the frame so it stays readable."""

from __future__ import annotations

import numpy as np

from pixood_ros import cityscapes
from pixood_ros.render.legend import TextStyle
from pixood_ros.render.overlay import SCALE_RGB, render_overlay
from pixood_ros.render.pictures import GROUND_TRUTH_RGB, side_by_side


def _scene(height, width):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    score = np.zeros((height, width), np.float32)
    score[height // 2 :, width // 2 :] = 0.99
    semantic = (np.arange(width)[None, :] * 19 // width).repeat(height, 0).astype(np.uint8)
    gt = np.zeros((height, width), np.uint8)
    gt[height // 2 :, width // 2 :] = 1
    return rgb, score, semantic, gt


def _frame(height, width, **kwargs):
    rgb, score, semantic, gt = _scene(height, width)
    return side_by_side(rgb, score, semantic, cityscapes.PALETTE, 0.9, **kwargs)


def test_the_camera_panel_is_the_node_overlay_and_the_key_is_underneath():
    rgb, score, semantic, gt = _scene(256, 512)
    frame = side_by_side(rgb, score, semantic, cityscapes.PALETTE, 0.9)
    overlay = render_overlay(rgb, score, 0.6, 0.9)[:, :, ::-1]
    # below the title and the inset: exactly the node's overlay, at full resolution
    np.testing.assert_array_equal(frame[100:256, 0:512], overlay[100:256])
    assert frame.shape[1] == 3 * 512 and frame.shape[0] > 256
    key = frame[256:]
    upper_half = {tuple(c) for c in SCALE_RGB[128:].tolist()}
    assert sum(tuple(c) in upper_half for c in key.reshape(-1, 3)[::7].tolist()) > 50
    given = side_by_side(rgb, score, semantic, cityscapes.PALETTE, 0.9, overlay=overlay[:, :, ::-1])
    np.testing.assert_array_equal(given, frame)  # an overlay rendered already is used as given


def test_class_legend_and_ground_truth_outline_when_given():
    plain = _frame(256, 512)
    full = _frame(256, 512, class_names=cityscapes.CLASS_NAMES, ood_gt=_scene(256, 512)[3])
    colours = {tuple(c) for c in full[256:].reshape(-1, 3).tolist()}
    plain_colours = {tuple(c) for c in plain[256:].reshape(-1, 3).tolist()}
    for colour in map(tuple, cityscapes.PALETTE):
        if colour != (0, 0, 0):
            assert tuple(colour) in colours, colour  # a swatch per class
    assert tuple(cityscapes.PALETTE[12]) not in plain_colours  # rider red: only in the legend
    mask_panel = full[:256, 1024:]
    assert np.any(np.all(mask_panel == GROUND_TRUTH_RGB, axis=2))


def test_text_grows_with_the_frame_and_every_frame_has_even_sizes():
    small, large = TextStyle.for_height(256), TextStyle.for_height(1080)
    assert large.scale > 2 * small.scale and large.line > 2 * small.line
    for height, width, max_width in [(256, 512, 1920), (1080, 1920, 1920), (49, 59, 100)]:
        frame = _frame(height, width, max_width=max_width, class_names=cityscapes.CLASS_NAMES)
        assert frame.shape[1] <= max_width
        assert frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0
    tiny = _frame(48, 64)
    assert tiny.shape[0] >= 240  # small frames are enlarged to stay readable
