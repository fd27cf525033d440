"""Float64 Gaussian helpers of the decision strategy (docs/method.md §5.2): covariance floors,
closed-form log-pdfs, precision terms and the distance -> similarity map."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

DIST_TO_SIM_SLOPE = 0.5
MAX_ABS_CORRELATION = 1.0 - 1e-6


def distance_to_similarity(dists: torch.Tensor, slope: float = DIST_TO_SIM_SLOPE) -> torch.Tensor:
    return 1.0 / (1.0 + slope * dists)


def regularize_covariance(cov: np.ndarray, min_var: Sequence[float] | np.ndarray) -> np.ndarray:
    """Symmetric positive-definite version of a 2x2 covariance: variances raised to at least
    ``min_var`` (NaN counts as 0), |correlation| capped at ``MAX_ABS_CORRELATION``. A
    well-conditioned covariance whose variances exceed the floors is returned unchanged."""
    cov = np.nan_to_num(np.asarray(cov, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    floors = np.asarray(min_var, dtype=np.float64)
    var = np.maximum(np.diag(cov), floors)
    limit = MAX_ABS_CORRELATION * math.sqrt(var[0] * var[1])
    off = float(np.clip(0.5 * (cov[0, 1] + cov[1, 0]), -limit, limit))
    return np.array([[var[0], off], [off, var[1]]])


def gaussian_logpdf(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Closed-form log N(points [n, 2]; mean, cov) in float64."""
    det = cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[1, 0]
    d0, d1 = points[:, 0] - mean[0], points[:, 1] - mean[1]
    quad = (cov[1, 1] * d0 * d0 - 2.0 * cov[0, 1] * d0 * d1 + cov[0, 0] * d1 * d1) / det
    return -math.log(2.0 * math.pi) - 0.5 * math.log(det) - 0.5 * quad


def precision_terms(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[C, 2] means, [C, 2, 2] covs -> precision entries [C, 3] (p00, p01, p11), log-norm [C]."""
    det = covs[:, 0, 0] * covs[:, 1, 1] - covs[:, 0, 1] * covs[:, 1, 0]
    prec = np.stack([covs[:, 1, 1] / det, -covs[:, 0, 1] / det, covs[:, 0, 0] / det], axis=1)
    log_norm = -math.log(2.0 * math.pi) - 0.5 * np.log(det)
    return prec, log_norm
