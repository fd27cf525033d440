"""The learnable state of condensation: whitening, prototypes, exponential scales, statistics.

Prototypes live in the *whitened* feature space ``(x - median) / std`` (docs/method.md §4.3); they
are mapped back to the raw feature space only for export, because inference measures raw Euclidean
distances (§4.7).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import CondensationConfig


def tau_from_param(param: torch.Tensor) -> torch.Tensor:
    """tau = 100 * sigmoid(a / 2) + 0.01: bounded to (0.01, 100.01) whatever the optimiser does."""
    return 100.0 * torch.sigmoid(param / 2.0) + 0.01


def tau_param_for(init_tau: float) -> float:
    """Inverse of ``tau_from_param`` without the 0.01 offset (as published: a = -2 ln((1-t)/t))."""
    t = init_tau / 100.0
    return -2.0 * math.log((1.0 - t) / t)


class PrototypeModel(nn.Module):
    """Parameters ``mu`` [C, K, D] (whitened) and ``tau_param`` [C, K]; buffers for the whitening
    statistics and the running assignment statistics that decide validity and re-seeding."""

    def __init__(self, config: CondensationConfig, dim: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        c, k = config.num_classes, config.K
        self.config = config
        self.dim = dim
        self.mu = nn.Parameter(torch.zeros(c, k, dim, dtype=dtype))
        tau_init = tau_param_for(config.init_tau)
        self.tau_param = nn.Parameter(torch.full((c, k), tau_init, dtype=dtype))
        self.register_buffer("median", torch.zeros(dim, dtype=dtype))
        self.register_buffer("std", torch.ones(dim, dtype=dtype))
        self.register_buffer("running_assignment", torch.ones(c, k, dtype=torch.float64))
        self.register_buffer("running_batchsize", torch.ones(c, dtype=torch.float64))
        self.register_buffer("class_steps", torch.zeros(c, dtype=torch.long))

    # -- derived quantities ---------------------------------------------------------------------
    def tau(self) -> torch.Tensor:
        return tau_from_param(self.tau_param)

    def thresholds(self) -> torch.Tensor:
        """[C] minimum running assignment for a prototype to stay valid: rho * RB_c / K."""
        return self.config.reset_threshold * self.running_batchsize / self.config.K

    def valid(self) -> torch.Tensor:
        """[C, K] bool. A class whose prototypes are all invalid keeps all of them (never
        happens with rho < 1, since the mean assignment is RB/K; guards a division by nothing)."""
        valid = self.running_assignment > self.thresholds()[:, None]
        return valid | ~valid.any(dim=1, keepdim=True)

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.median) / self.std

    def raw_prototypes(self) -> torch.Tensor:
        """[C, K, D] prototypes in the raw feature space."""
        return self.mu.detach() * self.std + self.median

    # -- initialisation -------------------------------------------------------------------------
    @torch.no_grad()
    def initialise(self, buffers: list[torch.Tensor], generator: torch.Generator) -> None:
        """Whitening statistics over all buffer rows, then K prototypes per class drawn from that
        class's whitened rows (distinct rows when there are more than K, else with replacement
        plus uniform jitter; a class without rows gets uniform noise in [-0.5, 0.5))."""
        rows = [b for b in buffers if b.numel()]
        if not rows:
            raise ValueError("condensation found no labelled patches to initialise from")
        data = torch.cat(rows).to(self.mu.dtype)
        self.median.copy_(data.median(dim=0).values)  # lower median, as published
        std = data.std(dim=0) if data.shape[0] > 1 else torch.ones_like(self.std)
        # A constant feature (std 0) would divide by zero; it carries no information, so scale 1.
        self.std.copy_(torch.where(torch.isfinite(std) & (std > 0), std, torch.ones_like(std)))
        k, d = self.config.K, self.dim
        for c, buf in enumerate(buffers):
            noise = torch.rand(k, d, generator=generator, dtype=self.mu.dtype)
            if buf.shape[0] == 0:
                self.mu[c] = (noise - 0.5).to(self.mu.device)
                continue
            white = self.whiten(buf.to(self.mu.dtype).to(self.mu.device))
            if buf.shape[0] > k:
                pick = torch.randperm(buf.shape[0], generator=generator)[:k]
                self.mu[c] = white[pick.to(white.device)]
            else:
                pick = torch.randint(0, buf.shape[0], (k,), generator=generator)
                jitter = self.config.init_noise * (noise - 0.5)
                self.mu[c] = white[pick.to(white.device)] + jitter.to(white.device)
        self.tau_param.fill_(tau_param_for(self.config.init_tau))
        self.running_assignment.fill_(1.0)
        self.running_batchsize.fill_(1.0)
        self.class_steps.zero_()

    # -- statistics -----------------------------------------------------------------------------
    @torch.no_grad()
    def update_stats(self, soft_counts: torch.Tensor, class_sizes: torch.Tensor) -> None:
        """Bias-corrected exponentially weighted averages of the soft assignment counts.

        soft_counts [C, K] (sum of responsibilities per prototype in this batch), class_sizes [C]
        (patches per class in this batch). Only classes present in the batch are updated; their
        step count t grows and q = q0 / (1 - (1 - q0)^t) (so q = 1 on a class's first batch).
        """
        q0 = self.config.ewa_decay
        for c in torch.nonzero(class_sizes > 0).flatten().tolist():
            self.class_steps[c] += 1
            t = int(self.class_steps[c])
            q = q0 / (1.0 - (1.0 - q0) ** t)
            ra = self.running_assignment[c]
            ra.mul_(1.0 - q).add_(soft_counts[c].to(ra.dtype), alpha=q)
            rb = self.running_batchsize[c]
            self.running_batchsize[c] = (1.0 - q) * rb + q * float(class_sizes[c])
