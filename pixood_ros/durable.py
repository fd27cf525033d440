"""Files that are either complete or absent: written to a temporary file beside the target, flushed
to disk (fsync), renamed over the target, and the rename itself flushed (fsync of the folder).

A crash, kill -9 or full disk never leaves a half-written report, checkpoint or manifest, and
the rename replaces a symlink at the target instead of writing through it. Used by every tool that
writes results (reports, summaries, checkpoints, training state).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".pixood_tmp_"


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an exception the file
    written there is fsynced and renamed to `path`; otherwise it is removed."""
    target = Path(path)
    tmp = target.with_name(f"{TEMP_PREFIX}{os.getpid()}_{target.name}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, value: Any) -> None:
    """JSON with a trailing newline; NaN and infinities are refused (they are not JSON)."""
    write_text(path, json.dumps(value, indent=2, allow_nan=False) + "\n")


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new file in `path` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporary files a killed run left in `folder` (ours only: TEMP_PREFIX)."""
    removed = []
    for stale in Path(folder).glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed
