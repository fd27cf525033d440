"""Bucketed lookup of the LR -> mass knot table (docs/method.md §5.7): one gather per score.

The knot table defines F(u), u = log r: linear in r between knots (as scipy's interp1d), the
ramp y_0 e^(u - u_0) below the first knot, constant above the last. The lookup splits [lo, hi]
(where F leaves TAIL and reaches y_last - TAIL) into B equal buckets in u and keeps at most one
knot per bucket: the one farthest from the chord of its bucket. A bucket's row holds that knot and
its kept neighbours, i.e. the two exact pieces of the thinned F over the bucket, so a score is one
row gather, one compare and the interpolation. Between kept knots the lookup is F with knots
dropped: both are piecewise linear in r, so their largest difference sits at a knot and is
computed exactly when the table is built; B doubles (2^8 .. 2^14) until it is at most
``LOOKUP_TOLERANCE`` for every class (the bound reached is kept in ``error``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

LOOKUP_TOLERANCE = 1e-4  # target max |lookup - knot table|, well below the 1e-3 parity of §5.5
TAIL = 1e-6  # mass left to the ramp below lo and to the constant above hi
BUCKETS_LOG2 = range(10, 16)
COARSE = 256  # first-level buckets per class
ROW = 6  # p0, p1, p2 (log-ratio knots), q0, q1, q2 (their masses)
_EXP_FLOOR = -80.0  # exp arguments below this only ever stand for "0"
_LINEAR_BELOW = 1e-4  # knot gaps (in log r) below which r-linear == u-linear to ~1e-5


def exp_nonpositive(x: torch.Tensor) -> torch.Tensor:
    """exp(x) for x <= 0, arguments floored at _EXP_FLOOR: exp of huge negative values or results
    in the denormal range take a 20-40x slower path in the CPU kernels."""
    return torch.exp(x.clamp_min(_EXP_FLOOR))


def r_linear(
    u: torch.Tensor, u0: torch.Tensor, u1: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor
) -> torch.Tensor:
    """Mass at log-ratio u on the piece from (u0, y0) to (u1, y1), linear in r = e^u and clamped
    to the piece: w = (e^d - 1) / (e^gap - 1), written with e^{-x} only."""
    gap = (u1 - u0).clamp_min(0.0)
    d = torch.minimum((u - u0).clamp_min(0.0), gap)
    safe_gap = gap.clamp_min(_LINEAR_BELOW)
    w_exp = (
        exp_nonpositive(d - safe_gap)
        * (1.0 - exp_nonpositive(-d))
        / (1.0 - exp_nonpositive(-safe_gap))
    )
    w_lin = d / gap.clamp_min(1e-30)
    w = torch.where(gap < _LINEAR_BELOW, w_lin, w_exp).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)


def lookup_mass(
    u: torch.Tensor,
    tables: tuple[torch.Tensor, torch.Tensor],
    params: list[torch.Tensor],
    class_index: torch.Tensor,
) -> torch.Tensor:
    """F(u): ``tables`` = coarse rows [C*K1, 4] and fine rows [C*B, 6]; ``params`` = lo,
    K1/(hi - lo), y_lo, hi, y_top and ``class_index`` (int32) the class of each entry, each
    broadcast to or picked for u's entries."""
    coarse_rows, rows = tables
    lo, inv_h, y_lo, hi, y_top = params
    position = ((u - lo) * inv_h).clamp(0.0, float(COARSE - 1)).to(torch.int32)
    coarse = coarse_rows.index_select(0, (class_index * COARSE + position).reshape(-1))
    start, fine_inv, edge, last = coarse.reshape(*u.shape, 4).unbind(-1)
    fine = ((u - edge) * fine_inv).clamp_min(0.0)
    fine = torch.minimum(fine, last).to(torch.int32) + start.to(torch.int32)
    p0, p1, p2, q0, q1, q2 = (
        rows.index_select(0, fine.reshape(-1)).reshape(*u.shape, ROW).unbind(-1)
    )
    right = u >= p1
    inner = r_linear(
        u,
        torch.where(right, p1, p0),
        torch.where(right, p2, p1),
        torch.where(right, q1, q0),
        torch.where(right, q2, q1),
    )
    ramp = y_lo * exp_nonpositive((u - lo).clamp_max(0.0))
    return torch.where(u < lo, ramp, torch.where(u >= hi, y_top, inner)).clamp(0.0, 1.0)


@dataclass
class BucketTable:
    coarse: np.ndarray  # [C * COARSE, 4]: first fine row, fine buckets per unit u, edge, count-1
    rows: np.ndarray  # [C * buckets, 6]
    params: np.ndarray  # [C, 5]: lo, COARSE / (hi - lo), y_lo, hi, y_top
    buckets: int
    error: np.ndarray  # [C] max |lookup - knot table|


