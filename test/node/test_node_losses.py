"""Frames lost before the node (estimated from header stamp gaps) and the drop-ratio warning in
/diagnostics, without a ROS graph."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from pixood_ros.node.channels import CameraChannel
from pixood_ros.node.diagnostics import camera_status
from pixood_ros.node.stamp_gaps import StampGapEstimator
from pixood_ros.node.stats import PipelineStats

PERIOD_NS = 33_333_333  # 30 Hz


def _lost(stamps) -> int:
    estimator = StampGapEstimator()
    for stamp in stamps:
        estimator.add(int(stamp))
    return estimator.lost


def _camera(n: int, period: int = PERIOD_NS, start: int = 10**18, jitter: float = 0.0, seed=0):
    """Stamps of n frames at `period` with uniform jitter of +-jitter periods."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-jitter, jitter, n) * period if jitter else np.zeros(n)
    return start + np.arange(n) * period + offsets.astype(np.int64)


def test_no_loss_is_counted_for_a_steady_or_jittery_camera():
    assert _lost(_camera(300)) == 0
    assert _lost(_camera(300, jitter=0.2)) == 0


@pytest.mark.parametrize("jitter", [0.0, 0.15])
def test_a_gap_of_k_periods_is_k_minus_1_lost_frames(jitter):
    stamps = _camera(400, jitter=jitter, seed=1)
    rng = np.random.default_rng(2)
    kept = np.sort(rng.choice(np.arange(10, 400), size=300, replace=False))  # 90 random losses
    stamps = np.concatenate([stamps[:10], stamps[kept]])
    true_lost = (kept[-1] - 9) - len(kept)  # missing between frame 9 and the last one kept
    assert _lost(stamps) == pytest.approx(true_lost, abs=3)  # the last gaps wait to settle


def test_the_first_frames_and_unstamped_frames_count_nothing():
    assert _lost([]) == 0
    assert _lost([10**18]) == 0
    assert _lost([10**18, 10**18 + 5 * PERIOD_NS]) == 0  # too early to know the period
    assert _lost([0] * 50) == 0


def test_a_stamp_going_back_is_a_restart_not_a_loss():
    loop = np.concatenate([_camera(100), _camera(100), _camera(100)])  # a bag played in a loop
    assert _lost(loop) == 0
    reset = np.concatenate([_camera(100, start=10**18), _camera(100, start=5 * 10**9)])
    assert _lost(reset) == 0


def test_a_long_pause_is_not_a_loss():
    stamps = _camera(100)
    paused = np.concatenate([stamps, stamps[-1] + 600 * 10**9 + _camera(100, start=0)])
    assert _lost(paused) == 0


@pytest.mark.parametrize("factor", [3, 2])
def test_a_camera_slowing_down_is_a_new_rate_not_a_loss(factor):
    fast = _camera(100)
    slow = fast[-1] + factor * PERIOD_NS + _camera(100, period=factor * PERIOD_NS, start=0)
    assert _lost(np.concatenate([fast, slow])) == 0


def test_a_camera_speeding_up_is_no_loss_and_its_losses_count_at_the_new_rate():
    slow = _camera(60, period=3 * PERIOD_NS)
    fast = slow[-1] + PERIOD_NS + _camera(200, start=0)
    assert _lost(np.concatenate([slow, fast])) == 0
    dropped_some = np.concatenate([slow, np.delete(fast, [100, 150, 151])])
    assert _lost(dropped_some) == 3


# --- the drop ratio and the warning -------------------------------------------------------------


def _stats_with(received: int, dropped: int, lost_every: int = 0) -> PipelineStats:
    """Frames at 30 Hz from t=100 s (report period starts at 100 s), every `lost_every`-th lost."""
    stats = PipelineStats()
    stats.reset()
    stats.report(now=100.0)
    stamp, sent = 10**18, 0
    while sent < received:
        stamp += PERIOD_NS
        if lost_every and sent > 10 and sent % lost_every == 0:
            stamp += PERIOD_NS  # the frame in between never arrived
        stats.frame_received(now=100.0 + sent / 30, stamp_ns=stamp)
        sent += 1
    stats.frame_dropped(dropped)
    return stats


def _status(stats: PipelineStats, drop_warn_ratio: float, now: float = 104.0) -> DiagnosticStatus:
    channel = CameraChannel(0, "", "/image")
    channel.subscription = object()  # subscribed
    stats.frame_published(0.01, 0.02, now=now)
    snap = stats.report(now=now)
    return camera_status("/pixood_node", "active", channel, snap, drop_warn_ratio)


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_drop_ratio_counts_dropped_and_lost_frames_over_the_period():
    stats = _stats_with(received=100, dropped=10, lost_every=10)  # 8 lost
    status = _status(stats, drop_warn_ratio=0.1)
    values = _values(status)
    lost = int(values["frames_lost_before_node"])
    assert 7 <= lost <= 8  # the last gap may still wait to settle
    assert values["frames_dropped"] == "10"
    assert float(values["drop_ratio"]) == pytest.approx((10 + lost) / (100 + lost), abs=1e-3)
    assert status.level == DiagnosticStatus.WARN
    assert "not served" in status.message and "10 dropped by the node" in status.message


def test_drop_ratio_at_or_below_the_limit_stays_ok():
    status = _status(_stats_with(received=100, dropped=10), drop_warn_ratio=0.1)
    assert _values(status)["drop_ratio"] == "0.100"
    assert status.level == DiagnosticStatus.OK
    assert _status(_stats_with(100, 60), drop_warn_ratio=1.0).level == DiagnosticStatus.OK


def test_each_report_starts_a_new_period():
    stats = _stats_with(received=100, dropped=50)
    assert _status(stats, 0.1).level == DiagnosticStatus.WARN
    for index in range(30):  # the next period: every frame served
        stats.frame_received(now=104.0 + index / 30, stamp_ns=2 * 10**18 + index * PERIOD_NS)
    later = _status(stats, 0.1, now=105.0)
    assert _values(later)["drop_ratio"] == "0.000" and later.level == DiagnosticStatus.OK
    assert _values(later)["frames_dropped"] == "50"  # totals stay
