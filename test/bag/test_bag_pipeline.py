"""The frame loop's stages in threads keep the frame order, finish what was read when stopped,
and stop cleanly on a failing stage (frames before it complete, none after it)."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from pixood_ros.bag.pipeline import Pipeline, StageFailed


def jittery(name: str, seen: dict[str, list[int]], fail_at: int | None = None):
    """A stage that takes a random short time, records the items it finished and raises on
    `fail_at`."""
    seen[name] = []
    rng = random.Random(name)

    def stage(item: int) -> int:
        time.sleep(rng.random() * 0.003)
        if item == fail_at:
            raise OSError(28, "No space left on device")
        seen[name].append(item)
        return item

    return stage


def test_every_item_goes_through_every_stage_in_order():
    seen: dict[str, list[int]] = {}
    pipeline = Pipeline([jittery(n, seen) for n in ("infer", "write", "score")])
    for item in range(40):
        pipeline.put(item)
    pipeline.finish()
    assert seen == {name: list(range(40)) for name in ("infer", "write", "score")}
    assert pipeline.failure is None


@pytest.mark.parametrize("failing", ["infer", "write"])
def test_a_failing_stage_stops_itself_and_the_stages_before_it(failing):
    seen: dict[str, list[int]] = {}
    stages = [jittery(n, seen, 7 if n == failing else None) for n in ("infer", "write", "score")]
    pipeline = Pipeline(stages)
    with pytest.raises(StageFailed, match="No space left"):
        for item in range(1000):
            pipeline.put(item)
    pipeline.finish()
    item, exc = pipeline.failure
    assert item == 7 and isinstance(exc, OSError)
    assert seen["score"] == list(range(7))  # the frames before the failure are finished
    assert seen[failing] == list(range(7))
    assert len(seen["infer"]) < 20  # the reading stopped soon after


def test_an_interruption_while_finishing_drops_unstarted_frames_and_is_raised():
    seen: dict[str, list[int]] = {}

    def slow(item: int) -> int:
        if item == 2:
            # Ctrl-C while the caller waits in finish()
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.02)
        seen.setdefault("infer", []).append(item)
        return item

    pipeline = Pipeline([slow, jittery("write", seen)], depth=20)
    for item in range(20):
        pipeline.put(item)
    with pytest.raises(KeyboardInterrupt):
        pipeline.finish()
    done = seen["infer"]
    assert 3 <= len(done) < 20 and done == list(range(len(done)))
    assert seen["write"] == done  # a frame past the first stage went on to the end
