"""How many CPU threads ONNX Runtime gets: the cores left beside the caller's other busy threads.

ONNX Runtime's own default takes every core of the machine, so on a small computer the threads
that work beside the model (the node's publisher; bag-eval's decoding, writing and scoring
stages) fight the model's threads for the cores: every parallel section of the model then waits
for a worker that is descheduled, and the stages stop overlapping. The core count is this
process's CPU affinity (which taskset, cgroups cpusets and container runtimes narrow, unlike
`os.cpu_count`), less the threads the caller keeps busy.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may be scheduled on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def intra_op_threads(requested: int = 0, reserved: int = 1) -> int:
    """`requested` when > 0; else the available cores less `reserved` (the caller's other busy
    threads), at least 1."""
    return requested if requested > 0 else max(1, available_cores() - reserved)
