"""Per-class k-means scorer after InternImage-OOD (docs/evaluation.md §1), with its bugs fixed.

InternImage-OOD clusters each class's pixel embeddings (30 centroids per class) and flags a pixel
as OOD when its distance to the nearest centroid of its class is large. Its published code refits
the models on every image (so only the last image counts), projects features through an untrained,
unsaved random layer, and uses a per-image relative threshold. Here instead:

* one k-means per class, fitted once on ALL training patch features of that class (the normed
  last-block DINOv2 features ``e``, no projection), k-means++ init with a fixed seed, Lloyd
  iterations in torch, distances computed in chunks;
* a per-class threshold tau_c learned on training data: the ``quantile`` (default 0.95) of the
  training patches' distances to their own class's nearest centroid;
* S_c = 2 ** -((d_c / tau_c) ** 2) with d_c the distance of a patch to the nearest class-c centroid:
  1 at a centroid, 0.5 at the class threshold, -> 0 far away (smooth, monotone, exportable).

Centroids are stored padded to [C, K, D] by repeating a real centroid of the same class (keeps the
minimum unchanged); a class without training samples always scores 0.

``rule="published"`` scores with InternImage-OOD's own rule instead (same fitted centroids; the
fitting bugs above stay fixed): S_c is the softmax probability of class c, except at pixels the
rule flags, where every S_c is the published override confidence 0.0001. A pixel is flagged when
its softmax confidence is < 0.5 and its distance to the nearest centroid of its predicted class c
exceeds 1.1 x the mean distance from the image's low-confidence class-c pixels to all centroids of
class c (per image and class, as the published code compares ``min_dists > dists.mean() * 1.1``).
Written with masks and one-hot sums: no data-dependent control flow, so it exports.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import Scorer

DEFAULT_K = 30
CHUNK = 65536
RULES = ("fixed", "published")
# InternImage-OOD's published rule: candidates below this softmax confidence, flagged beyond this
# multiple of the mean centroid distance, flagged pixels get this confidence.
PUBLISHED_CONFIDENCE_GATE = 0.5
PUBLISHED_DISTANCE_FACTOR = 1.1
PUBLISHED_OOD_CONFIDENCE = 1e-4


def _sq_distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [N, K] via |x|^2 + |c|^2 - 2 x.c, clipped at 0."""
    d2 = (
        (points * points).sum(dim=1, keepdim=True)
        + (centroids * centroids).sum(dim=1)[None, :]
        - 2.0 * points @ centroids.T
    )
    return d2.clamp_min(0.0)


