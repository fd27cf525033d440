"""PixOOD scorer: prototype distances and end-to-end class scores on a tiny fitted model."""

from __future__ import annotations

import torch

from pixood_training.condensation import PrototypeDistance, pad_prototypes
from pixood_training.decision import fit_decision
from pixood_training.scorers import build_scorer
from pixood_training.scorers.pixood import PixOODScorer

DIM, CLASSES = 8, 3


def _fitted_scorer():
    """Class c features sit around centre c; logits favour the true class."""
    gen = torch.Generator().manual_seed(0)
    centres = 5.0 * torch.randn(CLASSES, DIM, generator=gen)
    labels = torch.randint(0, CLASSES, (1500,), generator=gen)
    feats = centres[labels] + 0.5 * torch.randn(1500, DIM, generator=gen)
    logits = torch.randn(1500, CLASSES, generator=gen)
    logits[torch.arange(1500), labels] += 5.0
    prototypes = [
        feats[labels == c][:k] for c, k in zip(range(CLASSES), (6, 3, 9), strict=True)
    ]  # different counts per class -> padding
    padded, counts = pad_prototypes(prototypes)
    dists = PrototypeDistance(padded)(feats)
    decision = fit_decision(labels, logits, dists, CLASSES, grid_size=200)
    return PixOODScorer(padded, decision), feats, logits, labels, prototypes, counts


def test_foreign_feature_is_more_anomalous_than_training_feature():
    scorer, feats, logits, labels, _, _ = _fitted_scorer()
    known = feats[:1].reshape(1, DIM, 1, 1)
    foreign = (feats[:1] + 40.0).reshape(1, DIM, 1, 1)  # far from every prototype
    logit = logits[:1].reshape(1, CLASSES, 1, 1)  # the decoder is equally confident for both
    s_known = scorer.class_scores(known, logit)
    s_foreign = scorer.class_scores(foreign, logit)
    c = int(labels[0])
    assert s_known.shape == (1, CLASSES, 1, 1)
    assert s_known[0, c] > 0.2
    assert s_foreign.max() < 0.01 < s_known[0, c]
    anomaly_known = 1 - s_known.amax(dim=1)
    anomaly_foreign = 1 - s_foreign.amax(dim=1)
    assert anomaly_foreign > anomaly_known


def test_class_scores_layout_and_range():
    scorer, feats, logits, labels, _, _ = _fitted_scorer()
    f = feats[:24].reshape(2, 3, 4, DIM).permute(0, 3, 1, 2)  # [B, D, h, w]
    lg = logits[:24].reshape(2, 3, 4, CLASSES).permute(0, 3, 1, 2)
    s = scorer.class_scores(f, lg)
    assert s.shape == (2, CLASSES, 3, 4) and torch.isfinite(s).all()
    assert s.min() >= 0 and s.max() <= 1
    flat = scorer.decision.scores(logits[:24], scorer.distance(feats[:24]))
    torch.testing.assert_close(s.permute(0, 2, 3, 1).reshape(24, CLASSES), flat)
    # patches mostly score highest for their own class
    best = s.permute(0, 2, 3, 1).reshape(24, CLASSES).argmax(dim=1)
    assert (best == labels[:24]).float().mean() > 0.8


def test_scores_at_chosen_classes_equal_class_scores():
    scorer, feats, logits, _, _, _ = _fitted_scorer()
    f = feats[:24].reshape(2, 3, 4, DIM).permute(0, 3, 1, 2)
    lg = logits[:24].reshape(2, 3, 4, CLASSES).permute(0, 3, 1, 2)
    classes = torch.cat(
        [lg.argmax(1, keepdim=True), torch.zeros_like(lg[:, :2], dtype=torch.long)], 1
    )
    picked = scorer.scores_at(f, lg, classes)
    assert picked.shape == (2, 3, 3, 4)
    torch.testing.assert_close(
        picked, scorer.class_scores(f, lg).gather(1, classes), rtol=0, atol=1e-6
    )


def test_padding_by_repetition_leaves_distances_unchanged():
    gen = torch.Generator().manual_seed(1)
    protos = [torch.randn(k, DIM, generator=gen) for k in (1, 4, 7)]
    padded, counts = pad_prototypes(protos)
    assert padded.shape == (3, 7, DIM) and counts.tolist() == [1, 4, 7]
    e = 3 * torch.randn(50, DIM, generator=gen)
    got = PrototypeDistance(padded)(e)
    unpadded = torch.stack([torch.cdist(e, p).min(dim=1).values for p in protos], dim=1)
    torch.testing.assert_close(got, unpadded, atol=1e-4, rtol=1e-5)
    # a padded row is a copy of a real prototype of its class
    assert torch.equal(padded[0, 5], protos[0][0]) and torch.equal(padded[1, 6], protos[1][0])


def test_distances_equal_cdist_min_with_large_feature_norms():
    gen = torch.Generator().manual_seed(2)
    offset = 40.0  # DINOv2-like norms: the expansion must not cancel catastrophically
    protos = offset + torch.randn(CLASSES, 20, 64, generator=gen)
    e = offset + torch.randn(300, 64, generator=gen)
    e[:3] = protos[1, :3]  # zero distance
    dist = PrototypeDistance(protos, chunk_rows=64)(e)  # chunked eager path
    reference = torch.stack(
        [torch.cdist(e.double(), protos[c].double()).min(dim=1).values for c in range(CLASSES)],
        dim=1,
    ).float()
    # at zero distance the square root amplifies the expansion's float32 rounding (~1e-5 in the
    # squared distance): those entries are held to 1e-2, every other to 1e-4
    torch.testing.assert_close(dist[3:], reference[3:], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(
        dist[:3, [0, *range(2, CLASSES)]],
        reference[:3, [0, *range(2, CLASSES)]],
        atol=1e-4,
        rtol=1e-5,
    )
    assert torch.all(dist[:3, 1] < 1e-2)
    torch.testing.assert_close(PrototypeDistance(protos)(e), dist)


def test_rebuilt_from_config_and_state_dict():
    scorer, feats, logits, *_ = _fitted_scorer()
    rebuilt = build_scorer(scorer.get_config())
    assert isinstance(rebuilt, PixOODScorer)
    rebuilt.load_state_dict(scorer.state_dict())
    f = feats[:12].reshape(1, 3, 4, DIM).permute(0, 3, 1, 2)
    lg = logits[:12].reshape(1, 3, 4, CLASSES).permute(0, 3, 1, 2)
    assert torch.equal(rebuilt.class_scores(f, lg), scorer.class_scores(f, lg))
