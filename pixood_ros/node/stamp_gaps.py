"""Frames lost before the node, estimated from gaps in the input header stamps.

The node counts the frames it drops itself (a newer one replaced it in the mailbox), but frames
lost on the way (a best-effort DDS reader whose history a newer sample overwrote, a congested
link, a slow bag player) never reach it. Cameras stamp frames at a steady period, so a gap of
k periods between two received stamps means k - 1 frames that never arrived.

The period is the median of the recent intervals close to the smallest ones: under loss many
intervals are multiples of the period, and the smallest ones are the consecutive frames.
Robust to:
- jitter (up to ±20 % of the period per stamp): an interval is k = round(interval / period)
  periods, so 1.4 periods is none lost;
- the first frames: nothing is counted before `MIN_INTERVALS` intervals were seen;
- stamps that go backwards or repeat (a bag played in a loop, sim time reset): not counted, the
  next interval starts from the new stamp; unstamped frames (0) are ignored;
- a pause far longer than the period (`MAX_GAP_PERIODS`, a paused player or sim clock jump);
- camera rate changes: a faster camera is no loss (its intervals are below the period, which
  follows once they are a tenth of the window); a slower one looks like a run of equal gaps, so
  a gap is counted only when `SETTLE` more intervals show the old period is still there: a run
  of `SETTLE` + 1 similar gaps without a normal interval is a new period, not a loss.
Without ROS types, so the arithmetic is unit-tested on its own.
"""

from __future__ import annotations

from collections import deque

WINDOW = 50  # intervals the period is estimated from
MIN_INTERVALS = 8  # intervals needed before gaps are judged
SETTLE = 3  # intervals after a gap that confirm the period (else it is a rate change)
MAX_GAP_PERIODS = 100  # longer gaps are pauses or clock jumps, not lost frames
SIMILAR = 1.25  # gaps within this ratio of each other form a run (a new rate)


class StampGapEstimator:
    """Feed it every received frame's stamp (ns, in arrival order); `lost` is the estimate."""

    def __init__(self) -> None:
        self.lost = 0
        self._intervals: deque[int] = deque(maxlen=WINDOW)
        self._pending: deque[tuple[int, int]] = deque()  # (interval, frames lost) not yet sure
        self._last: int | None = None

    def add(self, stamp_ns: int) -> None:
        if stamp_ns <= 0:
            return  # the publisher did not stamp the frame
        last, self._last = self._last, stamp_ns
        if last is None or stamp_ns <= last:
            return  # first frame, or the stream restarted (loop, clock reset)
        interval = stamp_ns - last
        period = self.period()
        gap = 0 if period is None else round(interval / period) - 1
        self._pending.append((interval, gap if 0 < gap < MAX_GAP_PERIODS else 0))
        self._intervals.append(interval)
        if len(self._pending) > SETTLE:
            if self._is_new_rate():
                self._intervals.clear()
                self._intervals.extend(i for i, _ in self._pending)
                self._pending.clear()
            else:
                self.lost += self._pending.popleft()[1]

    def period(self) -> float | None:
        """The camera's frame interval (ns), or None while too few intervals were seen."""
        if len(self._intervals) < MIN_INTERVALS:
            return None
        ordered = sorted(self._intervals)
        period = float(ordered[len(ordered) // 10])  # below the gaps, maybe below the median
        for _ in range(2):  # median of the intervals up to 1.5 periods: gaps (>= 2) left out
            near = [i for i in ordered if i <= 1.5 * period]
            period = float(near[len(near) // 2])
        return period

    def _is_new_rate(self) -> bool:
        """All pending intervals are gaps of about one size: the camera slowed down."""
        if not all(gap for _, gap in self._pending):
            return False
        sizes = [interval for interval, _ in self._pending]
        return max(sizes) <= SIMILAR * min(sizes)
