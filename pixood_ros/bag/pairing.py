"""Pair every camera frame with its ground truth by header stamp, in one streaming pass.

Ground truth recorded on its own topic may arrive a little before or after its frame in bag
order; a small look-ahead window absorbs that without holding the bag in memory. A label matches
a frame when their header stamps differ by at most `tolerance_ns` (0 = exact match, what
`pixood-make-bag` writes); the nearest one wins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pixood_ros.bag.bagio import BagMessage

DEFAULT_WINDOW = 32


@dataclass
class PairingStats:
    unmatched_labels: dict[str, int] = field(default_factory=dict)


@dataclass
class _Stream:
    buffer: list[BagMessage] = field(default_factory=list)
    latest_stamp: int | None = None


def pair_by_stamp(
    messages: Iterable[BagMessage],
    image_topic: str,
    label_topics: list[str],
    tolerance_ns: int = 0,
    window: int = DEFAULT_WINDOW,
    stats: PairingStats | None = None,
) -> Iterator[tuple[BagMessage, dict[str, BagMessage | None]]]:
    """(frame, {label topic: matching label or None}) for every frame, in bag order."""
    stats = stats if stats is not None else PairingStats()
    streams = {topic: _Stream() for topic in label_topics}
    for topic in label_topics:
        stats.unmatched_labels.setdefault(topic, 0)
    pending: deque[BagMessage] = deque()

    def nearest(stream: _Stream, stamp: int) -> int | None:
        best, best_gap = None, tolerance_ns + 1
        for index, label in enumerate(stream.buffer):
            gap = abs(label.stamp_ns - stamp)
            if gap < best_gap:
                best, best_gap = index, gap
        return best

    def ready(frame: BagMessage, final: bool) -> bool:
        if final or len(pending) > window:
            return True
        for stream in streams.values():
            passed = stream.latest_stamp is not None and (
                stream.latest_stamp > frame.stamp_ns + tolerance_ns
            )
            exact_found = tolerance_ns == 0 and nearest(stream, frame.stamp_ns) is not None
            if not (passed or exact_found):
                return False
        return True

    def drain(final: bool) -> Iterator[tuple[BagMessage, dict[str, BagMessage | None]]]:
        while pending and ready(pending[0], final):
            frame = pending.popleft()
            matches: dict[str, BagMessage | None] = {}
            for topic, stream in streams.items():
                index = nearest(stream, frame.stamp_ns)
                matches[topic] = stream.buffer.pop(index) if index is not None else None
                # labels older than this frame can only belong to frames already gone
                cutoff = frame.stamp_ns - tolerance_ns
                kept = [m for m in stream.buffer if m.stamp_ns >= cutoff]
                stats.unmatched_labels[topic] += len(stream.buffer) - len(kept)
                stream.buffer = kept
            yield frame, matches

    def take(message: BagMessage) -> Iterator[tuple[BagMessage, dict[str, BagMessage | None]]]:
        if message.topic == image_topic:
            pending.append(message)
        elif message.topic in streams:
            stream = streams[message.topic]
            stream.buffer.append(message)
            if stream.latest_stamp is None or message.stamp_ns > stream.latest_stamp:
                stream.latest_stamp = message.stamp_ns
            if len(stream.buffer) > 4 * window:
                stream.buffer.pop(0)
                stats.unmatched_labels[message.topic] += 1
        yield from drain(final=False)

    try:
        for message in messages:
            yield from take(message)
    except Exception:
        # the bag broke part-way: hand out the frames already read, then report the damage
        yield from drain(final=True)
        raise
    yield from drain(final=True)
    for topic, stream in streams.items():
        stats.unmatched_labels[topic] += len(stream.buffer)
