"""The likelihood-ratio -> class-mass mapping as a knot table (docs/method.md §5.3): fitting it on
the (logit, similarity) grid, thinning it, and reading the published interp1d table."""

from __future__ import annotations

import math

import numpy as np

from .gaussian import gaussian_logpdf
from .rules import clamp_points

Box = tuple[np.ndarray, np.ndarray]  # (low [2], high [2]) of the monotone rule
JUMP_MASS = 1e-3  # tie groups above this share of the class mass are jumps of the table


def ratio_mass_knots(
    mean: np.ndarray,
    cov: np.ndarray,
    ood_mean: np.ndarray,
    ood_cov: np.ndarray,
    logit_grid: np.ndarray,
    sim_grid: np.ndarray,
    box: Box | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Knots (U = log r, Y = mass) of the LR -> cumulative class-mass mapping (docs/method.md §5.3).

    Grid points are sorted by log-ratio and grouped by equal value; between consecutive distinct
    values v_{j-1} < v_j a knot sits at the log of the r-midpoint, carrying the mass of groups
    1..j over the total (the published convention, which leaves out the lowest point's mass).
    With ``box`` (monotone rule) the ratio is read at the clamped point, the mass at the point,
    and heavy tie groups become jumps (``_with_jumps``).
    """
    ll, ss = np.meshgrid(logit_grid, sim_grid)  # 'xy' as published
    points = np.stack([ll.ravel(), ss.ravel()], axis=1)
    log_pc = gaussian_logpdf(points, mean, cov)
    at = points if box is None else clamp_points(points, *box)
    u = gaussian_logpdf(at, mean, cov) - gaussian_logpdf(at, ood_mean, ood_cov)
    order = np.argsort(u, kind="stable")
    u_sorted = u[order]
    mass = np.exp(log_pc[order] - log_pc.max())  # normalised below: the shift cancels
    starts = np.flatnonzero(np.r_[True, np.diff(u_sorted) != 0])
    values = u_sorted[starts]
    group_mass = np.add.reduceat(mass, starts)
    cumulative = np.cumsum(group_mass)
    knots_u = np.logaddexp(values[:-1], values[1:]) - math.log(2.0)
    if box is None:
        return knots_u, (cumulative[1:] - group_mass[0]) / cumulative[-1]
    return _with_jumps(values, group_mass / cumulative[-1], knots_u)


def _with_jumps(
    values: np.ndarray, group_mass: np.ndarray, knots_u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the monotone rule's table: tie groups heavier than ``JUMP_MASS`` (points clamped
    to the same corner of the box share one ratio) are point masses, each a zero-width knot pair
    at its ratio; the rest is tabulated as published. The table is right-continuous: at a jump
    it holds the mass at or below the ratio, so a patch at the clamp corner counts its own tie
    group, as the published knots count the group at their upper end."""
    big = group_mass > JUMP_MASS
    big[0] = False  # the lowest group's mass is left out by the published convention
    smooth = np.where(big, 0.0, group_mass)
    y_smooth = np.cumsum(smooth)[1:] - smooth[0]
    jumps_upto = np.cumsum(np.where(big, group_mass, 0.0))  # jump mass at values <= v_j
    y = y_smooth + jumps_upto[:-1]
    k = np.flatnonzero(big)
    # the smooth part at v_k: r-linear between the knots around it (constant after the last)
    left, right = knots_u[k - 1], knots_u[np.minimum(k, knots_u.size - 1)]
    span = np.where(k < knots_u.size, -np.expm1(left - right), 1.0)
    w = np.where(k < knots_u.size, -np.expm1(left - values[k]) * np.exp(values[k] - right), 0.0)
    below, above = y_smooth[k - 1], y_smooth[np.minimum(k, y_smooth.size - 1)]
    y_k = below + w / span * (above - below)
    all_u = np.r_[knots_u, values[k], values[k]]
    all_y = np.r_[y, y_k + jumps_upto[k - 1], y_k + jumps_upto[k]]
    order = np.argsort(all_u, kind="stable")  # a pair stays (below, at or below)
    return all_u[order], all_y[order]


def thin_knots(u: np.ndarray, y: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first and last knot of every epsilon-wide band of Y. Between two kept knots of
    one band the mapping rises by < epsilon (bounded interpolation error); the last knot of a
    band and the first of the next are neighbours in the full table (exact). Both knots of a
    jump (a zero-width pair) are kept."""
    if u.size <= 2 or epsilon <= 0:
        return u, y
    band = np.floor(y / epsilon).astype(np.int64)
    edge = (band[1:] != band[:-1]) | (u[1:] == u[:-1])
    keep = np.r_[True, edge] | np.r_[edge, True]
    return u[keep], y[keep]


def knots_from_interp(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Published interp1d table (x = ratios incl. the leading 0, NaN and the final inf) -> log
    knots. Non-finite and non-positive abscissae are dropped (np.interp ignored the NaN ones,
    docs/method.md §5.5); the leading (0, 0) knot is implied by the ramp below the first knot."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    return np.log(x[keep]), y[keep]


def class_knots(
    means: np.ndarray,
    covs: np.ndarray,
    ood_means: np.ndarray,
    ood_covs: np.ndarray,
    logit_grid: np.ndarray,
    sim_grid: np.ndarray,
    epsilon: float,
    boxes: Box | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Thinned knot tables of every class on one grid; ``boxes`` = (low [C, 2], high [C, 2])
    of the monotone rule, None for the published one."""
    return [
        thin_knots(
            *ratio_mass_knots(
                means[c],
                covs[c],
                ood_means[c],
                ood_covs[c],
                logit_grid,
                sim_grid,
                None if boxes is None else (boxes[0][c], boxes[1][c]),
            ),
            epsilon,
        )  # fmt: skip
        for c in range(len(means))
    ]
