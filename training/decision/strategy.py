"""Stage 3 of PixOOD: the Neyman-Pearson decision strategy as an exportable module
(docs/method.md §5.4).

Persistent state (the checkpoint): the Gaussians (float64) and the thinned knot table of the
LR -> mass mapping. Derived on construction and after every ``load_state_dict``: float32
evaluation terms, the monotone rule's clamp box and the bucketed lookup (lookup.py). The rule
(rules.py) is part of the config; a config without one (checkpoints written before the monotone
rule existed) is ``published``, what those checkpoints were fitted with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .gaussian import (
    DIST_TO_SIM_SLOPE,
    distance_to_similarity,
    precision_terms,
    regularize_covariance,
)
from .knots import class_knots, knots_from_interp, thin_knots
from .lookup import LOOKUP_FIELDS, Lookup, build_lookup, lookup_mass
from .rules import check_rule, monotone_box

GRID_SIZE = 2000
GRID_MARGIN = 5.0  # logit grid spans [-(max logit + 5), max logit + 5]
DEFAULT_EPSILON = 1e-4
_PAD_U = 3.0e38  # knot-table padding: above every finite log-ratio
_LOGIT_LIMIT = 1.0e9
_U_LIMIT = 1.0e30


def _take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a 1-D table as one flat gather (GatherElements in ONNX, lookup.py)."""
    return torch.gather(table, 0, index.reshape(-1)).reshape(index.shape)


def _ratio_terms(
    means: np.ndarray, covs: np.ndarray, ood_means: np.ndarray, ood_covs: np.ndarray
) -> np.ndarray:
    """[C, 8] float64 (m0, m1, q00, q01, q11, g0, g1, k0): the log-ratio as a polynomial in
    d = z - m (class mean), u = d0 (q00 d0 + q01 d1 + g0) + d1 (q11 d1 + g1) + k0, i.e.
    log N_c - log N_ood with e = m - m_ood: k0 = log-norm difference + e'P_ood e / 2,
    g = P_ood e, q = (P_ood - P_c) / 2 (q01 doubled). Around the class mean, where the mass is,
    it keeps the float32 precision of the centred form in 12 elementwise ops instead of 24."""
    prec, log_norm = precision_terms(means, covs)
    ood_prec, ood_log_norm = precision_terms(ood_means, ood_covs)
    e0, e1 = (means - ood_means).T
    o00, o01, o11 = ood_prec.T
    q = 0.5 * (ood_prec - prec)
    g0, g1 = o00 * e0 + o01 * e1, o01 * e0 + o11 * e1
    k0 = log_norm - ood_log_norm + 0.5 * (o00 * e0 * e0 + 2 * o01 * e0 * e1 + o11 * e1 * e1)
    return np.stack([means[:, 0], means[:, 1], q[:, 0], 2 * q[:, 1], q[:, 2], g0, g1, k0], 1)


