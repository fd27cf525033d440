"""One condensation step, prototype re-seeding, final hard assignment (docs/method.md §4.4-§4.6).

Only the own-class block of the distance matrix is ever computed (a patch of class c is compared
with the K prototypes of class c), in blocks of ``chunk_rows`` rows, so memory is bounded by
``chunk_rows x K`` instead of ``N x C x K``. The loss is a sum of per-row terms divided by the class
size, so back-propagating block by block accumulates exactly the gradient of the whole batch.
"""

from __future__ import annotations

import torch

from .prototypes import PrototypeModel

INVALID_DISTANCE = 1e12  # distance given to invalid prototypes: zero responsibility, no gradient
_MIN_SQUARED = 1e-12  # keeps sqrt differentiable when a row sits on a prototype


def scaled_distances(x: torch.Tensor, protos: torch.Tensor, scale: float) -> torch.Tensor:
    """scale * Euclidean distance between rows x [n, D] and protos [K, D] -> [n, K]."""
    x_sq = (x * x).sum(dim=1, keepdim=True)
    squared = x_sq + (protos * protos).sum(dim=1)[None, :] - 2.0 * x @ protos.T
    return scale * squared.clamp_min(_MIN_SQUARED).sqrt()


def class_rows(y: torch.Tensor, num_classes: int) -> list[tuple[int, torch.Tensor]]:
    """(class, row indices) for every class present in y (sorted by class)."""
    present = torch.unique(y).tolist()
    return [(c, torch.nonzero(y == c).flatten()) for c in present if 0 <= c < num_classes]


def condensation_step(
    model: PrototypeModel,
    x_white: torch.Tensor,
    y: torch.Tensor,
    inverse_temperature: float,
    scale: float,
    chunk_rows: int,
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Accumulate gradients of the condensation loss of one batch into ``model``.

    loss = sum_c mean_{n: y_n = c} ( -sum_k R[n,k] * (-d[n,k]/tau[c,k] - log tau[c,k]) ),
    R = softmax_k(-inverse_temperature * d) over the valid prototypes of class c; R is *not*
    detached (as published). Returns (loss value, soft counts [C, K], class sizes [C]) for the
    statistics update, which the caller applies after the whole batch.
    """
    cfg = model.config
    valid = model.valid()
    soft_counts = torch.zeros_like(model.running_assignment)
    class_sizes = torch.zeros(cfg.num_classes, dtype=torch.long)
    total = 0.0
    for c, rows in class_rows(y, cfg.num_classes):
        n_c = rows.numel()
        class_sizes[c] = n_c
        for block in rows.split(chunk_rows):
            dist = scaled_distances(x_white[block], model.mu[c], scale)
            dist = dist.masked_fill(~valid[c][None, :], INVALID_DISTANCE)
            resp = torch.softmax(-inverse_temperature * dist, dim=1)
            tau = model.tau()[c]
            log_density = -dist / tau - torch.log(tau)
            loss = -(resp * log_density).sum() / n_c
            loss.backward()
            total += float(loss.detach())
            soft_counts[c] += resp.detach().sum(dim=0).to(soft_counts.dtype)
    return total, soft_counts, class_sizes


@torch.no_grad()
def reseed_weak_prototypes(
    model: PrototypeModel,
    x_white: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> int:
    """Move every prototype whose running assignment fell below the validity threshold onto a
    random patch of its class from this batch (plus tiny noise) and mark it valid again.

    Fix of a published bug (docs/method.md §10.8): the AdamW moments of re-seeded rows are zeroed,
    so a new prototype is not pushed along its predecessor's momentum. (AdamW's bias correction is
    per parameter tensor, so the first updates of a reset row are up to (1-beta1)/sqrt(1-beta2) ~ 3x
    an lr-sized step until its second moment has built up again.) Returns how many were re-seeded.
    """
    cfg = model.config
    thresholds = model.thresholds()
    moved = 0
    state = optimizer.state.get(model.mu, {})
    for c, rows in class_rows(y, cfg.num_classes):
        weak = torch.nonzero(model.running_assignment[c] < thresholds[c]).flatten()
        if weak.numel() == 0:
            continue
        pick = torch.randint(0, rows.numel(), (weak.numel(),), generator=generator)
        noise = cfg.reinit_noise * torch.rand(weak.numel(), model.dim, generator=generator)
        weak_dev = weak.to(model.mu.device)
        seeds = x_white[rows[pick.to(rows.device)]] + noise.to(x_white)
        model.mu[c, weak_dev] = seeds.to(model.mu.dtype)
        model.running_assignment[c, weak] = 1.1 * float(thresholds[c])
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][c, weak_dev] = 0.0
        moved += weak.numel()
    return moved


@torch.no_grad()
def hard_assignment_counts(
    model: PrototypeModel, x_white: torch.Tensor, y: torch.Tensor, scale: float, chunk_rows: int
) -> torch.Tensor:
    """[C, K] number of rows whose nearest *valid* own-class prototype (scaled whitened metric)
    is each prototype; used to prune prototypes that win no patch."""
    cfg = model.config
    valid = model.valid()
    hits = torch.zeros(cfg.num_classes, cfg.K, dtype=torch.long, device=model.mu.device)
    for c, rows in class_rows(y, cfg.num_classes):
        for block in rows.split(chunk_rows):
            dist = scaled_distances(x_white[block], model.mu[c], scale)
            dist = dist.masked_fill(~valid[c][None, :], float("inf"))
            nearest = dist.argmin(dim=1)
            hits[c] += torch.bincount(nearest, minlength=cfg.K)
    return hits
