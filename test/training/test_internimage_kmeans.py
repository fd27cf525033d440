"""InternImage-OOD's published k-means rule (decide.kmeans.rule: published)."""

from __future__ import annotations

import torch

from pixood_training.scorers import build_scorer
from pixood_training.scorers.kmeans import PUBLISHED_OOD_CONFIDENCE, KMeansScorer


def _scorer() -> KMeansScorer:
    scorer = KMeansScorer(3, k=2, dim=1, rule="published")
    scorer.centroids.copy_(torch.tensor([[[0.0], [1.0]], [[10.0], [11.0]], [[20.0], [21.0]]]))
    scorer.class_valid.fill_(1.0)
    return scorer


def test_published_rule_flags_far_low_confidence_pixels_of_the_predicted_class():
    # five pixels predicted class 0: four with confidence < 0.5 at x = 0, 0.5, 1, 5 and one
    # confident pixel at x = 5. Mean distance to class 0's centroids over the low-confidence
    # ones: (0.5 + 0.5 + 0.5 + 4.5) / 4 = 1.5, threshold 1.65: only the low-confidence x = 5.
    features = torch.tensor([0.0, 0.5, 1.0, 5.0, 5.0]).view(1, 1, 1, 5)
    logits = torch.tensor([[0.2, 0.0, 0.0]] * 4 + [[5.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 5)
    scores = _scorer().class_scores(features, logits)
    flagged = (scores == PUBLISHED_OOD_CONFIDENCE).all(dim=1)[0, 0]
    assert flagged.tolist() == [False, False, False, True, False]
    probs = logits.softmax(dim=1)
    keep = ~flagged
    assert torch.allclose(scores[0, :, 0, keep], probs[0, :, 0, keep])


def test_published_threshold_is_per_image():
    # the same far pixel is not flagged when the other image's pixels are all far as well
    single = torch.tensor([5.0, 5.0]).view(1, 1, 1, 2)
    logits = torch.tensor([[0.2, 0.0, 0.0]] * 2).T.reshape(1, 3, 1, 2)
    near = torch.tensor([0.0, 5.0]).view(1, 1, 1, 2)
    both = _scorer().class_scores(torch.cat([single, near]), torch.cat([logits, logits]))
    flagged = (both == PUBLISHED_OOD_CONFIDENCE).all(dim=1)[:, 0]
    assert flagged.tolist() == [[False, False], [False, True]]


def test_rule_round_trips_through_the_config_and_fixed_configs_stay_unchanged():
    scorer = _scorer()
    assert build_scorer(scorer.get_config()).rule == "published"
    fixed = KMeansScorer(3, k=2, dim=1)
    assert "rule" not in fixed.get_config()
