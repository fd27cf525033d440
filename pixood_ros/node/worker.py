"""The inference worker: one thread that takes frames out of the latest-frame mailbox and hands
them to the node, so that subscription callbacks never wait for the model."""

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
        self, mailbox: LatestFrameMailbox, handle: Callable[[Hashable, Any], None]
    ) -> None:
        self._mailbox = mailbox
        self._handle = handle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start with an empty mailbox (frames from before are stale)."""
        self._stop.clear()
        self._mailbox.clear()
        self._mailbox.reopen()
        self._thread = threading.Thread(target=self._run, name="pixood_worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wake the thread, wait until the frame in hand is done, drop the frames waiting."""
        self._stop.set()
        self._mailbox.close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._mailbox.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._mailbox.get(timeout=POLL_S)
            if item is not None:
                self._handle(*item)
