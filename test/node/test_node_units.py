"""Pieces of the node that need no ROS graph: latest-frame mailbox, statistics, output images,
parameter validation."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from pixood_ros.engine import SegmentationResult
from pixood_ros.image_conversion import array_to_image
from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.parameters import SettingsError, model_search_paths, resolve_model_path
from pixood_ros.node.stats import PipelineStats
from pixood_ros.render.outputs import ENCODINGS, OutputImages, anomaly_mask, render_overlay


def test_mailbox_keeps_only_the_newest_frame_per_camera():
    box = LatestFrameMailbox()
    assert box.put("front", 1) is False
    assert box.put("front", 2) is True  # replaced an unprocessed frame: a drop
    assert box.put("rear", 10) is False
    assert box.pending() == 2
    assert box.get(timeout=0.1) == ("front", 2)  # waited longest, newest content
    assert box.get(timeout=0.1) == ("rear", 10)
    assert box.get(timeout=0.05) is None


def test_mailbox_serves_cameras_in_turn_and_close_wakes_waiters():
    box = LatestFrameMailbox()
    box.put("a", 1)
    box.put("b", 1)
    box.put("a", 2)  # a replaced, but keeps its place in the queue
    assert [box.get(0.1)[0] for _ in range(2)] == ["a", "b"]
    results = []
    waiter = threading.Thread(target=lambda: results.append(box.get(timeout=5.0)))
    waiter.start()
    box.close()
    waiter.join(timeout=2.0)
    assert not waiter.is_alive() and results == [None]


def test_stats_rates_latencies_and_window():
    stats = PipelineStats(window=2.0)
    for i in range(10):
        stats.frame_received(now=100.0 + i * 0.1)
    stats.frame_dropped(3)
    stats.bad_frame("empty", now=100.5)
    stats.frame_published(0.020, 0.050, now=100.9)
    stats.frame_published(0.040, None, now=101.0)
    snap = stats.snapshot(now=101.0)
    assert snap.input_rate_hz == pytest.approx(5.0)
    assert snap.output_rate_hz == pytest.approx(1.0)
    assert snap.processing_ms_mean == pytest.approx(30.0)
    assert snap.processing_ms_max == pytest.approx(40.0)
    assert snap.end_to_end_ms_mean == pytest.approx(50.0)
    assert (snap.received, snap.processed, snap.dropped) == (10, 2, 3)
    assert snap.bad_by_kind == {"empty": 1} and snap.bad_in_window == 1
    later = stats.snapshot(now=110.0)  # window slid past everything, totals stay
    assert later.input_rate_hz == 0 and later.processing_ms_mean is None
    assert later.received == 10 and later.bad_total == 1 and later.bad_in_window == 0


def test_mask_and_overlay():
    score = np.array([[0.0, 0.49], [0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(anomaly_mask(score, 0.5), [[0, 0], [255, 255]])
    rgb = np.full((2, 2, 3), 100, np.uint8)
    overlay = render_overlay(rgb, score, 1.0, 0.5)
    # below the threshold: the camera pixel, untouched (BGR of the RGB input)
    np.testing.assert_array_equal(overlay[0, :], rgb[0, :, ::-1])
    assert (overlay[1, :] != 100).any(axis=-1).all()  # flagged pixels are coloured
    assert render_overlay(rgb, score, 0.0, 0.5).tolist() == rgb.tolist()


def test_reused_output_messages_carry_each_frame_exactly():
    outputs = OutputImages()
    rng = np.random.default_rng(4)
    header = object()
    first_messages = None
    for height, width in [(6, 8), (6, 8), (5, 3)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        buffers = outputs.engine_buffers(height, width)
        result = SegmentationResult(
            anomaly_score=rng.random((height, width), dtype=np.float32),
            semantic=rng.integers(0, 19, (height, width), dtype=np.uint8),
            confidence=rng.random((height, width), dtype=np.float32),
        )
        for name in ("anomaly_score", "semantic", "confidence"):
            np.copyto(getattr(buffers, name), getattr(result, name))  # what the engine does
        expected = {
            "anomaly_score": result.anomaly_score,
            "anomaly_mask": anomaly_mask(result.anomaly_score, 0.4),
            "semantic": result.semantic,
            "confidence": result.confidence,
            "overlay": render_overlay(rgb, result.anomaly_score, 0.6, 0.4),
        }
        messages = {name: outputs.message(name, rgb, header, 0.4, 0.6) for name in ENCODINGS}
        for name, msg in messages.items():
            reference = array_to_image(expected[name], ENCODINGS[name])
            assert msg.header is header
            assert (msg.height, msg.width, msg.encoding, msg.step) == (
                reference.height,
                reference.width,
                reference.encoding,
                reference.step,
            )
            assert bytes(msg.data) == bytes(reference.data), name
        if first_messages is None:
            first_messages = messages
        elif (height, width) == (6, 8):  # same size: the same message objects, refilled
            assert all(messages[n] is first_messages[n] for n in ENCODINGS)
    with pytest.raises(ValueError, match="unknown output"):
        outputs.message("depth", rgb, header, 0.4, 0.6)


def test_keep_frame_buffers_stops_page_faults_for_repeated_frames():
    """A freed frame-sized buffer is reused, not faulted in again (a fresh process: the
    setting is process-wide)."""
    script = """
import resource, sys
import numpy as np
from pixood_ros.node.memory import keep_frame_buffers

def faults(n=10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):  # four 4 MB outputs per frame, like a 1280x720 float image each
        frame = [np.empty(4 * 2**20, np.uint8) for _ in range(4)]
        for buffer in frame:
            buffer.fill(1)
        del frame
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults(2)
untuned = faults()
assert keep_frame_buffers()
faults(2)
print(untuned, faults())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    untuned, tuned = map(int, done.stdout.split())
    assert untuned > 1_000  # glibc trimmed the heap after frames and faulted it in again
    assert tuned < 100, (untuned, tuned)


def test_model_path_resolution(tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert resolve_model_path(str(model)) == model
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("m.onnx") == tmp_path / "m.onnx"
    with pytest.raises(SettingsError, match="not found"):
        resolve_model_path("missing.onnx")
    with pytest.raises(SettingsError, match="empty"):
        resolve_model_path("  ")
    # the source checkout is searched too (how the demo model is found without installing)
    assert any(
        str(p).endswith("checkpoints/pixood_demo.onnx")
        for p in model_search_paths("checkpoints/pixood_demo.onnx")
    )
