"""Baseline (msp, maxlogit, energy) and k-means scorers: range, monotonicity, fitting, registry."""

from __future__ import annotations

import pytest
import torch

from pixood_training.scorers import (
    EnergyScorer,
    KMeansScorer,
    MaxLogitScorer,
    MSPScorer,
    build_scorer,
)
from pixood_training.scorers.kmeans import kmeans


def _training_logits(n: int = 4000, classes: int = 5, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    logits = torch.randn(n, classes, generator=generator)
    logits[torch.arange(n), labels] += 4.0
    labels[:50] = 255  # void patches are ignored by fit
    return logits, labels


def _fitted(name: str):
    logits, labels = _training_logits()
    return {"msp": MSPScorer, "maxlogit": MaxLogitScorer, "energy": EnergyScorer}[name].fit(
        None, logits, labels
    )


NAMES = ["msp", "maxlogit", "energy"]


@pytest.mark.parametrize("name", NAMES)
def test_scores_in_unit_interval_and_finite_on_extreme_logits(name):
    scorer = _fitted(name)
    logits = torch.tensor([1e4, -1e4, 0.0, 3e3, -5.0]).view(1, 5, 1, 1).repeat(2, 1, 3, 4)
    logits[1] = -1e4
    for batch in (logits, torch.randn(2, 5, 3, 4) * 50):
        scores = scorer.class_scores(torch.zeros(2, 8, 3, 4), batch)
        assert scores.shape == batch.shape
        assert torch.isfinite(scores).all()
        assert scores.min() >= 0 and scores.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_raising_a_class_logit_never_lowers_its_score(name):
    scorer = _fitted(name)
    base = torch.randn(1, 5, 1, 1)
    values = []
    for bump in torch.linspace(-6, 6, 25):
        logits = base.clone()
        logits[0, 2] += bump
        values.append(float(scorer.class_scores(torch.zeros(1, 1, 1, 1), logits)[0, 2]))
    assert all(b >= a - 1e-7 for a, b in zip(values[:-1], values[1:], strict=True))
    assert values[-1] > values[0] + 0.1


@pytest.mark.parametrize("name", ["maxlogit", "energy"])
def test_calibrated_max_score_ranks_like_the_raw_baseline(name):
    """max_c S_c is a strictly increasing function of max-logit / logsumexp on typical logits."""
    scorer = _fitted(name)
    logits = torch.randn(1, 5, 20, 20) * 3
    top = scorer.class_scores(None, logits).amax(dim=1).flatten().double()
    raw = (logits.amax(1) if name == "maxlogit" else torch.logsumexp(logits, 1)).flatten()
    order = torch.argsort(raw)
    assert (top[order].diff() >= -1e-12).all()
    # shifting all logits up (same softmax) makes a pixel more in-distribution
    shifted = scorer.class_scores(None, logits + 2).amax(dim=1)
    assert (shifted >= scorer.class_scores(None, logits).amax(dim=1)).all()


@pytest.mark.parametrize("name", ["maxlogit", "energy"])
def test_calibration_is_fitted_on_training_distribution(name):
    logits, labels = _training_logits()
    scorer = _fitted(name)
    valid = logits[labels != 255]
    stat = valid.amax(1) if name == "maxlogit" else torch.logsumexp(valid, 1)
    calibrated = scorer.calibrate(stat)
    assert abs(float(calibrated.median()) - 0.5) < 0.01
    assert abs(float((calibrated < 0.25).float().mean()) - 0.25) < 0.05


def test_msp_is_softmax():
    logits = torch.randn(2, 5, 3, 3)
    torch.testing.assert_close(MSPScorer().class_scores(None, logits), logits.softmax(1))


def test_kmeans_recovers_clusters_deterministically():
    generator = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = centers.repeat_interleave(200, 0) + 0.3 * torch.randn(600, 2, generator=generator)
    found = kmeans(points, 3, seed=1)
    again = kmeans(points, 3, seed=1)
    torch.testing.assert_close(found, again, rtol=0, atol=0)
    distance = torch.cdist(centers, found).min(dim=1).values
    assert (distance < 0.2).all()
    assert kmeans(points[:2], 5).shape == (2, 2)


def _feature_data(seed: int = 0):
    """Two classes in 8-D, each a mixture of three tight blobs; class 2 never seen."""
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(2, 3, 8, generator=generator) * 3
    labels = torch.randint(2, (3000,), generator=generator)
    blob = torch.randint(3, (3000,), generator=generator)
    features = means[labels, blob] + 0.2 * torch.randn(3000, 8, generator=generator)
    return features, labels, means


def test_kmeans_scorer_foreign_feature_scores_lower():
    features, labels, means = _feature_data()
    logits = torch.zeros(3000, 3)
    scorer = KMeansScorer.fit(features, logits, labels, num_classes=3, k=4, seed=0)
    assert scorer.class_valid.tolist() == [1.0, 1.0, 0.0]
    train_pixel = means[0, 1].view(1, 8, 1, 1)
    foreign = (means[0, 1] + 6.0).view(1, 8, 1, 1)
    s_train = scorer.class_scores(train_pixel, torch.zeros(1, 3, 1, 1))
    s_foreign = scorer.class_scores(foreign, torch.zeros(1, 3, 1, 1))
    assert s_train[0, 0] > 0.9 and s_foreign[0, :2].max() < 0.05
    assert s_train.shape == (1, 3, 1, 1) and float(s_train[0, 2]) == 0.0  # unseen class
    # the learnt threshold is the training quantile: ~95 % of class-0 patches score >= 0.5
    class0 = features[labels == 0].T.reshape(1, 8, -1, 1)
    fraction = scorer.class_scores(class0, torch.zeros(1, 3, class0.shape[2], 1))[0, 0] >= 0.5
    assert abs(float(fraction.float().mean()) - 0.95) < 0.02


def test_kmeans_scores_finite_in_unit_interval_on_extreme_features():
    features, labels, _ = _feature_data()
    scorer = KMeansScorer.fit(features, None, labels, num_classes=2, k=3)
    extreme = torch.tensor([1e6, -1e6, 0, 0, 0, 0, 0, 1e-9]).view(1, 8, 1, 1)
    scores = scorer.class_scores(extreme.repeat(1, 1, 2, 2), torch.zeros(1, 2, 2, 2))
    assert torch.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1


@pytest.mark.parametrize("name", ["msp", "maxlogit", "energy", "kmeans"])
def test_registry_rebuilds_scorer_from_config(name):
    if name == "kmeans":
        features, labels, _ = _feature_data()
        scorer = KMeansScorer.fit(features, None, labels, num_classes=2, k=3)
    else:
        scorer = _fitted(name)
    rebuilt = build_scorer(scorer.get_config())
    assert type(rebuilt) is type(scorer)
    rebuilt.load_state_dict(scorer.state_dict())
    classes = getattr(scorer, "num_classes", 5)
    feats, logits = torch.randn(1, 8, 2, 3), torch.randn(1, classes, 2, 3)
    torch.testing.assert_close(rebuilt(feats, logits), scorer(feats, logits))


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown scorer 'nope'"):
        build_scorer({"name": "nope"})


@pytest.mark.parametrize("name", NAMES)
def test_one_minus_max_over_all_classes_ranks_like_the_classic_baseline(name):
    """The exported `unknown_score` (1 − max over ALL classes of the class scores) orders pixels
    exactly as the leaderboards' all-class baseline: −MSP, −max logit, −logsumexp (energy)."""
    scorer = _fitted(name)
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(1, 5, 16, 16, generator=generator) * 3
    unknown = 1 - scorer.class_scores(torch.zeros(1, 1, 16, 16), logits).amax(dim=1).flatten()
    classic = {
        "msp": -torch.softmax(logits, dim=1).amax(dim=1),
        "maxlogit": -logits.amax(dim=1),
        "energy": -torch.logsumexp(logits, dim=1),
    }[name].flatten()
    if name == "msp":
        assert torch.allclose(unknown, 1 + classic, atol=1e-6)  # exactly 1 − MSP
    order = torch.argsort(classic.double())
    assert torch.all(torch.diff(unknown.double()[order]) >= 0)
    assert len(torch.unique(unknown)) == unknown.numel()  # no ties the classic score lacks
