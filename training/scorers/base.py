"""The one interface every anomaly scorer implements (pixood, kmeans, msp, maxlogit, energy).

A scorer sees the frozen backbone's patch features and the decoder's patch logits and returns,
per class, a score in [0, 1] saying how well each patch fits that class. The end-to-end module
turns these into the three model outputs the same way for every scorer:

    semantic    = argmax_c logits                      (nearest-upsampled to input size)
    anomaly     = 1 - max_{c in eval_labels} S_c        (S bilinearly upsampled to input size)
    confidence  = S_{semantic}
    unknown     = 1 - max_{all c} S_c                   (optional model output unknown_score)

Keeping the combination outside the scorers is what makes the baselines comparable with PixOOD
(same backbone, decoder, eval labels and upsampling) and lets each be exported to ONNX alike.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Scorer(nn.Module):
    """Base class. Subclasses set ``name`` and implement ``class_scores``.

    ``get_config()`` returns the JSON-able shape information needed to rebuild an empty scorer
    with ``from_config`` (buffers of the right sizes) before ``load_state_dict`` fills it, so a
    checkpoint directory can be reloaded without re-running training.
    """

    name: str = ""

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """features [B, D, h, w] (last-block normed backbone features), logits [B, C, h, w].

        Returns [B, C, h, w] float in [0, 1], finite everywhere.
        """
        raise NotImplementedError

    def scores_at(
        self, features: torch.Tensor, logits: torch.Tensor, classes: torch.Tensor
    ) -> torch.Tensor:
        """S only where it is needed: ``classes`` [B, K, h, w] (int64 class ids) -> [B, K, h, w]
        with entry k = S_{classes[:, k]}. The end-to-end module asks for the semantic class and
        the eval labels; scorers whose per-class cost matters (PixOOD) override this so the
        other classes are never scored. Same values as ``class_scores(...).gather(1, classes)``.
        """
        return self.class_scores(features, logits).gather(1, classes)

    def forward(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.class_scores(features, logits)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scorer:
        raise NotImplementedError
