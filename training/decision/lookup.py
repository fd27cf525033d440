"""Bucketed lookup of the LR -> mass knot table (docs/method.md §5.7): three flat gathers per score.

The knot table defines F(u), u = log r: linear in r between knots (as scipy's interp1d), the ramp
y_0 r / r_0 below the first knot, constant above the last, and right-continuous at a jump (a
zero-width knot pair: F at the pair's ratio is its upper mass). Per class, [lo, hi] (where F
leaves TAIL and reaches y_last - TAIL) is cut into COARSE equal buckets; coarse bucket j gets
1 + its share of B fine buckets in proportion to its knots. Each fine bucket keeps at most one
knot p (a pair counts as one; lo, hi and jumps first, otherwise the knot farthest from its
bucket's chord) and stores the two exact pieces around it as F = A + B e^(u - p): one gather for
p, one compare u >= p, two gathers for A and B. The bucket index is computed by the same float32
function when the table is built and when it is read, and it is monotone in u, so every query
lies between the kept knots around its bucket and the compare resolves jumps exactly.

Between kept knots the lookup is F with knots dropped: both are piecewise linear in r, so their
largest difference sits at a knot (or just left of a jump). It is measured there in float32 when
the table is built; B doubles (2^10 .. 2^15) until it is at most ``LOOKUP_TOLERANCE`` for every
class (the bound reached is kept in ``error``).

The graph is laid out for ONNX Runtime's CPU kernels: scores as [C, N] (a per-class constant is a
[C, 1] column, whose broadcast is as cheap as a same-shape op; a [C] row broadcast is ~6x slower)
and tables as flat 1-D arrays read by ``torch.gather`` (GatherElements, ~10x faster than Gather).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

LOOKUP_TOLERANCE = 1e-4  # target max |lookup - knot table|, well below the 1e-3 parity of §5.5
TAIL = 1e-6  # mass left to the ramp below lo and to the constant above hi
BUCKETS_LOG2 = range(10, 16)
COARSE = 256  # first-level buckets per class
JUMP_WEIGHT = 16.0  # a jump must own its bucket: it gets the fine buckets of 16 knots
_V_MAX = float(np.nextafter(np.float32(COARSE), np.float32(0)))  # keeps v's bucket in the class
_EXP_RANGE = (-80.0, 88.0)  # e^x stays finite and out of the slow denormal range


@dataclass
class Lookup:
    """Flat float32 / int32 tables of all classes (``classes`` rows each for the params)."""

    inv: torch.Tensor  # [C] coarse buckets per unit u
    shift: torch.Tensor  # [C] -lo * inv
    coarse_base: torch.Tensor  # [C] int32: c * COARSE
    fine_count: torch.Tensor  # [C * COARSE] float32: fine buckets of a coarse bucket
    fine_start: torch.Tensor  # [C * COARSE] int32: its first fine bucket (global)
    knot: torch.Tensor  # [C * B]: the bucket's knot p
    a: torch.Tensor  # [2 * C * B]: A of (left, right) piece
    b: torch.Tensor  # [2 * C * B]: B of (left, right) piece

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in LOOKUP_FIELDS}


LOOKUP_FIELDS = tuple(Lookup.__dataclass_fields__)


def _flat_take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a 1-D table, exported as one GatherElements."""
    return torch.gather(table, 0, index.reshape(-1)).reshape(index.shape)


def fine_bucket(u: torch.Tensor, table: Lookup, per_class: list[torch.Tensor]) -> torch.Tensor:
    """Global fine bucket (int32) of every u; ``per_class`` = inv, shift, coarse_base broadcast
    to u (a [C, 1] column) or picked per entry. Monotone in u within a class."""
    inv, shift, coarse_base = per_class
    v = (u * inv + shift).clamp(0.0, _V_MAX)
    whole = torch.floor(v)
    coarse = whole.to(torch.int32) + coarse_base
    inside = (v - whole) * _flat_take(table.fine_count, coarse)
    return inside.to(torch.int32) + _flat_take(table.fine_start, coarse)


def lookup_mass(u: torch.Tensor, table: Lookup, per_class: list[torch.Tensor]) -> torch.Tensor:
    """F(u) for float32 u (see ``fine_bucket`` for ``per_class``)."""
    bucket = fine_bucket(u, table, per_class)
    offset = u - _flat_take(table.knot, bucket)
    side = bucket * 2 + (offset >= 0.0).to(torch.int32)
    x = torch.exp(offset.clamp(*_EXP_RANGE))
    return (_flat_take(table.a, side) + _flat_take(table.b, side) * x).clamp(0.0, 1.0)