class DecisionStrategy(nn.Module):
    """scores(logits [N, C], dists [N, C]) -> [N, C] calibrated class scores in [0, 1].

    Build with ``fit_decision`` (training) or ``DecisionStrategy.from_tables`` (official
    checkpoint); ``from_config`` + ``load_state_dict`` restores a saved one.
    """

    def __init__(
        self,
        num_classes: int,
        table_size: int,
        slope: float = DIST_TO_SIM_SLOPE,
        rule: str = "published",
    ):
        super().__init__()
        if table_size < 2 or table_size & (table_size - 1):
            raise ValueError(f"table_size must be a power of two >= 2, got {table_size}")
        self.num_classes, self.table_size, self.slope = num_classes, table_size, slope
        self.rule = check_rule(rule)
        c, p = num_classes, table_size
        self.register_buffer("means", torch.zeros(c, 2, dtype=torch.float64))
        self.register_buffer("covs", torch.eye(2, dtype=torch.float64).repeat(c, 1, 1))
        self.register_buffer("ood_means", torch.zeros(c, 2, dtype=torch.float64))
        self.register_buffer("ood_covs", torch.eye(2, dtype=torch.float64).repeat(c, 1, 1))
        # float32 evaluation terms derived from the above (persistent since the first format)
        self.register_buffer("class_mean", torch.zeros(c, 2))
        self.register_buffer("class_prec", torch.zeros(c, 3))
        self.register_buffer("ood_mean", torch.zeros(c, 2))
        self.register_buffer("ood_prec", torch.zeros(c, 3))
        self.register_buffer("log_norm_diff", torch.zeros(c))
        self.register_buffer("table_u", torch.full((c, p), _PAD_U))
        self.register_buffer("table_y", torch.zeros(c, p))
        self.register_buffer("table_offsets", torch.arange(c) * p)
        self.register_buffer("table_count", torch.zeros(c, dtype=torch.long))
        self.register_load_state_dict_post_hook(lambda module, _: module._derive())
        self._derive()

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
        rule: str = "published",
    ) -> DecisionStrategy:
        """Per-class parameters (ood ones may be a single [2] / [2, 2] for all classes) and
        (log-ratio, mass) knot arrays, already thinned and fitted for ``rule``."""
        num_classes = len(knots)
        means = np.asarray(means, dtype=np.float64).reshape(num_classes, 2)
        covs = np.asarray(covs, dtype=np.float64).reshape(num_classes, 2, 2)
        ood_means = np.broadcast_to(np.asarray(ood_means, np.float64), (num_classes, 2))
        ood_covs = np.broadcast_to(np.asarray(ood_covs, np.float64), (num_classes, 2, 2))
        longest = max(int(np.asarray(u).size) for u, _ in knots)
        table_size = 1 << max(1, math.ceil(math.log2(longest + 1)))  # >= 1 padding entry
        module = cls(num_classes, table_size, slope, rule)
        module._set_parameters(means, covs, np.array(ood_means), np.array(ood_covs))
        for c, (u, y) in enumerate(knots):
            module._set_table(c, np.asarray(u, np.float64), np.asarray(y, np.float64))
        module._derive()
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
        rule: str = "published",
        grid_size: int = GRID_SIZE,
    ) -> DecisionStrategy:
        """From the published N-P model (docs/method.md §7.2): class_means, class_covs,
        ood_estimate_means/covs and the interp1d ``.x``/``.y`` arrays of every class. Singular
        covariances are regularised with a tiny floor (non-singular ones are kept exactly).
        ``rule="monotone"`` refits the tables from the Gaussians on a ``grid_size`` grid
        spanning every class's mean +- 8 sd in logit (the training logits are not in it)."""
        means = np.asarray(means, np.float64)
        covs = np.stack([regularize_covariance(c, (1e-12, 1e-12)) for c in np.asarray(covs)])
        ood = np.asarray(ood_covs, np.float64)
        ood = np.stack([regularize_covariance(o, (1e-12, 1e-12)) for o in ood.reshape(-1, 2, 2)])
        ood = np.broadcast_to(ood, covs.shape).copy()
        ood_m = np.broadcast_to(np.asarray(ood_means, np.float64), means.shape).copy()
        if check_rule(rule) == "published":
            knots = [
                thin_knots(*knots_from_interp(x, y), epsilon)
                for x, y in zip(knots_x, knots_y, strict=True)
            ]
        else:
            top = float(np.max(np.abs(means[:, 0]) + 8.0 * np.sqrt(covs[:, 0, 0]))) + GRID_MARGIN
            knots = class_knots(
                means, covs, ood_m, ood, np.linspace(-top, top, grid_size),
                np.linspace(0.0, 1.0, grid_size), epsilon, monotone_box(means, covs, ood_m, ood),
            )  # fmt: skip
        return cls.from_log_knots(means, covs, ood_m, ood, knots, slope, rule)

    @torch.no_grad()
    def _set_parameters(
        self, means: np.ndarray, covs: np.ndarray, ood_means: np.ndarray, ood_covs: np.ndarray
    ) -> None:
        self.means.copy_(torch.from_numpy(means))
        self.covs.copy_(torch.from_numpy(covs))
        self.ood_means.copy_(torch.from_numpy(ood_means))
        self.ood_covs.copy_(torch.from_numpy(ood_covs))
        prec, log_norm = precision_terms(means, covs)
        ood_prec, ood_log_norm = precision_terms(ood_means, ood_covs)
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

    def knots(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The stored (log-ratio, mass) knot table of every class, float64."""
        u, y = self.table_u.double().cpu().numpy(), self.table_y.double().cpu().numpy()
        return [(u[c, :n], y[c, :n]) for c, n in enumerate(self.table_count.tolist())]

    @torch.no_grad()
    def _derive(self) -> None:
        """Non-persistent evaluation state from the persistent one: the clamp box (monotone), the
        log-ratio polynomial and the bucketed lookup. All follow from the checkpoint, so they are
        not stored in it."""
        device = self.table_u.device
        means, covs = self.means.cpu().numpy(), self.covs.cpu().numpy()
        ood_means, ood_covs = self.ood_means.cpu().numpy(), self.ood_covs.cpu().numpy()
        low, high = monotone_box(means, covs, ood_means, ood_covs)
        derived = {"clamp_low": low, "clamp_high": high,
                   "ratio_terms": _ratio_terms(means, covs, ood_means, ood_covs)}  # fmt: skip
        for name, value in derived.items():
            tensor = torch.from_numpy(value).float().clamp(-_U_LIMIT, _U_LIMIT)
            self.register_buffer(name, tensor.t().contiguous().to(device), False)
        table, self.buckets, self.lookup_error = build_lookup(self.knots())
        for name, tensor in table.tensors().items():
            self.register_buffer(f"lookup_{name}", tensor.to(device), False)

    # -- evaluation -----------------------------------------------------------------------------
    # Without ``classes`` the inputs [N, C] are scored as [C, N] (per-class values are [C, 1]
    # columns: cheap broadcasts in ONNX Runtime, lookup.py). ``classes`` (same shape as the
    # inputs, integer class ids) evaluates each entry for its own class instead: the end-to-end
    # model only needs S at the semantic class and the eval labels, a few columns, not all C
    # (docs/architecture.md §6).
    def _per_class(self, values: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        """[C] per-class values as a [C, 1] column (classes None) or picked per entry."""
        return values[:, None] if classes is None else _take(values, classes)

    def _log_ratio(self, logits: torch.Tensor, dists: torch.Tensor,
                   classes: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """u in the layout of the inputs ([C, N] when classes is None)."""
        z0 = logits.float().clamp(-_LOGIT_LIMIT, _LOGIT_LIMIT)
        z1 = distance_to_similarity(dists.float().clamp_min(0.0), self.slope)
        if self.rule == "monotone":
            low, high = self.clamp_low, self.clamp_high
            z0 = torch.minimum(torch.maximum(z0, self._per_class(low[0], classes)),
                               self._per_class(high[0], classes))  # fmt: skip
            z1 = torch.minimum(torch.maximum(z1, self._per_class(low[1], classes)),
                               self._per_class(high[1], classes))  # fmt: skip
        m0, m1, q00, q01, q11, g0, g1, k0 = (
            self._per_class(t, classes) for t in self.ratio_terms
        )  # fmt: skip
        d0, d1 = z0 - m0, z1 - m1
        u = d0 * (q00 * d0 + q01 * d1 + g0) + d1 * (q11 * d1 + g1) + k0
        return u.clamp(-_U_LIMIT, _U_LIMIT)

    def _mass(self, u: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        """F(u) in the layout of u ([C, N] when classes is None)."""
        table = Lookup(*(getattr(self, f"lookup_{name}") for name in LOOKUP_FIELDS))
        if classes is None:
            per_class = [table.inv[:, None], table.shift[:, None], table.coarse_base[:, None]]
        else:
            per_class = [_take(table.inv, classes), _take(table.shift, classes),
                         _take(table.coarse_base, classes)]  # fmt: skip
        return lookup_mass(u, table, per_class)

    def log_ratio(
        self, logits: torch.Tensor, dists: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """u = log N(z; class) - log N(z; ood) per patch and class, [N, C] float32, finite; z
        clamped into the class's box under the monotone rule."""
        if classes is None:
            return self._log_ratio(logits.t(), dists.t(), None).t()
        return self._log_ratio(logits, dists, classes)

    def mass_below(self, u: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """F_c(exp(u)) for u [N, C] by the bucketed lookup (three flat gathers per entry)."""
        return self._mass(u.t(), None).t() if classes is None else self._mass(u, classes)

    def scores(
        self, logits: torch.Tensor, dists: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits [N, C], dists [N, C] (nearest-prototype distances) -> [N, C] in [0, 1].

        With ``classes`` (integer tensor shaped like ``logits``) entry (n, k) is scored for class
        ``classes[n, k]``: logits / dists then hold that class's values, any number of columns.
        """
        if classes is None:
            return self._mass(self._log_ratio(logits.t(), dists.t(), None), None).t()
        return self._mass(self._log_ratio(logits, dists, classes), classes)

    def forward(self, logits: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
        return self.scores(logits, dists)

    def get_config(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "table_size": self.table_size,
            "slope": self.slope,
            "rule": self.rule,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DecisionStrategy:
        """A config without ``rule`` predates the monotone rule: its table is the published one."""
        return cls(
            int(config["num_classes"]),
            int(config["table_size"]),
            float(config["slope"]),
            str(config.get("rule", "published")),
        )
