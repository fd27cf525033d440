"""Speed of the decision strategy (training/decision/) against the published one: per pixel scipy
`multivariate_normal.pdf` for class and OOD Gaussians, ratio, `interp1d` lookup (docs/method.md
§5.4). Same fitted Gaussians and the same (unthinned) knot table on the same inputs, so the
speed-up and the agreement are measured like for like. Three sides alternate call by call, all on
one thread: scipy, PyTorch eager, and the decision stage exported alone (dynamo exporter, opset 18,
as training/export) in ONNX Runtime CPU (one intra-op and one inter-op thread, sequential)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .timing import time_alternating

PATCH_GRID = (77, 137)  # ViT-L/14 patches of a 1080p frame (issue 16's decision op target)
OPSET = 18


class _AllClasses(torch.nn.Module):
    """The decision stage alone: logits [N, C], dists [N, C] -> scores [N, C]."""

    def __init__(self, strategy: torch.nn.Module):
        super().__init__()
        self.strategy = strategy

    def forward(self, logits: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
        return self.strategy.scores(logits, dists)


def export_decision(strategy: torch.nn.Module, path: Path, sample: tuple[torch.Tensor, ...]) -> int:
    """Export the scoring of all classes to ``path`` (N dynamic); returns its node count."""
    n = torch.export.Dim("n", min=2)
    with torch.no_grad():
        program = torch.onnx.export(
            _AllClasses(strategy).eval(), sample, dynamo=True, opset_version=OPSET,
            dynamic_shapes=({0: n}, {0: n}), input_names=["logits", "dists"],
            output_names=["scores"], verbose=False,
        )  # fmt: skip
    onnx.save(program.model_proto, str(path))
    return len(program.model_proto.graph.node)


def ort_session(path: Path, profile_prefix: str | None = None) -> ort.InferenceSession:
    """CPU session with one intra-op and one inter-op thread, sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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


def published_scipy_scorer(
    strategy: Any, top_logit: float, grid_size: int, logits: np.ndarray, sims: np.ndarray
) -> Any:
    """The published formulation on the same Gaussians: per class scipy pdf ratio, then
    `interp1d` over the full (unthinned) knot table. Returns a function scoring ``logits`` /
    ``sims`` [N, C] -> [N, C]."""
    from scipy.interpolate import interp1d
    from scipy.stats import multivariate_normal

    from pixood_training.decision import ratio_mass_knots

    num_classes = logits.shape[1]
    means, covs = strategy.means.numpy(), strategy.covs.numpy()
    ood_mean, ood_cov = strategy.ood_means[0].numpy(), strategy.ood_covs[0].numpy()
    top = max(top_logit, 0.0) + 5.0
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
        out = np.empty((logits.shape[0], num_classes))
        for c in range(num_classes):
            z = np.stack([logits[:, c], sims[:, c]], axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = class_pdfs[c].pdf(z) / ood_pdf.pdf(z)
            out[:, c] = lookups[c](np.nan_to_num(ratio, nan=0.0, posinf=np.inf))
        return out

    return scipy_scores


def benchmark_decision(
    pixels: int = PATCH_GRID[0] * PATCH_GRID[1],
    num_classes: int = 19,
    grid_size: int = 400,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit once, evaluate `pixels` x `num_classes` scores three ways (scipy, eager, exported in
    ONNX Runtime), report times and agreement."""
    from pixood_training.decision import fit_decision

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

    scipy_scores = published_scipy_scorer(
        strategy, float(logits.max()), grid_size, eval_logits, sims
    )

    logits_t = torch.from_numpy(eval_logits).float()
    dists_t = torch.from_numpy(eval_dists).float()

    def tensor_scores() -> torch.Tensor:
        with torch.no_grad():
            return strategy.scores(logits_t, dists_t)

    feed = {"logits": logits_t.numpy(), "dists": dists_t.numpy()}
    # Like for like: scipy / numpy use one core here, so the other sides do too. (With several
    # intra-op threads on a busy machine every parallel op also waits for descheduled workers,
    # which measures the machine's load rather than the decision stage.)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "decision.onnx"
            nodes = export_decision(strategy, path, (logits_t[:16], dists_t[:16]))
            session = ort_session(path)
            timings = time_alternating(
                {"scipy": scipy_scores, "tensor": tensor_scores,
                 "onnxruntime": lambda: session.run(None, feed)},
                repeats, warmup=1,
            )  # fmt: skip
            exported = session.run(None, feed)[0]
    finally:
        torch.set_num_threads(threads)
    reference, ours = scipy_scores(), tensor_scores().double().numpy()
    return {
        "pixels": int(eval_logits.shape[0]),
        "num_classes": num_classes,
        "grid_size": grid_size,
        "scipy": timings["scipy"],
        "tensor": timings["tensor"],
        "onnxruntime": timings["onnxruntime"],
        "tensor_threads": 1,
        "onnx_nodes": nodes,
        "onnx_opset": OPSET,
        "speedup": timings["scipy"]["median_ms"] / max(timings["tensor"]["median_ms"], 1e-9),
        "onnx_speedup": timings["scipy"]["median_ms"]
        / max(timings["onnxruntime"]["median_ms"], 1e-9),
        "max_abs_diff": float(np.abs(reference - ours).max()),
        "onnx_max_abs_diff": float(np.abs(exported - ours).max()),
    }
