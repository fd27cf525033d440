"""Stage 3 of PixOOD: the Neyman-Pearson decision strategy (docs/method.md §5), exportable.

Per class c a patch is mapped to z_c = (logit_c, sim_c), sim = 1 / (1 + 0.5 d_c). Two Gaussians
model z_c: the class model N(m_c, S_c) fitted on training patches of class c and a fixed broad
"OOD guess" N(0, S_ood). The score S_c = F_c(r_c) is the fraction of the class model's mass (on a
2000 x 2000 grid) whose likelihood ratio r = N_c / N_ood is lower than the patch's: a p-value-like
number in [0, 1], small = unlike class c.

Differences from the published code, all for robustness (same mathematics otherwise):
- Everything runs in the log domain: the ratio is u = log N_c - log N_ood from closed-form
  log-pdfs, finite everywhere, so the published NaN/inf scores (pdf underflow, §5.5) cannot occur.
- The OOD covariance is the analytic diag((a/4)^2, (b/8)^2) (a, b = mean over classes of the
  per-class 0.9-quantiles of logit and similarity) instead of the sample covariance of 10000
  random draws, which made every retraining differ (§5.2, §5.5.7).
- Singular or near-singular covariances (constant feature, fewer than 2 samples) are regularised:
  each variance is raised to at least one grid step squared and |correlation| is capped at
  1 - 1e-6 (published evaluation raised LinAlgError there).
- Tied ratios keep their mass (published code skipped ties and dropped their mass).
- A class without any training patch scores 0 everywhere (published code raised).
- The LR -> mass mapping is stored as a knot table in log-ratio space, thinned so that the mass
  rises by at most ``epsilon`` between kept knots (both ends of larger jumps are kept, so
  interpolation is exact there), and evaluated by an unrolled binary search with linear
  interpolation in r, as scipy's interp1d did. Only Gather/compare/Where/Exp ops: exports to
  ONNX (dynamo, opset 18) without searchsorted/bucketize.

(One module of ~415 lines on purpose: fitting and the exportable evaluation share the knot-table
format, and reading both side by side is how one checks that they agree.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

DIST_TO_SIM_SLOPE = 0.5
GRID_SIZE = 2000
GRID_MARGIN = 5.0  # logit grid spans [-(max logit + 5), max logit + 5]
DEFAULT_EPSILON = 1e-4
MAX_ABS_CORRELATION = 1.0 - 1e-6
_PAD_U = 3.0e38  # table padding: above every finite log-ratio
_LOGIT_LIMIT = 1.0e9
_U_LIMIT = 1.0e30
_EXP_FLOOR = -80.0  # exp arguments below this only ever stand for "0"
_LINEAR_BELOW = 1e-4  # knot gaps (in log r) below which r-linear == u-linear to ~1e-5


def distance_to_similarity(dists: torch.Tensor, slope: float = DIST_TO_SIM_SLOPE) -> torch.Tensor:
    return 1.0 / (1.0 + slope * dists)


# -- float64 fitting helpers (numpy) ------------------------------------------------------------
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


def ratio_mass_knots(
    mean: np.ndarray,
    cov: np.ndarray,
    ood_mean: np.ndarray,
    ood_cov: np.ndarray,
    logit_grid: np.ndarray,
    sim_grid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Knots (U = log r, Y = mass) of the LR -> cumulative class-mass mapping (docs/method.md §5.3).

    Grid points are sorted by log-ratio and grouped by equal value; between consecutive distinct
    values v_{j-1} < v_j a knot sits at the log of the r-midpoint, carrying the mass of groups
    1..j over the total (the published convention, which leaves out the lowest point's mass).
    """
    ll, ss = np.meshgrid(logit_grid, sim_grid)  # 'xy' as published
    points = np.stack([ll.ravel(), ss.ravel()], axis=1)
    log_pc = gaussian_logpdf(points, mean, cov)
    u = log_pc - gaussian_logpdf(points, ood_mean, ood_cov)
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