def _nearest(points: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(min squared distance, argmin) of every point, computed in chunks of rows."""
    best_d2, best_idx = [], []
    for start in range(0, points.shape[0], CHUNK):
        d2 = _sq_distances(points[start : start + CHUNK], centroids)
        value, index = d2.min(dim=1)
        best_d2.append(value)
        best_idx.append(index)
    return torch.cat(best_d2), torch.cat(best_idx)


def kmeans(
    points: torch.Tensor, k: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-6
) -> torch.Tensor:
    """Deterministic k-means (k-means++ init, Lloyd) on points [N, D] -> centroids [min(k,N), D]."""
    points = points.float()
    n = points.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one point")
    k = min(k, n)
    generator = torch.Generator().manual_seed(seed)
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = [points[first]]
    closest = _nearest(points, points[first : first + 1])[0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: pick the remaining ones in order
            index = int(torch.randint(n, (1,), generator=generator))
        else:
            index = int(torch.multinomial(closest / total, 1, generator=generator))
        centroids.append(points[index])
        closest = torch.minimum(closest, _nearest(points, points[index : index + 1])[0])
    centers = torch.stack(centroids)
    previous = None
    for _ in range(max_iter):
        d2, assign = _nearest(points, centers)
        sums = torch.zeros_like(centers).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        empty = counts == 0
        updated = sums / counts.clamp_min(1.0)[:, None]
        if empty.any():  # re-seed empty clusters on the currently worst-fitted points
            worst = torch.topk(d2, int(empty.sum())).indices
            updated[empty] = points[worst]
        centers = updated
        inertia = float(d2.sum())
        if previous is not None and abs(previous - inertia) <= tol * max(previous, 1e-12):
            break
        previous = inertia
    return centers


class KMeansScorer(Scorer):
    """S_c = 2 ** -((min_k ||e - mu_ck|| / tau_c) ** 2); see the module docstring."""

    name = "kmeans"

    def __init__(
        self,
        num_classes: int,
        k: int = DEFAULT_K,
        dim: int = 1,
        quantile: float = 0.95,
        rule: str = "fixed",
    ):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"k-means rule must be one of {RULES}, got {rule!r}")
        self.rule = rule
        self.num_classes = int(num_classes)
        self.k = int(k)
        self.dim = int(dim)
        self.quantile = float(quantile)
        self.register_buffer("centroids", torch.zeros(self.num_classes, self.k, self.dim))
        self.register_buffer("thresholds", torch.ones(self.num_classes))
        self.register_buffer("class_valid", torch.zeros(self.num_classes))

    def centroid_distances(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, D, h, w] -> distance to every centroid [B, h, w, C, K]."""
        b, d, h, w = features.shape
        points = features.float().permute(0, 2, 3, 1).reshape(-1, d)
        d2 = _sq_distances(points, self.centroids.reshape(-1, d))
        return d2.sqrt().reshape(b, h, w, self.num_classes, self.k)

    def class_distances(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, D, h, w] -> distance to the nearest centroid of each class [B, C, h, w]."""
        return self.centroid_distances(features).amin(dim=4).permute(0, 3, 1, 2)

    def published_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """InternImage-OOD's rule (module docstring): softmax, overridden where flagged."""
        probs = logits.float().softmax(dim=1)
        confidence, predicted = probs.max(dim=1)  # [B, h, w]
        b, c = probs.shape[:2]
        distances = self.centroid_distances(features)  # [B, h, w, C, K]
        index = predicted[..., None, None].expand(-1, -1, -1, 1, self.k)
        own = distances.gather(3, index)[..., 0, :]  # [B, h, w, K]: the predicted class's
        nearest, mean_all = own.amin(dim=-1), own.mean(dim=-1)
        low = (confidence < PUBLISHED_CONFIDENCE_GATE).to(probs.dtype)
        member = F.one_hot(predicted, c).to(probs.dtype) * low[..., None]  # [B, h, w, C]
        total = (member * mean_all[..., None]).sum(dim=(1, 2))  # [B, C]
        image_mean = total / member.sum(dim=(1, 2)).clamp_min(1.0)
        threshold = PUBLISHED_DISTANCE_FACTOR * image_mean.gather(1, predicted.reshape(b, -1))
        valid = self.class_valid[predicted] > 0
        flagged = (low > 0) & valid & (nearest > threshold.reshape(predicted.shape))
        return torch.where(
            flagged[:, None], torch.full_like(probs, PUBLISHED_OOD_CONFIDENCE), probs
        )

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.rule == "published":
            return self.published_scores(features, logits)
        distance = self.class_distances(features)
        relative = distance / self.thresholds.view(1, -1, 1, 1)
        scores = torch.exp2(-(relative * relative))
        return scores * self.class_valid.view(1, -1, 1, 1)

    @classmethod
    def fit(
        cls,
        features: torch.Tensor,
        logits: torch.Tensor | None,
        labels: torch.Tensor,
        num_classes: int,
        k: int = DEFAULT_K,
        quantile: float = 0.95,
        seed: int = 0,
        max_samples_per_class: int = 200_000,
        max_iter: int = 100,
        rule: str = "fixed",
    ) -> KMeansScorer:
        """Fit on ALL training patches: features [N, D] (last-block ``e``), labels [N] (255 void).

        Classes with more than ``max_samples_per_class`` patches are subsampled (fixed seed).
        """
        if features.dim() != 2 or labels.reshape(-1).shape[0] != features.shape[0]:
            raise ValueError(
                f"fit expects features [N, D] and labels [N], got {tuple(features.shape)} "
                f"and {tuple(labels.shape)}"
            )
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile}")
        features = features.float()
        labels = labels.reshape(-1).long()
        scorer = cls(num_classes, k=k, dim=features.shape[1], quantile=quantile, rule=rule)
        generator = torch.Generator().manual_seed(seed)
        for c in range(num_classes):
            points = features[labels == c]
            if points.shape[0] == 0:
                continue
            if points.shape[0] > max_samples_per_class:
                keep = torch.randperm(points.shape[0], generator=generator)
                points = points[keep[:max_samples_per_class]]
            centers = kmeans(points, k, seed=seed + c, max_iter=max_iter)
            padded = centers[torch.arange(k) % centers.shape[0]]
            distance = _nearest(points, centers)[0].sqrt()
            tau = float(torch.quantile(distance.double(), quantile))
            scorer.centroids[c] = padded
            scorer.thresholds[c] = max(tau, 1e-6)
            scorer.class_valid[c] = 1.0
        return scorer

    def get_config(self) -> dict[str, Any]:
        config = {
            "name": self.name,
            "num_classes": self.num_classes,
            "k": self.k,
            "dim": self.dim,
            "quantile": self.quantile,
        }
        if self.rule != "fixed":  # written only when set: existing configs keep their hash
            config["rule"] = self.rule
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KMeansScorer:
        return cls(
            num_classes=int(config["num_classes"]),
            k=int(config.get("k", DEFAULT_K)),
            dim=int(config["dim"]),
            quantile=float(config.get("quantile", 0.95)),
            rule=str(config.get("rule", "fixed")),
        )
