"""The PixOOD scorer: nearest condensation prototype per class + Neyman-Pearson decision.

S_c = F_c(N(z_c; class c) / N(z_c; ood)), z_c = (logit_c, 1 / (1 + 0.5 d_c)), d_c the raw-space
Euclidean distance to the nearest class-c prototype (docs/method.md §4.7, §5.4). Both parts are pure
tensor ops on buffers, so the scorer exports to ONNX with the rest of the model.
"""

from __future__ import annotations

from typing import Any

import torch

from ..condensation.distance import PrototypeDistance
from ..decision import DecisionStrategy
from .base import Scorer


class PixOODScorer(Scorer):
    name = "pixood"

    def __init__(
        self, prototypes: torch.Tensor, decision: DecisionStrategy, chunk_rows: int | None = None
    ):
        """prototypes: padded [C, Kmax, D] raw-space prototypes (``condensation.pad_prototypes``);
        decision: the fitted ``DecisionStrategy`` for the same C classes."""
        super().__init__()
        if prototypes.shape[0] != decision.num_classes:
            raise ValueError(
                f"{prototypes.shape[0]} prototype classes but the decision strategy has "
                f"{decision.num_classes}"
            )
        self.distance = PrototypeDistance(prototypes, chunk_rows=chunk_rows)
        self.decision = decision

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, D, h, w] -> nearest-prototype distances [B, C, h, w]."""
        b, d, h, w = features.shape
        flat = self.distance(features.permute(0, 2, 3, 1).reshape(-1, d))
        return flat.reshape(b, h, w, -1).permute(0, 3, 1, 2)

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        b, d, h, w = features.shape
        dists = self.distance(features.permute(0, 2, 3, 1).reshape(-1, d))
        flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        scores = self.decision.scores(flat_logits, dists)
        return scores.reshape(b, h, w, -1).permute(0, 3, 1, 2)

    def scores_at(
        self, features: torch.Tensor, logits: torch.Tensor, classes: torch.Tensor
    ) -> torch.Tensor:
        """Distances and decision for the requested classes only (K columns instead of C):
        in eager mode only the prototypes of classes that occur are compared
        (``PrototypeDistance.at``)."""
        b, d, h, w = features.shape
        k = classes.shape[1]
        flat_classes = classes.permute(0, 2, 3, 1).reshape(-1, k)
        dists = self.distance.at(features.permute(0, 2, 3, 1).reshape(-1, d), flat_classes)
        flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        scores = self.decision.scores(flat_logits.gather(1, flat_classes), dists, flat_classes)
        return scores.reshape(b, h, w, k).permute(0, 3, 1, 2)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_classes": self.distance.num_classes,
            "max_prototypes": self.distance.kmax,
            "feature_dim": self.distance.dim,
            "decision": self.decision.get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PixOODScorer:
        shape = (int(config["num_classes"]), int(config["max_prototypes"]))
        prototypes = torch.zeros(*shape, int(config["feature_dim"]))
        return cls(prototypes, DecisionStrategy.from_config(config["decision"]))