# -- the module ---------------------------------------------------------------------------------
def _precision_terms(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[C, 2] means, [C, 2, 2] covs -> precision entries [C, 3] (p00, p01, p11), log-norm [C]."""
    det = covs[:, 0, 0] * covs[:, 1, 1] - covs[:, 0, 1] * covs[:, 1, 0]
    prec = np.stack([covs[:, 1, 1] / det, -covs[:, 0, 1] / det, covs[:, 0, 0] / det], axis=1)
    log_norm = -math.log(2.0 * math.pi) - 0.5 * np.log(det)
    return prec, log_norm


def _exp_nonpositive(x: torch.Tensor) -> torch.Tensor:
    """exp(x) for x <= 0, arguments floored at _EXP_FLOOR: exp of huge negative values (table
    padding at -3e38) or results in the denormal range take a 20-40x slower path in the CPU
    kernels; exp(-80) = 1.8e-35 is 0 for every use here."""
    return torch.exp(x.clamp_min(_EXP_FLOOR))


def _take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a 1-D table as one flat gather (``index_select`` is the fast kernel)."""
    return table.index_select(0, index.reshape(-1)).reshape(index.shape)


class DecisionStrategy(nn.Module):
    """scores(logits [N, C], dists [N, C]) -> [N, C] calibrated class scores in [0, 1].

    Build with ``fit_decision`` (training) or ``DecisionStrategy.from_tables`` (official
    checkpoint); ``from_config`` + ``load_state_dict`` restores a saved one.
    """

    def __init__(self, num_classes: int, table_size: int, slope: float = DIST_TO_SIM_SLOPE):
        super().__init__()
        if table_size < 2 or table_size & (table_size - 1):
            raise ValueError(f"table_size must be a power of two >= 2, got {table_size}")
        self.num_classes, self.table_size, self.slope = num_classes, table_size, slope
        c, p = num_classes, table_size
        self.register_buffer("means", torch.zeros(c, 2, dtype=torch.float64))
        self.register_buffer("covs", torch.eye(2, dtype=torch.float64).repeat(c, 1, 1))
        self.register_buffer("ood_means", torch.zeros(c, 2, dtype=torch.float64))
        self.register_buffer("ood_covs", torch.eye(2, dtype=torch.float64).repeat(c, 1, 1))
        # float32 evaluation terms derived from the above
        self.register_buffer("class_mean", torch.zeros(c, 2))
        self.register_buffer("class_prec", torch.zeros(c, 3))
        self.register_buffer("ood_mean", torch.zeros(c, 2))
        self.register_buffer("ood_prec", torch.zeros(c, 3))
        self.register_buffer("log_norm_diff", torch.zeros(c))
        self.register_buffer("table_u", torch.full((c, p), _PAD_U))
        self.register_buffer("table_y", torch.zeros(c, p))
        self.register_buffer("table_offsets", torch.arange(c) * p)
        self.register_buffer("table_count", torch.zeros(c, dtype=torch.long))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_log_knots(
        cls,
        means: np.ndarray,
        covs: np.ndarray,
        ood_means: np.ndarray,
        ood_covs: np.ndarray,
        knots: Sequence[tuple[np.ndarray, np.ndarray]],
        slope: float = DIST_TO_SIM_SLOPE,
    ) -> DecisionStrategy:
        """Per-class parameters (ood ones may be a single [2] / [2, 2] for all classes) and
        (log-ratio, mass) knot arrays, already thinned. Covariances are used as given."""
        num_classes = len(knots)
        means = np.asarray(means, dtype=np.float64).reshape(num_classes, 2)
        covs = np.asarray(covs, dtype=np.float64).reshape(num_classes, 2, 2)
        ood_means = np.broadcast_to(np.asarray(ood_means, np.float64), (num_classes, 2))
        ood_covs = np.broadcast_to(np.asarray(ood_covs, np.float64), (num_classes, 2, 2))
        longest = max(int(np.asarray(u).size) for u, _ in knots)
        table_size = 1 << max(1, math.ceil(math.log2(longest + 1)))  # >= 1 padding entry
        module = cls(num_classes, table_size, slope)
        module._set_parameters(means, covs, np.array(ood_means), np.array(ood_covs))
        for c, (u, y) in enumerate(knots):
            module._set_table(c, np.asarray(u, np.float64), np.asarray(y, np.float64))
        return module

    @classmethod
    def from_tables(
        cls,
        means: np.ndarray,
        covs: np.ndarray,
        ood_means: np.ndarray,
        ood_covs: np.ndarray,
        knots_x: Sequence[np.ndarray],
        knots_y: Sequence[np.ndarray],
        epsilon: float = DEFAULT_EPSILON,
        slope: float = DIST_TO_SIM_SLOPE,
    ) -> DecisionStrategy:
        """From the published N-P model (docs/method.md §7.2): class_means, class_covs,
        ood_estimate_means/covs and the interp1d ``.x``/``.y`` arrays of every class. Singular
        covariances are regularised with a tiny floor (non-singular ones are kept exactly)."""
        covs = np.stack([regularize_covariance(c, (1e-12, 1e-12)) for c in np.asarray(covs)])
        ood = np.asarray(ood_covs, np.float64)
        ood = (
            regularize_covariance(ood, (1e-12, 1e-12))
            if ood.ndim == 2
            else np.stack([regularize_covariance(o, (1e-12, 1e-12)) for o in ood])
        )
        knots = [
            thin_knots(*knots_from_interp(x, y), epsilon)
            for x, y in zip(knots_x, knots_y, strict=True)
        ]
        return cls.from_log_knots(means, covs, ood_means, ood, knots, slope)

    @torch.no_grad()
    def _set_parameters(
        self, means: np.ndarray, covs: np.ndarray, ood_means: np.ndarray, ood_covs: np.ndarray
    ) -> None:
        self.means.copy_(torch.from_numpy(means))
        self.covs.copy_(torch.from_numpy(covs))
        self.ood_means.copy_(torch.from_numpy(ood_means))
        self.ood_covs.copy_(torch.from_numpy(ood_covs))
        prec, log_norm = _precision_terms(means, covs)
        ood_prec, ood_log_norm = _precision_terms(ood_means, ood_covs)
        self.class_mean.copy_(torch.from_numpy(means))
        self.class_prec.copy_(torch.from_numpy(prec))
        self.ood_mean.copy_(torch.from_numpy(ood_means))
        self.ood_prec.copy_(torch.from_numpy(ood_prec))
        self.log_norm_diff.copy_(torch.from_numpy(log_norm - ood_log_norm))

    @torch.no_grad()
    def _set_table(self, c: int, u: np.ndarray, y: np.ndarray) -> None:
        keep = np.isfinite(u) & np.isfinite(y)
        u, y = u[keep], np.clip(y[keep], 0.0, 1.0)
        n = u.size
        if n >= self.table_size:
            raise ValueError(f"class {c}: {n} knots do not fit a table of {self.table_size}")
        last = float(y[-1]) if n else 0.0
        self.table_u[c] = _PAD_U
        self.table_y[c] = last
        if n:
            self.table_u[c, :n] = torch.from_numpy(np.clip(u, -_U_LIMIT, _U_LIMIT))
            self.table_y[c, :n] = torch.from_numpy(y)
        self.table_count[c] = n

    # -- evaluation -----------------------------------------------------------------------------
    # ``classes`` (optional, same shape as the inputs, integer class ids) evaluates each entry for
    # its own class instead of column c = class c: the end-to-end model only needs S at the
    # semantic class and the eval labels, a few columns, not all C (docs/architecture.md §6).
    def _per_class(self, values: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        """[C] per-class values, broadcast over columns (classes None) or picked per entry."""
        return values if classes is None else _take(values, classes)

    def log_ratio(
        self, logits: torch.Tensor, dists: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """u = log N(z; class) - log N(z; ood) per patch and class, [N, C] float32, finite."""
        z0 = logits.float().clamp(-_LOGIT_LIMIT, _LOGIT_LIMIT)
        z1 = distance_to_similarity(dists.float().clamp_min(0.0), self.slope)

        def quad(mean: torch.Tensor, prec: torch.Tensor) -> torch.Tensor:
            m0, m1 = self._per_class(mean[:, 0], classes), self._per_class(mean[:, 1], classes)
            p00, p01, p11 = (self._per_class(prec[:, j], classes) for j in range(3))
            d0, d1 = z0 - m0, z1 - m1
            return p00 * d0 * d0 + 2.0 * p01 * d0 * d1 + p11 * d1 * d1

        u = self._per_class(self.log_norm_diff, classes) - 0.5 * (
            quad(self.class_mean, self.class_prec) - quad(self.ood_mean, self.ood_prec)
        )
        return u.clamp(-_U_LIMIT, _U_LIMIT)

    def mass_below(self, u: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """Table lookup F_c(exp(u)) for u [N, C]: unrolled binary search + interpolation.

        The search keeps ``last``, the flat index of the last knot <= u (one before the class's
        first entry when there is none). Each step is one 1-D gather (``index_select``), one
        compare and one integer add on int32 indices (the flat table has fewer than 2^31
        entries): in PyTorch eager ~3x faster than int64 advanced indexing + ``where``. It runs
        column-major ([C, N]) so consecutive lookups stay in one class's table (cache-friendly:
        ~2x faster with all 19 classes).
        """
        flat_u, flat_y = self.table_u.reshape(-1), self.table_y.reshape(-1)
        u = u.t().contiguous()
        if classes is None:
            first_index = self.table_offsets.to(torch.int32).view(-1, 1)
        else:
            first_index = classes.t().to(torch.int32) * self.table_size
        last = (first_index - 1).expand(u.shape)
        step = self.table_size // 2
        while step >= 1:
            below = _take(flat_u, last + step) <= u
            last = torch.add(last, below, alpha=step)
            step //= 2
        upper = last + 1
        lower = torch.maximum(last, first_index)
        u0, u1 = _take(flat_u, lower), _take(flat_u, upper)
        y0, y1 = _take(flat_y, lower), _take(flat_y, upper)
        # below the first knot: the published table ramps linearly in r from (0, 0)
        first = y1 * _exp_nonpositive((u - u1).clamp_max(0.0))
        # between knots: linear in r, w = (e^d - 1) / (e^gap - 1), written with e^{-x} only
        gap = (u1 - u0).clamp_min(0.0)
        d = torch.minimum((u - u0).clamp_min(0.0), gap)
        safe_gap = gap.clamp_min(_LINEAR_BELOW)
        w_exp = (
            _exp_nonpositive(d - safe_gap)
            * (1.0 - _exp_nonpositive(-d))
            / (1.0 - _exp_nonpositive(-safe_gap))
        )
        w_lin = d / gap.clamp_min(1e-30)
        w = torch.where(gap < _LINEAR_BELOW, w_lin, w_exp).clamp(0.0, 1.0)
        inner = y0 + w * (y1 - y0)
        return torch.where(upper == first_index, first, inner).clamp(0.0, 1.0).t()

    def scores(
        self, logits: torch.Tensor, dists: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits [N, C], dists [N, C] (nearest-prototype distances) -> [N, C] in [0, 1].

        With ``classes`` (integer tensor shaped like ``logits``) entry (n, k) is scored for class
        ``classes[n, k]``: logits / dists then hold that class's values, any number of columns.
        """
        return self.mass_below(self.log_ratio(logits, dists, classes), classes)

    def forward(self, logits: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
        return self.scores(logits, dists)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "table_size": self.table_size, "slope": self.slope}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DecisionStrategy:
        return cls(int(config["num_classes"]), int(config["table_size"]), float(config["slope"]))


# -- fitting ------------------------------------------------------------------------------------
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
) -> DecisionStrategy:
    """Fit the decision strategy on training patches (docs/method.md §5.1-§5.3), in float64.

    labels [N] (``ignore_index`` = void), logits [N, C] (raw patch logits), dists [N, C]
    (nearest-prototype distances). ``grid_size`` points per axis (published 2000) and the
    table tolerance ``epsilon`` trade fit time / table size for resolution.
    """
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
    ood_mean = np.zeros(2)
    ood_cov = regularize_covariance(np.diag([(a_bar / 4.0) ** 2, (b_bar / 8.0) ** 2]), floors)

    empty = (np.zeros(0), np.zeros(0))
    knots = [
        thin_knots(
            *ratio_mass_knots(means[c], covs[c], ood_mean, ood_cov, logit_grid, sim_grid), epsilon
        )
        if c in fitted
        else empty
        for c in range(num_classes)
    ]
    return DecisionStrategy.from_log_knots(means, covs, ood_mean, ood_cov, knots, slope)
