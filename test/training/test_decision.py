"""Neyman-Pearson decision strategy vs a plain float64 numpy/scipy implementation.

The reference below follows docs/method.md §5.2-§5.4 literally: scipy multivariate_normal pdfs on
the grid, ratios sorted ascending, cumulative class mass at the midpoints between distinct ratios,
scipy interp1d at the query ratio. It shares no code with ``pixood_training.decision``; only the
documented deviations (analytic OOD covariance, covariance floors, tie mass kept, log-domain
ratios) are re-stated here.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.stats import multivariate_normal

from pixood_training.decision import DecisionStrategy, fit_decision

GRID = 160
EPS = 1e-4


def _regularised(cov, floors):
    var = np.maximum(np.nan_to_num(np.diag(cov)), floors)
    limit = (1 - 1e-6) * np.sqrt(var[0] * var[1])
    off = np.clip(np.nan_to_num(cov[0, 1]), -limit, limit)
    return np.array([[var[0], off], [off, var[1]]])


@np.errstate(over="ignore")  # exp overflow -> inf is part of the published behaviour
def reference_fit(labels, logits, dists, num_classes, grid=GRID):
    sim = 1.0 / (1.0 + 0.5 * dists)
    top = max(logits.max(), 0.0) + 5.0
    lg, sg = np.linspace(-top, top, grid), np.linspace(0, 1, grid)
    floors = np.array([(2 * top / (grid - 1)) ** 2, (1 / (grid - 1)) ** 2])
    models, q = {}, []
    for c in range(num_classes):
        z = np.stack([logits[labels == c, c], sim[labels == c, c]], axis=1)
        if len(z) == 0:
            continue
        cov = np.cov(z.T) if len(z) > 1 else np.zeros((2, 2))
        models[c] = (z.mean(0), _regularised(cov, floors))
        q.append(np.quantile(z, 0.9, axis=0))
    a, b = np.mean(q, axis=0)
    ood_cov = _regularised(np.diag([(a / 4) ** 2, (b / 8) ** 2]), floors)
    ood = multivariate_normal(np.zeros(2), ood_cov)
    ll, ss = np.meshgrid(lg, sg)
    points = np.stack([ll.ravel(), ss.ravel()], axis=1)
    tables = {}
    for c, (mean, cov) in models.items():
        cls = multivariate_normal(mean, cov)
        shift = cls.logpdf(mean) - ood.logpdf(mean)  # keeps exp() in range where the mass is
        r = np.exp(cls.logpdf(points) - ood.logpdf(points) - shift)
        p = cls.pdf(points)
        order = np.argsort(r)
        r, p = r[order], p[order]
        x, y, acc = [0.0], [0.0], 0.0
        for i in range(1, len(r)):
            acc += p[i]
            if r[i] == r[i - 1]:
                y[-1] = acc  # tied ratios keep their mass
                continue
            x.append((r[i] + r[i - 1]) / 2)
            y.append(acc)
        x, y = np.array(x + [np.inf]), np.array(y + [p.sum()]) / p.sum()
        y[-1] = 1.0
        finite = np.isfinite(x)
        finite[-1] = True
        tables[c] = (cls, shift, interp1d(x[finite], y[finite]))
    return ood, tables


@np.errstate(over="ignore")
def reference_scores(ood, tables, logits, dists, num_classes):
    sim = 1.0 / (1.0 + 0.5 * dists)
    out = np.zeros(logits.shape)
    for c in range(num_classes):
        if c not in tables:
            continue
        cls, shift, fn = tables[c]
        z = np.stack([logits[:, c], sim[:, c]], axis=1)
        out[:, c] = fn(np.exp(cls.logpdf(z) - ood.logpdf(z) - shift))
    return out


def _training_data(seed=0, n=3000, num_classes=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(0, 2, (n, num_classes))
    logits[np.arange(n), labels] += 6 + rng.normal(0, 1, n)
    dists = np.abs(rng.normal(4, 2, (n, num_classes)))
    dists[np.arange(n), labels] = np.abs(rng.normal(1, 0.5, n))
    return labels, logits, dists


def _queries(logits, dists, seed=1):
    rng = np.random.default_rng(seed)
    n, c = 4000, logits.shape[1]
    ql = rng.uniform(logits.min() - 3, logits.max() + 3, (n, c))
    qd = rng.uniform(0, dists.max() * 1.5, (n, c))
    extreme_l = np.array([-1e4, 1e4, 0.0, -1e4, 1e4, 0.0, 7.0, 7.0])
    extreme_d = np.array([0.0, 0.0, 0.0, 1e6, 1e6, 1e30, 1e6, 0.0])
    ql = np.concatenate([ql, np.repeat(extreme_l[:, None], c, 1)])
    qd = np.concatenate([qd, np.repeat(extreme_d[:, None], c, 1)])
    return ql, qd


def _compare(labels, logits, dists, num_classes, queries=None):
    strategy = fit_decision(
        torch.from_numpy(labels), torch.from_numpy(logits), torch.from_numpy(dists), num_classes,
        grid_size=GRID, epsilon=EPS, rule="published",
    )  # fmt: skip
    ood, tables = reference_fit(labels, logits, dists, num_classes)
    ql, qd = queries if queries is not None else _queries(logits, dists)
    expected = reference_scores(ood, tables, ql, qd, num_classes)
    got = strategy.scores(torch.from_numpy(ql).float(), torch.from_numpy(qd).float()).double()
    assert torch.isfinite(got).all() and got.min() >= 0 and got.max() <= 1
    diff = np.abs(got.numpy() - expected)
    where = np.unravel_index(diff.argmax(), diff.shape)
    assert diff.max() <= 1e-3, f"max |diff| {diff.max():.2e} at {where}"
    return strategy, got, expected


def test_matches_reference_on_random_data():
    labels, logits, dists = _training_data()
    strategy, got, expected = _compare(labels, logits, dists, 3)
    assert (expected > 0.05).mean() > 0.05 and (expected < 0.95).mean() > 0.05  # non-trivial
    # training patches of class c score high for c, low for a wrong class
    s = strategy.scores(torch.from_numpy(logits).float(), torch.from_numpy(dists).float())
    own = s[torch.arange(len(labels)), torch.from_numpy(labels)]
    assert own.median() > 0.3 and s[torch.from_numpy(labels) != 0, 0].median() < 0.01


def test_scores_for_chosen_classes_equal_the_full_table_columns():
    """scores(..., classes) scores each entry for its own class: the model asks for only the
    semantic class and the eval labels; picking them from the all-class result must agree."""
    labels, logits, dists = _training_data()
    strategy, _, _ = _compare(labels, logits, dists, 3)
    ql, qd = (torch.from_numpy(v).float() for v in _queries(logits, dists))
    full = strategy.scores(ql, qd)
    gen = torch.Generator().manual_seed(3)
    classes = torch.randint(0, 3, (ql.shape[0], 4), generator=gen)  # repeats allowed
    picked = strategy.scores(ql.gather(1, classes), qd.gather(1, classes), classes)
    torch.testing.assert_close(picked, full.gather(1, classes), rtol=0, atol=1e-6)


def test_matches_reference_with_extreme_logits_and_distances():
    labels, logits, dists = _training_data(seed=2)
    logits[:50] = 1e4 * np.sign(logits[:50])  # extreme logits in the training data
    dists[50:100] = 0.0
    dists[100:150] = 1e6
    _compare(labels, logits, dists, 3)


def test_singular_covariances_and_tiny_classes():
    labels, logits, dists = _training_data(seed=3, num_classes=4)
    labels[labels == 3] = 0
    labels[0] = 3  # class 3: a single sample
    rows1 = labels == 1
    logits[rows1, 1] = 4.0  # class 1: constant logit -> singular covariance
    rows2 = labels == 2
    dists[rows2, 2] = 0.0  # class 2: constant (zero) distance
    _compare(labels, logits, dists, 4)


def test_class_without_samples_scores_zero():
    labels, logits, dists = _training_data(seed=4, num_classes=3)
    labels[labels == 2] = 0
    strategy = fit_decision(labels, logits, dists, 3, grid_size=GRID, rule="published")
    s = strategy.scores(torch.from_numpy(logits).float(), torch.from_numpy(dists).float())
    assert torch.all(s[:, 2] == 0) and s[:, 0].max() > 0.5


def test_scores_monotone_in_likelihood_ratio():
    labels, logits, dists = _training_data(seed=5)
    strategy = fit_decision(labels, logits, dists, 3, grid_size=GRID, rule="published")
    ql, qd = _queries(logits, dists, seed=6)
    ql, qd = torch.from_numpy(ql).float(), torch.from_numpy(qd).float()
    u = strategy.log_ratio(ql, qd)
    s = strategy.scores(ql, qd)
    for c in range(3):
        order = torch.argsort(u[:, c])
        steps = torch.diff(s[order, c])
        assert steps.min() >= -1e-7
        assert s[order[-1], c] > s[order[0], c]


def test_from_tables_replays_published_interp1d():
    """Converter path: given means/covs and interp1d knots (with the published NaN/inf junk),
    scores equal np.interp on the original table."""
    rng = np.random.default_rng(7)
    means = np.array([[8.0, 0.6], [5.0, 0.4]])
    covs = np.array([[[2.0, 0.1], [0.1, 0.01]], [[1.0, 0.0], [0.0, 0.0]]])  # class 1 singular
    ood_cov = np.diag([4.0, 0.005])
    xs, ys = [], []
    for _ in range(2):
        x = np.sort(np.exp(rng.normal(0, 3, 5000)))
        y = np.cumsum(rng.exponential(1, 5000))
        y = 0.999 * y / y[-1]
        xs.append(np.r_[0.0, x, np.nan, np.nan, np.inf])
        ys.append(np.r_[0.0, y, np.nan, np.nan, 1.0])
    strategy = DecisionStrategy.from_tables(
        means, np.array(covs), np.zeros(2), ood_cov, xs, ys, epsilon=1e-5
    )
    ql = rng.uniform(-5, 15, (3000, 2))
    qd = rng.uniform(0, 6, (3000, 2))
    u = strategy.log_ratio(torch.from_numpy(ql).float(), torch.from_numpy(qd).float()).double()
    got = strategy.mass_below(u.float()).numpy()
    for c in range(2):
        keep = np.isfinite(xs[c])
        expected = np.interp(np.exp(u[:, c].numpy()), xs[c][keep], ys[c][keep])
        # within the lookup's bound (computed when the table is built) and the parity 1e-3
        bound = min(float(strategy.lookup_error[c]) + 1e-5, 1e-3)
        assert np.abs(got[:, c] - expected).max() <= bound
    # the non-singular class keeps its covariance exactly
    torch.testing.assert_close(strategy.covs[0], torch.from_numpy(covs[0]))


def test_state_dict_round_trip():
    labels, logits, dists = _training_data(seed=8)
    strategy = fit_decision(labels, logits, dists, 3, grid_size=GRID, rule="published")
    rebuilt = DecisionStrategy.from_config(strategy.get_config())
    rebuilt.load_state_dict(strategy.state_dict())
    ql, qd = (torch.from_numpy(a).float() for a in _queries(logits, dists))
    assert torch.equal(rebuilt.scores(ql, qd), strategy.scores(ql, qd))


class _Wrapper(torch.nn.Module):
    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy

    def forward(self, logits, dists):
        return self.strategy.scores(logits, dists)


@pytest.mark.slow
def test_onnx_export_matches_torch(tmp_path):
    labels, logits, dists = _training_data(seed=9)
    strategy = fit_decision(labels, logits, dists, 3, grid_size=GRID).eval()
    ql, qd = (torch.from_numpy(a).float() for a in _queries(logits, dists, seed=10))
    path = tmp_path / "decision.onnx"
    n = torch.export.Dim("n")
    torch.onnx.export(
        _Wrapper(strategy).eval(), (ql[:16], qd[:16]), str(path), dynamo=True,
        dynamic_shapes=({0: n}, {0: n}), input_names=["logits", "dists"], output_names=["scores"],
    )  # fmt: skip
    import onnx

    model = onnx.load(str(path))
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"Loop", "Scan", "If"}, ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_scores,) = session.run(None, {"logits": ql.numpy(), "dists": qd.numpy()})
    torch_scores = strategy.scores(ql, qd).numpy()
    assert np.isfinite(onnx_scores).all()
    assert np.abs(onnx_scores - torch_scores).max() <= 1e-5
