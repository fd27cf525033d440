"""What every command line of the project shares: exit codes, the user-error base class, the
one-line error message, the argparse parser that reports mistakes in one line, argument types, the
options several commands take, and option objects built from their fields.

Contract (README "Commands"): a user mistake ends in one line on stderr, `<command>: error: ...`,
and exit code 2; never a traceback. A failure that is not the user's fault ends with exit code 1,
Ctrl-C with 130, each after one line as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)

_QUALIFIED_ERROR = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception): ")
_MAX_LINE = 1000  # a line, not a page: cut only what no one reads (huge library messages)


class UserError(Exception):
    """A mistake in the command line, the configuration or the inputs: one line, exit code 2.

    Every command's own "bad input" errors derive from it, so one `except UserError` serves all."""


def one_line(exc: BaseException) -> str:
    """The message of `exc` as one line a user can read.

    Errors re-raised from worker processes (DataLoader, multiprocessing) carry the worker's
    traceback in their text: their last line is the real message. Otherwise the first line is."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Traceback (most recent call last)" in text:
        # `pkg.module.SomeError: message`: the user needs the message
        line = _QUALIFIED_ERROR.sub("", lines[-1], count=1)
    else:
        line = lines[0]
    if len(line) > _MAX_LINE:
        line = line[: _MAX_LINE - 3] + "..."
    return line


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    """Print `prog: error: message` on stderr and return `code` (for `return fail(...)`)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command's body; turn user errors, interruptions and failures into one line each.

    UserError -> exit 2; KeyboardInterrupt -> 130; OSError (disk full, permissions) -> exit 1 with
    the system's message. Other exceptions are bugs and keep their traceback."""
    try:
        code = body()
    except UserError as exc:
        return fail(prog, one_line(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        return fail(prog, one_line(exc), EXIT_FAILED)
    return EXIT_OK if code is None else int(code)


def run_parsed(
    prog: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    body: Callable[[argparse.Namespace], int | None],
) -> int:
    """A command's `main`: parse `argv` (`--help` -> 0, a usage error -> 2, already printed in one
    line by OneLineParser), then run `body(args)` under `run_command`. Returns the exit code, so
    `main(argv)` can be called from Python (the demo does) without SystemExit."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_command(prog, lambda: body(args))


class OneLineParser(argparse.ArgumentParser):
    """User mistakes end in one line on stderr and exit code 2, not a usage dump.

    The line names the command: `command` when given (`python -m pixood_ros.demo` calls itself
    `pixood-demo`), else the first word of `prog` (`pixood-bravo`, also for its sub-commands)."""

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command = command or self.prog.split()[0]

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.command}: error: {message}\n")


# --- argument types: each raises ArgumentTypeError with a message that names the rule ---------


def count(text: str) -> int:
    """A whole number >= 0."""
    return _int_at_least(text, 0)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _int_at_least(text, 1)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A float in [0, 1] (thresholds, alphas, fractions)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return value


# --- options several commands share, as argparse parents -----------------------------------------


def progress_parent() -> argparse.ArgumentParser:
    """`--no-progress`: switch off progress bars (logs, CI)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parent


def threshold_parent(default: float, what: str = "anomaly masks") -> argparse.ArgumentParser:
    """`--threshold`: the score at or above which a pixel is masked as anomalous."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--threshold",
        type=unit_interval,
        default=default,
        help=f"score threshold in [0, 1] for {what} (default {default})",
    )
    return parent


# --- option objects ---------------------------------------------------------------------------

T = TypeVar("T")


def options_from(cls: type[T], args: argparse.Namespace | dict[str, Any], **overrides: Any) -> T:
    """Build the dataclass `cls` from the argparse fields of the same names (plus `overrides`),
    so options are not copied field by field in every command."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in values.items() if k in names}
    kwargs.update(overrides)
    return cls(**kwargs)


def split_names(text: str) -> list[str]:
    """`a,b , c` -> ['a', 'b', 'c'] (comma-separated lists on the command line)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def argv_or_sys(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
