"""Logit-based baseline scorers: MSP, max-logit and energy, as per-class scores in [0, 1].

The end-to-end module computes ``anomaly = 1 - max_{c in eval_labels} S_c`` for every scorer, so
each baseline is written as a per-class score whose maximum over *all* classes gives back the
classic baseline exactly (up to a fixed monotone map):

* ``msp``:      S_c = softmax(l)_c                       -> max = maximum softmax probability
* ``maxlogit``: S_c = g(l_c)                             -> max = g(max logit)
* ``energy``:   S_c = g(logsumexp(l)) * exp(l_c - max l) -> max = g(-energy); a class far below
  the winner scores low, so road-only eval labels still flag non-road pixels.

Logits and energies are unbounded, so ``g`` is a logistic CDF fitted on the training distribution
of the statistic (max logit / logsumexp over training patches): g(x) = sigmoid((x - m) / s) with
m the median and s = IQR / (2 ln 3) (the logistic distribution's quartiles). Fitted parameters are
buffers, so the map travels with the checkpoint and the ONNX graph. ``g`` is strictly monotone, so
rankings (AP, AUROC, FPR95) are those of the raw baseline; scores are comparable across models and
lie in [0, 1] (finite even for extreme logits; float32 saturates only beyond ~17 s from the median).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import Scorer

MAX_FIT_SAMPLES = 2_000_000


def _valid_rows(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Training logits [N, C] of labelled patches (label 255 = void is left out when given)."""
    if logits.dim() != 2:
        raise ValueError(f"fit expects flattened logits [N, C], got shape {tuple(logits.shape)}")
    logits = logits.float()
    if labels is not None:
        logits = logits[labels.reshape(-1) != 255]
    logits = logits[torch.isfinite(logits).all(dim=1)]
    if logits.shape[0] < 2:
        raise ValueError("need at least two labelled training patches to fit a baseline scorer")
    return logits


def _fit_logistic(values: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """Median and logistic scale of a 1-D sample (quantiles on a fixed-seed subsample)."""
    if values.numel() > MAX_FIT_SAMPLES:
        generator = torch.Generator().manual_seed(seed)
        values = values[torch.randperm(values.numel(), generator=generator)[:MAX_FIT_SAMPLES]]
    levels = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    q25, q50, q75 = torch.quantile(values.double(), levels)
    scale = float(q75 - q25) / (2.0 * math.log(3.0))
    if not math.isfinite(scale) or scale <= 1e-6:
        scale = max(float(values.double().std()), 1e-3)
    return float(q50), scale


class _LogisticCalibrated(Scorer):
    """Holds the fitted logistic map g as buffers ``center`` and ``scale``."""

    def __init__(self, center: float = 0.0, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.register_buffer("center", torch.tensor(float(center)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def calibrate(self, statistic: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((statistic - self.center) / self.scale)

    @staticmethod
    def statistic(logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def fit(
        cls,
        features: torch.Tensor | None,
        logits: torch.Tensor,
        labels: torch.Tensor | None = None,
        seed: int = 0,
    ) -> _LogisticCalibrated:
        """Fit g on training patches: logits [N, C] (features unused), labels [N] (255 = void)."""
        rows = _valid_rows(logits, labels)
        center, scale = _fit_logistic(cls.statistic(rows.T.unsqueeze(0)).reshape(-1), seed)
        return cls(center, scale)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _LogisticCalibrated:
        return cls()


class MSPScorer(Scorer):
    """Maximum softmax probability: S = softmax over classes (already in [0, 1])."""

    name = "msp"

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    @classmethod
    def fit(cls, features=None, logits=None, labels=None, **_: Any) -> MSPScorer:
        """Nothing to fit; present so every scorer is built the same way."""
        return cls()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MSPScorer:
        return cls()


class MaxLogitScorer(_LogisticCalibrated):
    """Max-logit: S_c = g(l_c), g fitted on the training distribution of max_c l_c."""

    name = "maxlogit"

    @staticmethod
    def statistic(logits: torch.Tensor) -> torch.Tensor:
        return logits.amax(dim=1)

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.calibrate(logits.float())


class EnergyScorer(_LogisticCalibrated):
    """Energy: S_c = g(logsumexp l) * exp(l_c - max l), g fitted on training logsumexp."""

    name = "energy"

    @staticmethod
    def statistic(logits: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logits, dim=1)

    def class_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        top = logits.amax(dim=1, keepdim=True)
        free_energy = top + torch.log(torch.exp(logits - top).sum(dim=1, keepdim=True))
        return self.calibrate(free_energy) * torch.exp(logits - top)
