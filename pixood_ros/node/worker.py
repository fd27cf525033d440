"""A pipeline stage: one thread that takes items out of a latest-frame mailbox and hands them to
a function, so that whoever fills the mailbox (subscription callbacks, the inference stage)
never waits for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from pixood_ros.node.mailbox import LatestFrameMailbox

# How often the thread looks at its stop flag while no frame comes.
POLL_S = 0.1


class FrameWorker:
    """Calls `handle(key, item)` for every frame taken from `mailbox`, in its own thread."""

    def __init__(
        self,
        mailbox: LatestFrameMailbox,
        handle: Callable[[Hashable, Any], None],
        name: str = "pixood_worker",
    ) -> None:
        self._mailbox = mailbox
        self._handle = handle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        """Start with an empty mailbox (frames from before are stale)."""
        self._stop.clear()
        self._mailbox.clear()
        self._mailbox.reopen()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[Hashable, Any]]:
        """Wake the thread, wait until the item in hand is done; returns the items left
        waiting (taken out of the mailbox)."""
        self._stop.set()
        self._mailbox.close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self._mailbox.drain()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._mailbox.get(timeout=POLL_S)
            if item is not None:
                self._handle(*item)
