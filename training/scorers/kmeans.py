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
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Scorer

DEFAULT_K = 30
CHUNK = 65536


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

    def __init__(self, num_classes: int, k: int = DEFAULT_K, dim: int = 1, quantile: float = 0.95):
        super().__init__()
        self.num_classes = int(num_classes)
        self.k = int(k)
        self.dim = int(dim)
        self.quantile = float(quantile)
        self.register_buffer("centroids", torch.zeros(self.num_classes, self.k, self.dim))
        self.register_buffer("thresholds", torch.ones(self.num_classes))
        self.register_buffer("class_valid", torch.zeros(self.num_classes))

    def class_distances(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, D, h, w] -> distance to the nearest centroid of each class [B, C, h, w]."""
        b, d, h, w = features.shape
        points = features.float().permute(0, 2, 3, 1).reshape(-1, d)
        flat = self.centroids.reshape(-1, d)
        d2 = (
            (points * points).sum(dim=1, keepdim=True)
            + (flat * flat).sum(dim=1)[None, :]
            - 2.0 * points @ flat.T
        )
        d2 = d2.reshape(-1, self.num_classes, self.k).amin(dim=2).clamp_min(0.0)
        return d2.sqrt().reshape(b, h, w, self.num_classes).permute(0, 3, 1, 2)

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
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
        scorer = cls(num_classes, k=k, dim=features.shape[1], quantile=quantile)
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
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "k": self.k,
            "dim": self.dim,
            "quantile": self.quantile,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KMeansScorer:
        return cls(
            num_classes=int(config["num_classes"]),
            k=int(config.get("k", DEFAULT_K)),
            dim=int(config["dim"]),
            quantile=float(config.get("quantile", 0.95)),
        )
