"""Stages of a frame loop overlapped in threads: the caller (the main thread, where signals
arrive) reads and decodes frame n+1 while one worker runs inference on frame n and the next one
writes frame n-1. Queues are bounded, so at most a few frames are in flight, and every stage sees
the frames in order.

Stopping keeps whole, in-order work:
- `finish()` lets every frame handed over so far go through every stage (Ctrl-C in the caller
  stops the reading; what was read is still evaluated); an interruption while it waits aborts:
  the frames the first stage has not started are dropped, the others go through.
- A stage that raises stops itself and every stage before it (their later frames are dropped);
  stages after it still finish the frames it passed on before the failing one. `put()` then
  raises `StageFailed` so the caller stops reading; `failure` holds the frame and the error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_END = object()
DEPTH = 2  # frames waiting in front of each stage


class StageFailed(Exception):
    """A stage raised; `Pipeline.failure` says on which item and why."""


class Pipeline:
    """Run `stages` (item -> item) one thread each, in order, on the items `put()` feeds."""

    def __init__(self, stages: list[Callable[[Any], Any]], depth: int = DEPTH) -> None:
        self._queues: list[queue.Queue] = [queue.Queue(depth) for _ in stages]
        self._lock = threading.Lock()
        self._failed_stage: int | None = None
        self._aborted = threading.Event()
        self._ended = False
        self.failure: tuple[Any, Exception] | None = None
        self._threads = [
            threading.Thread(target=self._work, args=(i, stage), daemon=True, name=f"stage{i}")
            for i, stage in enumerate(stages)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, item: Any) -> None:
        """Hand `item` to the first stage (waits while it is busy); StageFailed once a stage
        has failed."""
        while True:
            if self.failure is not None:
                raise StageFailed(str(self.failure[1]))
            try:
                self._queues[0].put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Let every item handed over go through and stop the threads. An interruption while
        waiting aborts (the items the first stage has not started are dropped) and is raised
        once the threads have stopped."""
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                if not self._ended:
                    self._queues[0].put(_END)
                    self._ended = True
                for thread in self._threads:
                    thread.join()
                break
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                self._aborted.set()
        if interrupted is not None:
            raise interrupted

    def _dropping(self, stage: int) -> bool:
        """Aborting drops the frames the first stage has not started; a failure, those of its
        stage and the ones before. A frame past them goes on to the end."""
        failed = self._failed_stage
        return (self._aborted.is_set() and stage == 0) or (failed is not None and failed >= stage)

    def _work(self, stage: int, run: Callable[[Any], Any]) -> None:
        inbox = self._queues[stage]
        outbox = self._queues[stage + 1] if stage + 1 < len(self._queues) else None
        while True:
            item = inbox.get()
            if item is _END:
                if outbox is not None:
                    outbox.put(_END)
                return
            if self._dropping(stage):
                continue
            try:
                result = run(item)
            except Exception as exc:  # the caller reports it with the frame it happened on
                with self._lock:
                    if self.failure is None:
                        self.failure, self._failed_stage = (item, exc), stage
                continue
            if outbox is not None:
                outbox.put(result)
