"""ONNX Runtime's thread count beside the caller's busy threads (pixood_ros/engine/threads.py)."""

import os

from pixood_ros.engine.threads import intra_op_threads


def test_onnx_runtime_gets_the_cores_the_callers_busy_threads_leave(monkeypatch):
    assert intra_op_threads(3) == 3  # asked for: taken as given
    # the node: one core left to its publisher thread
    for cores, threads in (({0}, 1), ({0, 1}, 1), (set(range(8)), 7), ({2, 5, 6}, 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, c=cores: c, raising=False)
        assert intra_op_threads(0) == threads
    # bag-eval keeps three stage threads busy beside the model
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert intra_op_threads(0, reserved=3) == 5
    assert intra_op_threads(2, reserved=3) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert intra_op_threads(0, reserved=3) == 1
