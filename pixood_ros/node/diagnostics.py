"""What the node reports about itself: the /diagnostics statuses (one for the model, one per
camera) and the throttle that keeps repeated bad-input warnings from flooding the log.

Status names and hardware ids start with the node's fully qualified name (`/front/pixood_node:
model`, `/front/pixood_node: camera`), so nodes in different namespaces never share one.

A camera is WARN when the share of its frames not served in the last diagnostics period,
(dropped by the node + lost before it) / (received + lost), exceeds `drop_warn_ratio`.

Pure functions of the node's state, so the node only gathers the figures and publishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from pixood_ros.engine import ModelError
from pixood_ros.engine.providers import canonical_provider
from pixood_ros.image_conversion import BAD_IMAGE_KINDS
from pixood_ros.node.channels import CameraChannel
from pixood_ros.node.parameters import Settings
from pixood_ros.node.stats import StatsSnapshot

DISABLED = "disabled through ~/enable: frames are not processed"
# A bad-input kind is logged at its first occurrence and then at most once per this period.
BAD_INPUT_LOG_PERIOD_S = 10.0


def model_status(
    node_name: str,
    lifecycle: str,
    segmenter: Any,
    settings: Settings | None,
    threshold: float,
    enabled: bool = True,
) -> DiagnosticStatus:
    """Model file, execution provider (WARN when it is not the requested one), scorer.
    `node_name` is the node's fully qualified name."""
    status = DiagnosticStatus(name=f"{node_name}: model", hardware_id=node_name)
    provider = getattr(segmenter, "active_provider", "none")
    values = {
        "lifecycle_state": lifecycle,
        "processing": "enabled" if enabled else "disabled",
        "execution_provider": provider,
    }
    if settings is not None:
        values["model_path"] = str(settings.model_path)
        values["requested_providers"] = ", ".join(settings.providers) or "default"
        values["intra_op_threads"] = str(settings.intra_op_threads)
        values["threshold"] = f"{threshold:.3f}"
    info = getattr(segmenter, "info", None)
    if info is not None:
        values["scorer"] = str(info.scorer)
        values["classes"] = str(len(info.class_names))
    status.values = _key_values(values)
    if segmenter is None:
        status.level, status.message = DiagnosticStatus.ERROR, "no model loaded"
    elif settings and settings.providers and provider != _full_provider(settings.providers[0]):
        status.level = DiagnosticStatus.WARN
        status.message = f"running on {provider}, not the requested {settings.providers[0]}"
    else:
        status.level, status.message = DiagnosticStatus.OK, f"running on {provider}"
    if not enabled:
        status.message = f"{DISABLED}; {status.message}"
    return status


def camera_status(
    node_name: str,
    lifecycle: str,
    channel: CameraChannel,
    snap: StatsSnapshot,
    drop_warn_ratio: float,
    enabled: bool = True,
) -> DiagnosticStatus:
    """Rates, latencies and frame counts of one camera; WARN/ERROR when it is not served, WARN
    when more than `drop_warn_ratio` of its frames in the report's period were not served."""
    status = DiagnosticStatus(
        name=f"{node_name}: {channel.label}", hardware_id=f"{node_name}/{channel.label}"
    )
    topic = channel.input_topic
    values = {
        "input_topic": topic,
        "subscribed": str(channel.subscription is not None).lower(),
        "input_qos": channel.subscription_qos or "n/a",
        "camera_info_topic": channel.camera_info_topic,
        "camera_info_received": str(channel.camera_info is not None).lower(),
        "input_rate_hz": f"{snap.input_rate_hz:.2f}",
        "output_rate_hz": f"{snap.output_rate_hz:.2f}",
        "processing_latency_ms_mean": _fmt_ms(snap.processing_ms_mean),
        "processing_latency_ms_max": _fmt_ms(snap.processing_ms_max),
        "end_to_end_latency_ms_mean": _fmt_ms(snap.end_to_end_ms_mean),
        "end_to_end_latency_ms_max": _fmt_ms(snap.end_to_end_ms_max),
        "frames_received": str(snap.received),
        "frames_processed": str(snap.processed),
        "frames_dropped": str(snap.dropped),
        "frames_lost_before_node": str(snap.lost),
        "drop_ratio": f"{snap.period.unserved_ratio:.3f}" if snap.period else "n/a",
        "bad_frames": str(snap.bad_total),
        "processing_errors": str(snap.errors),
    }
    for kind in BAD_IMAGE_KINDS:
        values[f"bad_frames_{kind}"] = str(snap.bad_by_kind.get(kind, 0))
    status.values = _key_values(values)
    if enabled:
        status.level, status.message = _camera_level(
            lifecycle, channel, topic, snap, drop_warn_ratio
        )
    else:
        status.level, status.message = DiagnosticStatus.OK, DISABLED
    return status


def _camera_level(
    lifecycle: str, channel: CameraChannel, topic: str, snap: StatsSnapshot, drop_warn_ratio: float
) -> tuple[bytes, str]:
    if lifecycle != "active":
        return DiagnosticStatus.OK, f"node {lifecycle}"
    if channel.waiting_for_publisher:
        return DiagnosticStatus.WARN, f"no publisher on {topic} yet (input_qos auto waits)"
    if channel.subscription is None:
        return DiagnosticStatus.OK, "idle: no output subscribers"
    if snap.errors and snap.processed == 0:
        return DiagnosticStatus.ERROR, f"failing: {snap.last_error}"
    if snap.bad_in_window:
        return (
            DiagnosticStatus.WARN,
            f"{snap.bad_in_window} bad frame(s) in the last {snap.window_s:.0f} s",
        )
    if snap.period is not None and snap.period.unserved_ratio > drop_warn_ratio:
        period = snap.period
        return (
            DiagnosticStatus.WARN,
            f"{period.unserved_ratio:.0%} of the frames in the last {period.seconds:.1f} s not "
            f"served: {period.dropped} dropped by the node (too slow), {period.lost} lost "
            f"before it",
        )
    if snap.received == 0:
        return DiagnosticStatus.WARN, f"no images on {topic} yet"
    return (
        DiagnosticStatus.OK,
        f"{snap.output_rate_hz:.1f} Hz out of {snap.input_rate_hz:.1f} Hz in",
    )


class LogThrottle:
    """Says whether to log a problem: its first occurrence per key, then once per period."""

    def __init__(self, period_s: float = BAD_INPUT_LOG_PERIOD_S) -> None:
        self.period_s = period_s
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()  # safe to use from any thread

    def allow(self, key: Hashable) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            self._last[key] = now
            return True


def _key_values(values: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=v) for k, v in values.items()]


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _full_provider(name: str) -> str:
    try:
        return canonical_provider(name)
    except ModelError:
        return name
