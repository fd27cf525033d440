"""Anomaly scores stored as float16 without losing their ranking (docs/evaluation.md §3.6).

SMIYC submissions hold float16 scores. float16 has 2^-11 ≈ 4.9e-4 spacing just below 1, and a
calibrated PixOOD score map crowds its anomalies within 5e-4 of 1: cast directly, most of them
become one or two values and AP drops. `to_storage` maps a score s in [0, 1] to

    t = -log(1 - s) / LOG_SCALE        (t = 1 for s = 1)

which is strictly increasing, so every ranking metric is unchanged; t stays in [0, 1] ("higher
= more anomalous", what the toolkits expect), and float16's constant relative precision on t
becomes a constant relative precision on 1 - s: two scores stay apart after the cast when their
distances to 1 differ by more than about 1 %. `from_storage` is the inverse.
"""

from __future__ import annotations

import numpy as np

#: -log(1 - s) of the float32 score closest to 1 below it is 24·log 2 ≈ 16.64: every float32
#: score below 1 lands below t = 1, which stays for s = 1 itself.
LOG_SCALE = 17.0


def to_storage(scores: np.ndarray) -> np.ndarray:
    """float64 t in [0, 1] of scores in [0, 1] (ValueError outside, or for NaN)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size and not (np.all(s >= 0.0) and np.all(s <= 1.0)):
        raise ValueError("stored scores must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        t = -np.log1p(-s) / LOG_SCALE
    return np.minimum(t, 1.0)


def from_storage(stored: np.ndarray) -> np.ndarray:
    """The scores back from stored values (float64), up to the storage precision."""
    t = np.asarray(stored, dtype=np.float64)
    return -np.expm1(-t * LOG_SCALE)


def to_float16(scores: np.ndarray) -> np.ndarray:
    """Scores as the float16 values a submission stores."""
    return to_storage(scores).astype(np.float16)
