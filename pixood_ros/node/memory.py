"""Keep freed frame-sized buffers in the process instead of handing them back to the OS.

A node handles several multi-megabyte buffers per frame (the received image, its decoded
pixels, each output as it is taken by a subscriber). glibc serves such blocks with mmap or
trims them off the heap top when they are freed, so every frame faults its pages in again:
on a 2-core VM that cost ~25 ms CPU per 1280x720 frame in a subscriber of the five outputs,
more than the ONNX model's own share on one core. Raising the mmap and trim thresholds keeps
the blocks for reuse; the price is that the heap stays at its peak size (a few frames).
This is process-wide, so only entry points (the node's `main`, the node benchmark) call it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameter numbers (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's upper bound for M_MMAP_THRESHOLD on 64-bit systems (blocks larger than this are
# still mmapped, e.g. a 4K float image).
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 256 * 2**20


def keep_frame_buffers() -> bool:
    """Tune glibc malloc for frame-sized buffers; False where that is not possible (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # e.g. musl has no mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
