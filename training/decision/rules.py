"""Decision rules: which point of the (logit, similarity) plane the likelihood ratio is read at.

``published``: the ratio N(z; class) / N(z; ood) at z itself (docs/method.md §5.4). It is not
monotone: where the class spread along an axis exceeds the OOD model's, the log-ratio has a
minimum on that axis and rises again beyond it, so pixels the classifier is surest are *not* of
the class score class-like (docs/method.md §5.6).

``monotone`` (default): the ratio at z clamped into a per-class box [low, high]. ``high`` is the
class mean (more typical than the mean is not more in-distribution); ``low`` is the ratio's
turning point on each axis through the mean, moved towards the mean where the coordinates'
correlation would otherwise let the ratio fall inside the box. Inside the box the gradient of the
log-ratio (affine in z) is >= 0 at all four corners, hence everywhere, so the clamped ratio is
non-decreasing in each coordinate. Only fitted parameters are used.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Rule = Literal["monotone", "published"]
RULES: tuple[str, ...] = ("monotone", "published")
_NO_TURN = 1.0e6  # "no turning point": the clamp sits 1e6 OOD sds away (never reached)


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"decision rule must be one of {RULES}, got {rule!r}")
    return rule


def _class_box(
    mean: np.ndarray, cov: np.ndarray, ood_mean: np.ndarray, ood_cov: np.ndarray
) -> np.ndarray:
    """Distances [2] below the class mean where the clamp of each coordinate sits."""
    p, q = np.linalg.inv(cov), np.linalg.inv(ood_cov)
    a = q - p  # gradient of the log-ratio: g(z) = g_mean + a (z - mean)
    g = q @ (mean - ood_mean)
    active = g > 0  # coordinates where the mean lies on the in-distribution side
    delta = np.zeros(2)
    for i in np.flatnonzero(active):
        limit = _NO_TURN * np.sqrt(ood_cov[i, i])
        for k in np.flatnonzero(active):  # g_k must stay >= 0 when coordinate i moves down
            if a[k, i] > 0:
                limit = min(limit, g[k] / a[k, i])
        delta[i] = limit
    # the corner where both coordinates moved down
    push = a[active][:, active] @ delta[active] if active.any() else np.zeros(0)
    with np.errstate(divide="ignore"):
        ratios = np.where(push > 0, g[active] / np.where(push > 0, push, 1.0), np.inf)
    return delta * min(1.0, float(ratios.min()) if ratios.size else 1.0)


def monotone_box(
    means: np.ndarray, covs: np.ndarray, ood_means: np.ndarray, ood_covs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class clamp box (low [C, 2], high [C, 2]) of the monotone rule, in float64."""
    delta = np.stack(
        [
            _class_box(m, c, om, oc)
            for m, c, om, oc in zip(means, covs, ood_means, ood_covs, strict=True)
        ]
    )
    return means - delta, np.array(means, dtype=np.float64)


def clamp_points(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """points [n, 2] clamped into [low, high] per coordinate."""
    return np.minimum(np.maximum(points, low), high)
