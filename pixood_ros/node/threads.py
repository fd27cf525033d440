"""How many CPU threads ONNX Runtime gets in the node: the cores left beside the publisher.

ONNX Runtime's own default takes every core of the machine, so on a small computer the node's
publisher thread (overlay, compression, DDS hand-over of the previous frame) has to fight the
model's threads for a core and the two stages of the pipeline stop overlapping. The node counts
the cores this process may run on (its CPU affinity, which taskset, cgroups cpusets and
container runtimes narrow, unlike `os.cpu_count`) and leaves one of them to the publisher.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may be scheduled on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def intra_op_threads(requested: int = 0) -> int:
    """`requested` when > 0; else the available cores less one for the publisher, at least 1."""
    return requested if requested > 0 else max(1, available_cores() - 1)