def _inverse(u: np.ndarray, y: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The knot table with a knot added where F first reaches ``target`` (on its r-linear
    piece, so F is unchanged) and the index of that knot."""
    i = int(np.searchsorted(y, target, side="left"))
    if i == 0 or i == y.size or y[i] == target:
        return u, y, min(i, y.size - 1)
    r0, r1 = np.exp(u[i - 1] - u[i]), 1.0  # ratios relative to the right knot
    w = (target - y[i - 1]) / (y[i] - y[i - 1])
    at = u[i] + np.log(r0 + w * (r1 - r0))
    return np.insert(u, i, at), np.insert(y, i, target), i


def _fine_buckets(
    points: np.ndarray, lo: float, inv_h: float, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coarse rows [COARSE, 4] (class-local first fine row) and the fine bucket of ``points``:
    coarse bucket j holds 1 + its share of the fine buckets, in proportion to its knots."""
    fine = counts.astype(np.int64)
    starts = np.r_[0, np.cumsum(fine)[:-1]]
    edges = lo + np.arange(COARSE) / inv_h if inv_h > 0 else np.full(COARSE, lo)
    fine_inv = fine * inv_h
    coarse = np.stack([starts, fine_inv, edges, fine - 1], axis=1).astype(np.float64)
    j = np.clip(np.floor((points - lo) * inv_h), 0, COARSE - 1).astype(np.int64)
    k = np.minimum(np.maximum(np.floor((points - edges[j]) * fine_inv[j]), 0), fine[j] - 1)
    return coarse, starts[j] + k.astype(np.int64)


def _class_rows(
    u: np.ndarray, y: np.ndarray, buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse rows [COARSE, 4], fine rows [B, 6] and params [5] of one class's knot table
    (sorted u, non-decreasing y)."""
    if u.size == 0:
        coarse = np.zeros((COARSE, 4))
        return coarse, np.zeros((buckets, ROW)), np.zeros(5)
    u, y, i_lo = _inverse(u, y, TAIL)
    u, y, i_hi = _inverse(u, y, y[-1] - TAIL)
    if y[i_lo] > TAIL:  # the table starts above TAIL: its own ramp is exact
        i_lo = 0
    i_hi = max(i_hi, i_lo)
    lo, hi = u[i_lo], u[i_hi]
    inv_h = COARSE / (hi - lo) if hi > lo else 0.0
    inner = np.arange(i_lo + 1, i_hi)
    per_coarse = np.bincount(
        np.clip(np.floor((u[inner] - lo) * inv_h), 0, COARSE - 1).astype(np.int64),
        minlength=COARSE,
    )
    share = (buckets - COARSE) / max(inner.size, 1)
    coarse, bucket = _fine_buckets(u[inner], lo, inv_h, 1 + np.floor(per_coarse * share))
    if inner.size:
        starts = np.flatnonzero(np.r_[True, np.diff(bucket) != 0])
        group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, inner.size]))
        ends = np.r_[starts[1:], inner.size] - 1
        a, b = inner[starts] - 1, inner[ends] + 1  # the knots around each bucket's knots
        w = (u[inner] - u[a][group]) / np.maximum(u[b] - u[a], 1e-300)[group]
        deviation = np.abs(y[inner] - (y[a][group] + w * (y[b] - y[a])[group]))
        order = np.lexsort((-deviation, group))
        first = order[np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]]
        chosen, chosen_bucket = inner[first], bucket[first]
    else:
        chosen, chosen_bucket = inner, bucket
    kept = np.r_[i_lo, chosen, i_hi]
    kept_bucket = np.r_[-1, chosen_bucket, buckets]
    pos = np.searchsorted(kept_bucket, np.arange(buckets), side="left")
    own = kept_bucket[pos] == np.arange(buckets)
    index = np.stack([kept[pos - 1], kept[pos], kept[np.where(own, pos + 1, pos)]], axis=1)
    rows = np.concatenate([u[index], y[index]], axis=1)
    return coarse, rows, np.array([lo, inv_h, y[i_lo], hi, y[-1]])


def _errors(knots: list[tuple[np.ndarray, np.ndarray]], table: BucketTable) -> np.ndarray:
    """Largest |lookup - knot table| per class, at the knots (float64)."""
    errors = np.zeros(len(knots))
    tables = (torch.from_numpy(table.coarse), torch.from_numpy(table.rows))
    for c, (u, y) in enumerate(knots):
        if u.size == 0:
            continue
        u_t = torch.from_numpy(u)
        picked = [torch.full_like(u_t, float(v)) for v in table.params[c]]
        index = torch.full(u_t.shape, c, dtype=torch.int32)
        got = lookup_mass(u_t, tables, picked, index).numpy()
        inside = (u >= table.params[c, 0]) & (u <= table.params[c, 3])
        errors[c] = max(float(np.abs(got - y)[inside].max(initial=0.0)), TAIL)
    return errors


def build_bucket_table(
    knots: list[tuple[np.ndarray, np.ndarray]], tolerance: float = LOOKUP_TOLERANCE
) -> BucketTable:
    """The smallest fine-bucket count in BUCKETS_LOG2 whose lookup is within ``tolerance`` of
    every class's knot table (the largest one when none is)."""
    table = None
    for log2 in BUCKETS_LOG2:
        buckets = 1 << log2
        built = [_class_rows(u, y, buckets) for u, y in knots]
        coarse = np.concatenate([k + [c * buckets, 0, 0, 0] for c, (k, _, _) in enumerate(built)])
        rows = np.concatenate([r for _, r, _ in built])
        params = np.stack([p for _, _, p in built])
        table = BucketTable(coarse, rows, params, buckets, np.zeros(len(knots)))
        table.error = _errors(knots, table)
        if table.error.max() <= tolerance:
            break
    assert table is not None
    return table
