"""The likelihood-ratio -> class-mass mapping as a knot table (docs/method.md §5.3): fitting it on
the (logit, similarity) grid, thinning it, and reading the published interp1d table."""

from __future__ import annotations

import math

import numpy as np

from .gaussian import gaussian_logpdf
from .rules import clamp_points

Box = tuple[np.ndarray, np.ndarray]  # (low [2], high [2]) of the monotone rule


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
    With ``box`` (monotone rule) the ratio is read at the clamped point, the mass at the point.
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
    y = (cumulative[1:] - group_mass[0]) / cumulative[-1]
    knots_u = np.logaddexp(values[:-1], values[1:]) - math.log(2.0)
    return knots_u, y


def thin_knots(u: np.ndarray, y: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first and last knot of every epsilon-wide band of Y. Between two kept knots of
    one band the mapping rises by < epsilon (bounded interpolation error); the last knot of a
    band and the first of the next are neighbours in the full table (exact)."""
    if u.size <= 2 or epsilon <= 0:
        return u, y
    band = np.floor(y / epsilon).astype(np.int64)
    edge = band[1:] != band[:-1]
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
