"""Ctrl-C and SIGTERM as clean interruptions of a long run (pixood-bag-eval, pixood-make-bag,
pixood-infer).

While a command runs, SIGINT raises `KeyboardInterrupt` and SIGTERM raises `Terminated` (a
`KeyboardInterrupt` too) in the main thread, so both stop the frame loop where the tool keeps
what it computed and writes a partial report. Inside a `deferred()` block (one frame's messages
going into the output bag, closing it, writing the report) a signal waits for the block to end,
so the bag is never cut inside a frame and the report is written; a second signal does not
wait. The previous handlers are restored afterwards (the demo
runs bag-eval's `main` inside its own process).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pixood_ros.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, fail

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager or `kill` stopping the run)."""


class _State:
    depth = 0  # nesting of deferred() blocks
    pending: int | None = None  # a signal that arrived inside one


def _interruption(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum: int, _frame: Any) -> None:
    if _State.depth and _State.pending is None:
        _State.pending = signum
        return
    raise _interruption(signum)  # outside deferred blocks, or a second signal: stop now


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal arriving inside the block is raised when the block ends (a second one at once)."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise _interruption(signum)


@contextlib.contextmanager
def signals_as_interruptions() -> Iterator[None]:
    """Install the handlers for the block (main thread only; elsewhere signals cannot be
    handled and Python's defaults stay)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        _State.pending = None


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def describe(exc: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def interruptible(prog: str, body: Callable[[], int | None]) -> int | None:
    """Run a command's body with the handlers installed; an interruption that escapes it (before
    or after the frame loop) ends in one line and its exit code."""
    with signals_as_interruptions():
        try:
            return body()
        except KeyboardInterrupt as exc:
            return fail(prog, describe(exc), exit_code(exc))