def _points(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct knot positions with the mass just left of (yl) and at (yr) each."""
    first = np.r_[True, u[1:] != u[:-1]]
    last = np.r_[u[1:] != u[:-1], True]
    return u[first], y[first], y[last]


def _mass_at(u: np.ndarray, y: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The knot table's F at ``query`` in float64 (right-continuous at jumps)."""
    pu, yl, yr = _points(u, y)
    i = np.searchsorted(pu, query, side="right") - 1
    j = np.minimum(i + 1, pu.size - 1)
    base = np.where(i >= 0, pu[np.maximum(i, 0)], -np.inf)
    y0 = np.where(i >= 0, yr[np.maximum(i, 0)], 0.0)
    # r-linear weight from the point at/below the query to the next one (from r = 0 below u_0)
    with np.errstate(invalid="ignore", over="ignore"):  # the branches np.where drops
        w = np.exp(query - pu[j]) * -np.expm1(base - query) / -np.expm1(base - pu[j])
    return np.where(i >= pu.size - 1, yr[-1], y0 + np.clip(w, 0, 1) * (yl[j] - y0))


def _range(u: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """[lo, hi]: where F first reaches TAIL (the first knot when it starts above) and y_last -
    TAIL, both on F's r-linear pieces (knots added there leave F unchanged)."""
    ends = []
    for target in (TAIL, y[-1] - TAIL):
        i = int(np.clip(np.searchsorted(y, target, side="left"), 0, y.size - 1))
        if i == 0 or y[i] == target or u[i] == u[i - 1]:
            ends.append(float(u[i]))
            continue
        w = (target - y[i - 1]) / (y[i] - y[i - 1])
        ends.append(float(u[i] + np.log(np.exp(u[i - 1] - u[i]) * (1 - w) + w)))
    return ends[0], max(ends)


def _pieces(pu: np.ndarray, yl: np.ndarray, yr: np.ndarray, own: np.ndarray) -> np.ndarray:
    """[len(own), 4]: (A, B) of the left and right piece around kept points ``own`` (indices
    into pu, sorted; -1 = none before, the ramp from r = 0; beyond the last: constant)."""
    p = pu[own]
    before = np.r_[-1, own[:-1]]
    after = np.r_[own[1:], -1]
    y_left = np.where(before >= 0, yr[before], 0.0)
    with np.errstate(over="ignore"):  # a far neighbour: e^gap = inf, the piece is flat
        b_left = (yl[own] - y_left) / np.where(before >= 0, -np.expm1(pu[before] - p), 1.0)
        gap = np.where(after >= 0, pu[after] - p, 1.0)
        b_right = np.where(after >= 0, (yl[after] - yr[own]) / np.expm1(gap), 0.0)
    return np.stack([yl[own] - b_left, b_left, yr[own] - b_right, b_right], axis=1)


def _with_range(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The table with knots added at float32 lo and hi (on F, so F is unchanged)."""
    lo, hi = (float(np.float32(v)) for v in _range(u, y))
    extra = np.array([v for v in (lo, hi) if v not in u])
    at = np.searchsorted(u, extra)
    return np.insert(u, at, extra), np.insert(y, at, _mass_at(u, y, extra)), lo, hi


def _class_lookup(u: np.ndarray, y: np.ndarray, buckets: int) -> Lookup:
    """Class-local tables (coarse_base 0, fine_start from 0) of one knot table."""
    u, y, lo, hi = _with_range(u, y)
    pu, yl, yr = _points(u, y)
    inv = np.float32(COARSE / (hi - lo) if hi > lo else 0.0)
    f32 = torch.float32
    table = Lookup(torch.tensor([inv]), torch.tensor([-lo * inv], dtype=f32),
                   torch.zeros(1, dtype=torch.int32), torch.ones(COARSE),
                   torch.zeros(COARSE, dtype=torch.int32), torch.zeros(0), torch.zeros(0),
                   torch.zeros(0))  # fmt: skip
    per_class = [table.inv, table.shift, table.coarse_base]
    u32 = torch.from_numpy(pu).float()
    inner = (pu > lo) & (pu < hi)
    coarse = torch.floor((u32 * table.inv + table.shift).clamp(0.0, _V_MAX)).long().numpy()
    # fine buckets in proportion to the knots in [lo, hi], a jump weighing JUMP_WEIGHT knots
    weight = np.where((pu >= lo) & (pu <= hi), np.where(yr > yl, JUMP_WEIGHT, 1.0), 0.0)
    counts = np.bincount(coarse, weight, minlength=COARSE)
    fine = 1 + np.floor(counts * ((buckets - COARSE) / max(weight.sum(), 1.0)))
    table.fine_count = torch.from_numpy(fine).float()
    table.fine_start = torch.from_numpy(np.r_[0, np.cumsum(fine)[:-1]]).to(torch.int32)
    bucket = fine_bucket(u32, table, per_class).long().numpy()
    # priority: lo and hi, then jumps, then the distance from the chord of the neighbours; the
    # points beyond [lo, hi] (F within TAIL of the ramp / constant there) last
    y_mid = 0.5 * (yl + yr)
    chord = np.interp(pu, pu[[0, -1]], y_mid[[0, -1]])
    if pu.size > 2:
        w = (pu[1:-1] - pu[:-2]) / (pu[2:] - pu[:-2])
        chord[1:-1] = y_mid[:-2] + w * (y_mid[2:] - y_mid[:-2])
    priority = np.where(yr > yl, 1.0 + yr - yl, np.abs(y_mid - chord))
    priority = np.where(inner, priority, np.where((pu == lo) | (pu == hi), 3.0, -1.0))
    order = np.lexsort((-priority, bucket))
    own = order[np.r_[True, bucket[order][1:] != bucket[order][:-1]]]  # sorted by bucket
    pieces = _pieces(pu, yl, yr, own)
    row = np.minimum(np.searchsorted(bucket[own], np.arange(buckets)), own.size - 1)
    table.knot = torch.from_numpy(pu[own][row]).float()
    table.a = torch.from_numpy(pieces[row][:, [0, 2]].reshape(-1)).float()
    table.b = torch.from_numpy(pieces[row][:, [1, 3]].reshape(-1)).float()
    return table


def _error(u: np.ndarray, y: np.ndarray, table: Lookup) -> float:
    """max |lookup - F| at the knots and just left of each jump, the lookup run in float32."""
    pu, yl, yr = _points(u, y)
    left = np.nextafter(pu[yr > yl].astype(np.float32), np.float32(-np.inf))
    query = torch.from_numpy(np.r_[pu.astype(np.float32), left])
    got = lookup_mass(query, table, [table.inv, table.shift, table.coarse_base])
    return float(np.abs(got.double().numpy() - _mass_at(u, y, query.double().numpy())).max())


def _empty(buckets: int) -> Lookup:
    """F = 0: a class without a table."""
    zeros = torch.zeros
    return Lookup(zeros(1), zeros(1), zeros(1, dtype=torch.int32), torch.ones(COARSE),
                  zeros(COARSE, dtype=torch.int32), zeros(buckets), zeros(2 * buckets),
                  zeros(2 * buckets))  # fmt: skip


def build_lookup(
    knots: list[tuple[np.ndarray, np.ndarray]], tolerance: float = LOOKUP_TOLERANCE
) -> tuple[Lookup, int, np.ndarray]:
    """The tables of all classes, their fine-bucket count B and the error of each class: the
    smallest B in BUCKETS_LOG2 within ``tolerance`` for every class (the largest when none is)."""
    for log2 in BUCKETS_LOG2:
        buckets = 1 << log2
        tables = [_class_lookup(u, y, buckets) if u.size else _empty(buckets) for u, y in knots]
        pairs = zip(knots, tables, strict=True)
        error = np.array([_error(u, y, t) if u.size else 0.0 for (u, y), t in pairs])
        if error.max() <= tolerance:
            break
    base = torch.arange(len(knots), dtype=torch.int32)
    joined = Lookup(
        *(torch.cat([getattr(t, name) for t in tables]) for name in ("inv", "shift")),
        base * COARSE,
        torch.cat([t.fine_count for t in tables]),
        torch.cat([t.fine_start + c * buckets for c, t in enumerate(tables)]),
        *(torch.cat([getattr(t, name) for t in tables]) for name in ("knot", "a", "b")),
    )
    return joined, buckets, error
