"""Pieces of the node that need no ROS graph: latest-frame mailbox, statistics, output images,
parameter validation, and the node benchmark command."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from model_fixtures import make_handmade_model

from pixood_ros.node.mailbox import LatestFrameMailbox
from pixood_ros.node.outputs import anomaly_mask, render_overlay
from pixood_ros.node.parameters import SettingsError, model_search_paths, resolve_model_path
from pixood_ros.node.stats import PipelineStats


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
    overlay = render_overlay(rgb, score, alpha=1.0)
    np.testing.assert_array_equal(overlay[0, 0], [100, 100, 100])  # no anomaly: unchanged
    np.testing.assert_array_equal(overlay[1, 1], [0, 0, 255])  # BGR pure red at score 1
    assert render_overlay(rgb, score, alpha=0.0).tolist() == rgb.tolist()


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


@pytest.mark.ros
@pytest.mark.slow
def test_bench_reports_node_and_engine_throughput(tmp_path, capsys):
    from pixood_ros.node import bench

    model = make_handmade_model(tmp_path / "m.onnx")
    out = tmp_path / "bench.json"
    code = bench.main(
        [str(model), "--width", "64", "--height", "48", "--duration", "0.7", "--json", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["engine_fps"] > 0 and result["node_fps"] > 0
    assert result["ratio"] == pytest.approx(result["node_fps"] / result["engine_fps"])
    assert min(result["node"]["outputs_received"].values()) > 0
    # the node never outruns its own model
    assert result["node_fps"] <= result["engine_fps"] * 1.2


def test_bench_user_errors_exit_2(tmp_path, capsys):
    from pixood_ros.node import bench

    assert bench.main([str(tmp_path / "missing.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
    model = make_handmade_model(tmp_path / "m.onnx")
    assert bench.main([str(model), "--duration", "0"]) == 2
    with pytest.raises(SystemExit) as info:
        bench.main(["--help"])
    assert info.value.code == 0
