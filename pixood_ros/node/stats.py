"""Per-camera pipeline statistics for /diagnostics: rates, latencies, frames dropped by the node
and lost before it (`stamp_gaps`), bad frames by kind.

Kept free of ROS types so the arithmetic is unit-testable; the node turns a `StatsSnapshot`
into a diagnostic_msgs/DiagnosticStatus. Memory is bounded: only events of the last `window`
seconds are kept (and never more than `max_events`), totals are plain counters.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from pixood_ros.node.stamp_gaps import StampGapEstimator


@dataclass(frozen=True)
class StatsSnapshot:
    """Figures over the last window plus totals since activation."""

    window_s: float
    input_rate_hz: float
    output_rate_hz: float
    processing_ms_mean: float | None
    processing_ms_max: float | None
    end_to_end_ms_mean: float | None
    end_to_end_ms_max: float | None
    received: int
    processed: int
    dropped: int
    bad_total: int
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    bad_in_window: int = 0
    errors: int = 0
    last_error: str = ""
    lost: int = 0  # frames lost before the node (estimated from header stamp gaps)
    period: Period | None = None  # since the previous report (see `PipelineStats.report`)


@dataclass(frozen=True)
class Period:
    """Frame counts between two diagnostics reports."""

    seconds: float
    received: int
    dropped: int
    lost: int

    @property
    def unserved_ratio(self) -> float:
        """(dropped + lost) / (received + lost): the share of the camera's frames not served."""
        sent = self.received + self.lost
        return (self.dropped + self.lost) / sent if sent else 0.0


class PipelineStats:
    """Thread-safe counters fed by the subscription callback and the worker."""

    def __init__(self, window: float = 3.0, max_events: int = 10_000) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._inputs: deque[float] = deque(maxlen=max_events)
        self._outputs: deque[tuple[float, float, float | None]] = deque(maxlen=max_events)
        self._bad: deque[float] = deque(maxlen=max_events)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._inputs.clear()
            self._outputs.clear()
            self._bad.clear()
            self._received = 0
            self._processed = 0
            self._dropped = 0
            self._bad_kinds: Counter[str] = Counter()
            self._errors = 0
            self._last_error = ""
            self._gaps = StampGapEstimator()
            self._last_report = (0, 0, 0, time.monotonic())  # received, dropped, lost, when

    def frame_received(self, now: float | None = None, stamp_ns: int = 0) -> None:
        """A frame arrived; `stamp_ns` is its header stamp (0: unstamped)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._received += 1
            self._inputs.append(now)
            self._gaps.add(stamp_ns)

    def frame_dropped(self, count: int = 1) -> None:
        with self._lock:
            self._dropped += count

    def bad_frame(self, kind: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._bad_kinds[kind] += 1
            self._bad.append(now)

    def processing_error(self, message: str) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = message

    def frame_published(
        self, processing_s: float, end_to_end_s: float | None, now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._processed += 1
            self._outputs.append((now, processing_s, end_to_end_s))

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        for events in (self._inputs, self._bad):
            while events and events[0] < horizon:
                events.popleft()
        while self._outputs and self._outputs[0][0] < horizon:
            self._outputs.popleft()

    def snapshot(self, now: float | None = None) -> StatsSnapshot:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._prune(now)
            processing = np.array([p for _, p, _ in self._outputs], dtype=np.float64) * 1e3
            e2e = np.array([e for _, _, e in self._outputs if e is not None], np.float64) * 1e3
            return StatsSnapshot(
                window_s=self.window,
                input_rate_hz=len(self._inputs) / self.window,
                output_rate_hz=len(self._outputs) / self.window,
                processing_ms_mean=float(processing.mean()) if processing.size else None,
                processing_ms_max=float(processing.max()) if processing.size else None,
                end_to_end_ms_mean=float(e2e.mean()) if e2e.size else None,
                end_to_end_ms_max=float(e2e.max()) if e2e.size else None,
                received=self._received,
                processed=self._processed,
                dropped=self._dropped,
                bad_total=sum(self._bad_kinds.values()),
                bad_by_kind=dict(self._bad_kinds),
                bad_in_window=len(self._bad),
                errors=self._errors,
                last_error=self._last_error,
                lost=self._gaps.lost,
            )

    def report(self, now: float | None = None) -> StatsSnapshot:
        """A snapshot with the counts since the previous report (for the drop-ratio warning)."""
        now = time.monotonic() if now is None else now
        snap = self.snapshot(now)
        with self._lock:
            received, dropped, lost, at = self._last_report
            self._last_report = (snap.received, snap.dropped, snap.lost, now)
        period = Period(
            now - at, snap.received - received, snap.dropped - dropped, snap.lost - lost
        )
        return dataclasses.replace(snap, period=period)
