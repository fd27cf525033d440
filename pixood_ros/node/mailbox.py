"""Latest-frame hand-over between the ROS callbacks and the inference worker.

A slow model must never build a queue of stale frames (seconds of lag is the most common
complaint about ROS DNN nodes). Each camera has one slot: a new frame replaces a frame the
worker has not taken yet, and the replacement is reported so it can be counted as a drop. The
worker takes the frame that has waited longest, so several cameras sharing one model are served
in turn and none starves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any


class LatestFrameMailbox:
    """Thread-safe single-slot-per-key mailbox."""

    def __init__(self) -> None:
        self._slots: dict[Hashable, tuple[float, Any]] = {}
        self._condition = threading.Condition()
        self._closed = False

    def put(self, key: Hashable, item: Any) -> bool:
        """Store `item` as the newest frame of `key`; True when it replaced an unprocessed one."""
        return self.swap(key, item) is not None

    def swap(self, key: Hashable, item: Any) -> Any | None:
        """Store `item` as the newest of `key`; the unprocessed item it replaced, or None."""
        with self._condition:
            old = self._slots.get(key)
            # Keep the waiting time of the slot: a camera that is replaced often still gets
            # its turn after the others, not pushed to the back forever.
            since = old[0] if old is not None else time.monotonic()
            self._slots[key] = (since, item)
            self._condition.notify()
            return None if old is None else old[1]

    def get(self, timeout: float | None = None) -> tuple[Hashable, Any] | None:
        """The (key, item) that has waited longest; None on timeout or after `close()`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self._slots and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._condition.wait(remaining)
            if self._closed:
                return None
            key = min(self._slots, key=lambda k: self._slots[k][0])
            _, item = self._slots.pop(key)
            return key, item

    def pending(self) -> int:
        """Frames waiting (at most one per key)."""
        with self._condition:
            return len(self._slots)

    def clear(self) -> int:
        """Drop all waiting frames; returns how many were dropped."""
        return len(self.drain())

    def drain(self) -> list[tuple[Hashable, Any]]:
        """Take every waiting (key, item) out, oldest first."""
        with self._condition:
            waiting = sorted(self._slots.items(), key=lambda entry: entry[1][0])
            self._slots.clear()
            return [(key, item) for key, (_, item) in waiting]

    def close(self) -> None:
        """Wake every waiting `get` with None (worker shutdown)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def reopen(self) -> None:
        with self._condition:
            self._closed = False
