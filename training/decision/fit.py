"""Fitting the decision strategy on training patches (docs/method.md §5.1-§5.3), in float64.

Differences from the published code, all for robustness (same mathematics otherwise):
- the ratio is u = log N_c - log N_ood from closed-form log-pdfs, finite everywhere, so the
  published NaN/inf scores (pdf underflow, §5.5) cannot occur;
- the OOD covariance is the analytic diag((a/4)^2, (b/8)^2) (a, b = mean over classes of the
  per-class 0.9-quantiles of logit and similarity) instead of the sample covariance of 10000
  random draws, which made every retraining differ (§5.2, §5.5.7);
- singular covariances are regularised (variance >= one grid step squared, |correlation| <=
  1 - 1e-6); tied ratios keep their mass; a class without training patches scores 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .gaussian import DIST_TO_SIM_SLOPE, regularize_covariance
from .knots import class_knots
from .rules import check_rule, monotone_box
from .strategy import DEFAULT_EPSILON, GRID_MARGIN, GRID_SIZE, DecisionStrategy


def _as_numpy(values: Any, dtype: Any = np.float64) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double() if dtype == np.float64 else values.detach().cpu()
        return values.numpy().astype(dtype, copy=False)
    return np.asarray(values, dtype=dtype)


def fit_decision(
    labels: Any,
    logits: Any,
    dists: Any,
    num_classes: int,
    *,
    grid_size: int = GRID_SIZE,
    epsilon: float = DEFAULT_EPSILON,
    slope: float = DIST_TO_SIM_SLOPE,
    ignore_index: int = 255,
    rule: str = "monotone",
) -> DecisionStrategy:
    """labels [N] (``ignore_index`` = void), logits [N, C] (raw patch logits), dists [N, C]
    (nearest-prototype distances). ``grid_size`` points per axis (published 2000) and the
    table tolerance ``epsilon`` trade fit time / table size for resolution; ``rule`` picks the
    decision rule (rules.py) the knot tables are fitted for."""
    check_rule(rule)
    y = _as_numpy(labels, np.int64).reshape(-1)
    logit = _as_numpy(logits).reshape(y.size, -1)
    dist = _as_numpy(dists).reshape(y.size, -1)
    if logit.shape[1] != num_classes or dist.shape[1] != num_classes:
        raise ValueError(f"logits and dists must be [N, {num_classes}]")
    if not (np.isfinite(logit).all() and np.isfinite(dist).all()):
        raise ValueError("logits and dists must be finite")
    sim = 1.0 / (1.0 + slope * np.maximum(dist, 0.0))
    top = max(float(logit.max()), 0.0) + GRID_MARGIN if logit.size else GRID_MARGIN
    logit_grid = np.linspace(-top, top, grid_size)
    sim_grid = np.linspace(0.0, 1.0, grid_size)
    floors = np.array([(2.0 * top / (grid_size - 1)) ** 2, (1.0 / (grid_size - 1)) ** 2])

    means = np.zeros((num_classes, 2))
    covs = np.tile(np.diag(floors), (num_classes, 1, 1))
    quantiles, fitted = [], []
    for c in range(num_classes):
        rows = y == c
        if not rows.any():
            continue
        z = np.stack([logit[rows, c], sim[rows, c]], axis=1)
        means[c] = z.mean(axis=0)
        cov = np.cov(z.T) if z.shape[0] > 1 else np.zeros((2, 2))
        covs[c] = regularize_covariance(cov, floors)
        quantiles.append(np.quantile(z, 0.9, axis=0))
        fitted.append(c)
    if not fitted:
        raise ValueError("no labelled patch of any class to fit the decision strategy")
    a_bar, b_bar = np.mean(quantiles, axis=0)
    ood_cov = regularize_covariance(np.diag([(a_bar / 4.0) ** 2, (b_bar / 8.0) ** 2]), floors)
    ood_means, ood_covs = np.zeros((num_classes, 2)), np.tile(ood_cov, (num_classes, 1, 1))
    boxes = monotone_box(means, covs, ood_means, ood_covs) if rule == "monotone" else None
    knots = class_knots(means, covs, ood_means, ood_covs, logit_grid, sim_grid, epsilon, boxes)
    empty = (np.zeros(0), np.zeros(0))
    knots = [k if c in fitted else empty for c, k in enumerate(knots)]
    return DecisionStrategy.from_log_knots(means, covs, ood_means, ood_covs, knots, slope, rule)
