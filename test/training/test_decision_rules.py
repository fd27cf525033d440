"""Decision rules (published / monotone), the bucketed lookup and the rule in checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixood_training.decision import DecisionStrategy, fit_decision, monotone_box
from pixood_training.train.config import load_config
from pixood_training.train.decide import PIXOOD_PUBLISHED, fit_scorer, scorer_names


def _training_data(seed=0, n=3000, num_classes=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(0, 2, (n, num_classes))
    logits[np.arange(n), labels] += 6 + rng.normal(0, 1, n)
    dists = np.abs(rng.normal(4, 2, (n, num_classes)))
    dists[np.arange(n), labels] = np.abs(rng.normal(1, 0.5, n))
    return labels, logits, dists


def _road_like() -> DecisionStrategy:
    """The failure case of docs/method.md §5.6 from parameters: the class is wider along the
    logit axis (sd 2.36) than the OOD model (1.73) and correlated with the similarity."""
    means = np.array([[9.5, 0.5]])
    covs = np.array([[[2.36**2, 0.56 * 2.36 * 0.11], [0.56 * 2.36 * 0.11, 0.11**2]]])
    ood_cov = np.diag([1.73**2, 0.09**2])
    u = np.linspace(-20.0, 10.0, 400)
    knots = [(u, np.linspace(0.0, 1.0, 400))]
    return DecisionStrategy.from_log_knots(means, covs, np.zeros(2), ood_cov, knots,
                                           rule="monotone")  # fmt: skip


def _grid_ratio(strategy: DecisionStrategy, c: int) -> torch.Tensor:
    logits = torch.linspace(-40.0, 40.0, 161)
    dists = torch.linspace(0.0, 40.0, 161)  # similarity falls as the distance grows
    ll, dd = torch.meshgrid(logits, dists, indexing="ij")
    n = ll.numel()
    full_l = torch.zeros(n, strategy.num_classes)
    full_d = torch.zeros(n, strategy.num_classes)
    full_l[:, c], full_d[:, c] = ll.reshape(-1), dd.reshape(-1)
    return strategy.log_ratio(full_l, full_d)[:, c].reshape(ll.shape)


def _assert_monotone(u: torch.Tensor) -> None:
    """Non-decreasing in the logit (dim 0) and in the similarity (dim 1 is the distance)."""
    tol = 1e-4 * (1.0 + u.abs().max())
    assert torch.diff(u, dim=0).min() >= -tol
    assert torch.diff(u, dim=1).max() <= tol


def test_road_like_failure_case_is_fixed_by_the_monotone_rule():
    monotone = _road_like()
    _assert_monotone(_grid_ratio(monotone, 0))
    published = DecisionStrategy.from_log_knots(
        monotone.means.numpy(), monotone.covs.numpy(), np.zeros(2), monotone.ood_covs[0].numpy(),
        monotone.knots(), rule="published",
    )  # fmt: skip
    u = _grid_ratio(published, 0)
    # published: very non-road logits score more road-like than moderately low ones
    assert (torch.diff(u, dim=0) < -1e-3).any()
    assert u[0].max() > u[60].max()  # logit -40 vs logit -10, best similarity


@pytest.mark.parametrize("seed", range(6))
def test_monotone_rule_on_random_parameters(seed):
    rng = np.random.default_rng(seed)
    c = 4
    means = np.stack([rng.uniform(-2, 12, c), rng.uniform(0.1, 0.9, c)], axis=1)
    sd = np.stack([rng.uniform(0.5, 4, c), rng.uniform(0.01, 0.3, c)], axis=1)
    corr = rng.uniform(-0.9, 0.9, c)
    covs = np.stack([
        [[a * a, r * a * b], [r * a * b, b * b]] for (a, b), r in zip(sd, corr, strict=True)
    ])  # fmt: skip
    ood_cov = np.diag([rng.uniform(1, 3) ** 2, rng.uniform(0.05, 0.2) ** 2])
    knots = [(np.linspace(-10, 10, 50), np.linspace(0, 1, 50))] * c
    strategy = DecisionStrategy.from_log_knots(means, covs, np.zeros(2), ood_cov, knots,
                                               rule="monotone")  # fmt: skip
    for k in range(c):
        _assert_monotone(_grid_ratio(strategy, k))
    low, high = monotone_box(means, covs, np.zeros((c, 2)), np.tile(ood_cov, (c, 1, 1)))
    assert (low <= high).all() and np.allclose(high, means)


def test_fitted_monotone_scores_are_monotone_and_published_is_the_default_of_old_configs():
    labels, logits, dists = _training_data()
    strategy = fit_decision(labels, logits, dists, 3, grid_size=120)
    assert strategy.rule == "monotone" and strategy.get_config()["rule"] == "monotone"
    for c in range(3):
        _assert_monotone(_grid_ratio(strategy, c))
    old = {k: v for k, v in strategy.get_config().items() if k != "rule"}
    assert DecisionStrategy.from_config(old).rule == "published"


def test_lookup_matches_the_knot_table_over_its_range_and_edges():
    """The bucketed lookup against F read straight off the knots (np.interp in r, ramp from
    (0, 0)), within the bound computed when the table was built."""
    labels, logits, dists = _training_data(seed=1)
    for rule in ("published", "monotone"):
        strategy = fit_decision(labels, logits, dists, 3, grid_size=200, rule=rule)
        for c, (u, y) in enumerate(strategy.knots()):
            queries = np.r_[np.linspace(u[0] - 5, u[-1] + 5, 20001), u, u[:1] - 1e-3, u[-1:] + 1e-3]
            shift = u[-1]
            expected = np.interp(
                np.exp(queries - shift), np.r_[0.0, np.exp(u - shift)], np.r_[0.0, y]
            )
            q = torch.zeros(queries.size, 3, dtype=torch.float32)
            q[:, c] = torch.from_numpy(queries).float()
            got = strategy.mass_below(q)[:, c].double().numpy()
            bound = float(strategy.lookup_error[c])
            assert bound <= 5e-3
            # float32 queries: a knot's neighbourhood of one ulp may take the next piece
            assert np.abs(got - expected).max() <= bound + 2e-4, rule


def test_decide_fits_the_published_variant_beside_the_monotone_model():
    cfg = load_config(None, ["data.root=x", "decide.scorers=[pixood,msp]"])
    assert cfg.decide.rule == "monotone"
    assert scorer_names(cfg) == ["pixood", PIXOOD_PUBLISHED, "msp"]
    labels, logits, dists = _training_data(seed=2, num_classes=cfg.data.num_classes)
    stats = {"labels": torch.from_numpy(labels), "logits": torch.from_numpy(logits).float(),
             "dists": torch.from_numpy(dists).float()}  # fmt: skip
    cfg.decide.grid_size = 100
    prototypes = [torch.randn(2, 8) for _ in range(cfg.data.num_classes)]
    assert fit_scorer("pixood", stats, prototypes, cfg).decision.rule == "monotone"
    assert fit_scorer(PIXOOD_PUBLISHED, stats, prototypes, cfg).decision.rule == "published"
    published = load_config(None, ["data.root=x", "decide.rule=published"])
    assert PIXOOD_PUBLISHED not in scorer_names(published)


def test_a_jump_in_the_table_is_looked_up_exactly():
    """A zero-width knot pair (a tie group's mass) is right-continuous: F at its ratio is the
    upper mass, just below it the lower one; the lookup's bound is within 1e-4."""
    u = np.r_[np.linspace(-10.0, 2.0, 300), 2.0, np.linspace(2.5, 8.0, 200)].astype(np.float32)
    y = np.r_[np.linspace(0.0, 0.3, 300), 0.7, np.linspace(0.71, 1.0, 200)]
    strategy = DecisionStrategy.from_log_knots(
        np.array([[5.0, 0.5]]), np.array([[[1.0, 0.0], [0.0, 0.01]]]), np.zeros(2),
        np.diag([4.0, 0.02]), [(u.astype(np.float64), y)], rule="monotone",
    )  # fmt: skip
    assert strategy.lookup_error.max() <= 1e-4
    at = torch.tensor([[2.0], [float(np.nextafter(np.float32(2.0), np.float32(0.0)))]])
    got = strategy.mass_below(at)[:, 0]
    assert abs(got[0].item() - 0.7) <= 1e-6 and abs(got[1].item() - 0.3) <= 1e-5
