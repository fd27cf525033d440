"""Small timing and memory helpers shared by the speed measurements (`pixood-bench`)."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, device: str = "cpu"
) -> dict[str, float]:
    """Median / mean / min milliseconds of `fn()` over `repeats` runs after `warmup` runs."""
    return time_alternating({"fn": fn}, repeats, warmup, device)["fn"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, kB on Linux


def time_alternating(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    device: str = "cpu",
    settle: int = 0,
) -> dict[str, dict[str, float]]:
    """`time_call` for several functions whose times are compared, one timed call of each per
    round: load changes on a shared machine then hit every side alike, so their ratio stays
    honest. `settle` untimed calls precede each timed one (an engine fed a new input size
    re-plans its memory on the first call, which a camera's fixed-size stream never pays)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            for _ in range(settle):
                fn()
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) * 1000.0)
    return {
        name: {
            "median_ms": statistics.median(values),
            "mean_ms": statistics.fmean(values),
            "min_ms": min(values),
            "repeats": len(values),
        }
        for name, values in samples.items()
    }
