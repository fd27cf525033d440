"""Speed of the tensor decision strategy (training/decision.py) against the published one: per
pixel scipy `multivariate_normal.pdf` for class and OOD Gaussians, ratio, `interp1d` lookup
(docs/method.md §5.4). Same fitted Gaussians and the same (unthinned) knot table on the same inputs,
so the speed-up and the agreement are measured like for like."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .timing import time_call


def synthetic_patches(
    num_classes: int, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """labels [N], logits [N, C], dists [N, C]: each class high logit / small distance on its own
    patches (what a trained decoder + prototypes look like), noise elsewhere."""
    rng = np.random.default_rng(seed)
    n = num_classes * per_class
    labels = np.repeat(np.arange(num_classes), per_class)
    logits = rng.normal(0.0, 1.0, (n, num_classes))
    dists = rng.uniform(1.0, 3.0, (n, num_classes))
    logits[np.arange(n), labels] += rng.normal(6.0, 1.0, n)
    dists[np.arange(n), labels] = rng.uniform(0.1, 0.8, n)
    return labels, logits, dists


def benchmark_decision(
    pixels: int = 20000,
    num_classes: int = 19,
    grid_size: int = 400,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit once, evaluate `pixels` x `num_classes` scores both ways, report times and agreement."""
    from scipy.interpolate import interp1d
    from scipy.stats import multivariate_normal

    from pixood_training.decision import fit_decision, ratio_mass_knots

    labels, logits, dists = synthetic_patches(num_classes, 400, seed)
    # The tensor side uses the thinned table the exported model ships (default epsilon); the
    # scipy side the full published table.
    strategy = fit_decision(
        labels, logits, dists, num_classes, grid_size=grid_size, rule="published"
    )
    _, eval_logits, eval_dists = synthetic_patches(
        num_classes, max(1, -(-pixels // num_classes)), seed + 1
    )
    eval_logits, eval_dists = eval_logits[:pixels], eval_dists[:pixels]
    sims = 1.0 / (1.0 + strategy.slope * eval_dists)

    means = strategy.means.numpy()
    covs = strategy.covs.numpy()
    ood_mean, ood_cov = strategy.ood_means[0].numpy(), strategy.ood_covs[0].numpy()
    top = max(float(logits.max()), 0.0) + 5.0
    logit_grid, sim_grid = np.linspace(-top, top, grid_size), np.linspace(0.0, 1.0, grid_size)
    lookups = []
    for c in range(num_classes):
        u, y = ratio_mass_knots(means[c], covs[c], ood_mean, ood_cov, logit_grid, sim_grid)
        x_knots = np.r_[0.0, np.exp(u), np.inf]
        y_knots = np.r_[0.0, y, 1.0]
        finite = np.isfinite(x_knots)
        finite[-1] = True
        lookups.append(interp1d(x_knots[finite], y_knots[finite], kind="linear"))
    class_pdfs = [multivariate_normal(means[c], covs[c]) for c in range(num_classes)]
    ood_pdf = multivariate_normal(ood_mean, ood_cov)

    def scipy_scores() -> np.ndarray:
        out = np.empty((eval_logits.shape[0], num_classes))
        for c in range(num_classes):
            z = np.stack([eval_logits[:, c], sims[:, c]], axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = class_pdfs[c].pdf(z) / ood_pdf.pdf(z)
            out[:, c] = lookups[c](np.nan_to_num(ratio, nan=0.0, posinf=np.inf))
        return out

    logits_t = torch.from_numpy(eval_logits).float()
    dists_t = torch.from_numpy(eval_dists).float()

    def tensor_scores() -> torch.Tensor:
        with torch.no_grad():
            return strategy.scores(logits_t, dists_t)

    scipy_timing = time_call(scipy_scores, repeats, warmup=0)
    # Like for like: scipy / numpy use one core here, so the tensor side does too. (With several
    # intra-op threads on a busy machine every parallel op also waits for descheduled OpenMP
    # workers, which measures the machine's load rather than the decision stage.)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tensor_timing = time_call(tensor_scores, repeats, warmup=1)
    finally:
        torch.set_num_threads(threads)
    reference, ours = scipy_scores(), tensor_scores().double().numpy()
    return {
        "pixels": int(eval_logits.shape[0]),
        "num_classes": num_classes,
        "grid_size": grid_size,
        "scipy": scipy_timing,
        "tensor": tensor_timing,
        "tensor_threads": 1,
        "speedup": scipy_timing["median_ms"] / max(tensor_timing["median_ms"], 1e-9),
        "max_abs_diff": float(np.abs(reference - ours).max()),
    }
