"""Stage 3: decision strategy + end-to-end models + anomaly evaluation (docs/method.md §5).

One pass over the cached training features (``cache/train``, shared with stage 2) collects, per
labelled patch, the label, the decoder's patch logits and the nearest-prototype distance to every
class; ``fit_decision`` turns them into the Neyman-Pearson scores of the PixOOD scorer. The
baselines are fitted on the same pass (MSP, max-logit and energy on the logits, k-means on a
per-class subsample of the last-block features), so the benchmark compares scorers on exactly the
same backbone and decoder.

Output: one checkpoint directory per scorer, ``checkpoints/<scorer>/`` (docs/architecture.md §7.2);
``checkpoints/pixood`` is the PixOOD model (``decide.rule``); under the default monotone rule
``checkpoints/pixood_published`` holds the same fit with the published rule. Each model is
evaluated end to end (uint8 image in, anomaly map at input resolution out, as deployed) on the
``decide.eval_split`` data split with ``pixood_ros.metrics`` (AP, AUROC, FPR95). Resume: the
collected training statistics and every finished scorer (checkpoint + metrics) are recorded in
``decide/state.pt``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pixood_ros import durable
from pixood_ros.metrics import ExactPixelMetricAccumulator, PixelMetricAccumulator
from pixood_ros.metrics.region import restrict_labels

from ..checkpoint import save_model
from ..model import PixOODModel
from ..scorers import SCORERS, EnergyScorer, KMeansScorer, MaxLogitScorer, MSPScorer, Scorer
from . import parts
from .condense import training_cache
from .config import TrainConfig
from .distributed import DistContext
from .experiment import Experiment, load_torch, maybe_test_kill

STAGE = "decide"
Statistics = dict[str, torch.Tensor]  # collect_training_statistics: labels, logits, dists, ...
Fitter = Callable[[Statistics, list[torch.Tensor], TrainConfig], Scorer]
EXACT_METRIC_PIXELS = 50_000_000  # above this, streaming (binned) metrics keep memory bounded


def _load_prototypes(exp: Experiment) -> list[torch.Tensor]:
    return load_torch(exp.path("condense", "prototypes.pt"))["prototypes"]


@torch.no_grad()
def collect_training_statistics(
    cache, prototypes: list[torch.Tensor], cfg: TrainConfig, device: torch.device
) -> dict[str, torch.Tensor]:
    """labels [N], logits [N, C], dists [N, C] of every labelled training patch, plus a seeded
    per-class subsample of features for k-means (at most ``max_samples_per_class`` each)."""
    from ..condensation import PrototypeDistance, pad_prototypes

    padded, _ = pad_prototypes(prototypes)
    distance = PrototypeDistance(padded, chunk_rows=16384).to(device)
    num_classes = cfg.data.num_classes
    cap = int(cfg.decide.kmeans.max_samples_per_class)
    generator = torch.Generator().manual_seed(cfg.seed)
    labels, logits, dists = [], [], []
    kept: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    counts = [0] * num_classes
    order = torch.randperm(len(cache), generator=generator).tolist()
    bar = tqdm(order, desc="decide: training statistics", unit="batch",
               disable=not cfg.progress)  # fmt: skip
    for index in bar:
        feats, lgts, lbls = cache.batch(index).labelled()
        labels.append(lbls)
        logits.append(lgts)
        dists.append(distance(feats.to(device)).cpu())
        for c in torch.unique(lbls).tolist():
            room = cap - counts[c]
            if room > 0:
                rows = feats[lbls == c]
                pick = torch.randperm(rows.shape[0], generator=generator)[:room]
                kept[c].append(rows[pick].half())
                counts[c] += int(pick.numel())
    dim = padded.shape[-1]
    kfeat = [torch.cat(k) if k else torch.zeros(0, dim, dtype=torch.float16) for k in kept]
    return {
        "labels": torch.cat(labels),
        "logits": torch.cat(logits),
        "dists": torch.cat(dists),
        "kmeans_features": torch.cat(kfeat),
        "kmeans_labels": torch.cat(
            [torch.full((k.shape[0],), c, dtype=torch.long) for c, k in enumerate(kfeat)]
        ),
    }


def _fit_pixood(
    stats: Statistics, prototypes: list[torch.Tensor], cfg: TrainConfig, rule: str | None = None
) -> Scorer:
    """PixOOD with ``decide.rule`` (or ``rule``): the decision rule is in its config."""
    from ..condensation import pad_prototypes
    from ..decision import fit_decision
    from ..scorers.pixood import PixOODScorer

    decision = fit_decision(
        stats["labels"], stats["logits"], stats["dists"], cfg.data.num_classes,
        grid_size=int(cfg.decide.grid_size), rule=rule or cfg.decide.rule,
    )  # fmt: skip
    padded, _ = pad_prototypes(prototypes)
    return PixOODScorer(padded, decision)


def _fit_kmeans(stats: Statistics, prototypes: list[torch.Tensor], cfg: TrainConfig) -> Scorer:
    km = cfg.decide.kmeans
    return KMeansScorer.fit(
        stats["kmeans_features"].float(),
        None,
        stats["kmeans_labels"],
        cfg.data.num_classes,
        k=int(km.clusters_per_class),
        seed=cfg.seed,
        max_samples_per_class=int(km.max_samples_per_class),
        max_iter=int(km.iterations),
        rule=km.rule,
    )


def _fit_on_logits(cls: type[Scorer]) -> Fitter:
    def fit(stats: Statistics, prototypes: list[torch.Tensor], cfg: TrainConfig) -> Scorer:
        return cls.fit(None, stats["logits"], stats["labels"], seed=cfg.seed)

    return fit


# How each registered scorer class is fitted on the training statistics (names: the registry).
FITTERS: dict[type[Scorer], Fitter] = {
    SCORERS["pixood"]: _fit_pixood,
    MSPScorer: lambda stats, prototypes, cfg: MSPScorer.fit(),
    MaxLogitScorer: _fit_on_logits(MaxLogitScorer),
    EnergyScorer: _fit_on_logits(EnergyScorer),
    KMeansScorer: _fit_kmeans,
}


# Written beside checkpoints/pixood whenever decide.rule is monotone: same prototypes and fit,
# the published decision rule (docs/method.md §5.6), so comparisons show both.
PIXOOD_PUBLISHED = "pixood_published"


def scorer_names(cfg: TrainConfig) -> list[str]:
    """decide.scorers, with pixood_published right after pixood under the monotone rule."""
    names = list(cfg.decide.scorers)
    if cfg.decide.rule == "monotone" and "pixood" in names and PIXOOD_PUBLISHED not in names:
        names.insert(names.index("pixood") + 1, PIXOOD_PUBLISHED)
    return names


def fit_scorer(
    name: str, stats: Statistics, prototypes: list[torch.Tensor], cfg: TrainConfig
) -> Scorer:
    """The scorer registered under ``name`` (or the published-rule PixOOD), fitted on the
    training statistics."""
    if name == PIXOOD_PUBLISHED:
        return _fit_pixood(stats, prototypes, cfg, rule="published")
    cls = SCORERS.get(name)
    if cls not in FITTERS:
        raise ValueError(f"no fitting rule for scorer {name!r}")
    return FITTERS[cls](stats, prototypes, cfg)


def build_end_to_end(cfg: TrainConfig, backbone, decoder, scorer: Scorer) -> PixOODModel:
    return PixOODModel(
        backbone,
        decoder,
        scorer,
        class_names=parts.class_names(cfg),
        palette=parts.palette(cfg),
        eval_labels=cfg.model.eval_labels,
        network_long_side=parts.network_long_side(cfg),
    ).eval()


@torch.no_grad()
def evaluate_anomaly(model: PixOODModel, dataset, cfg: TrainConfig, device, desc: str) -> dict:
    """Pixel-level AP / AUROC / FPR95 of the model's anomaly map against the OOD masks, computed
    at the original image resolution on the deployed code path (uint8 image in).

    ``decide.eval_region: eval_labels`` scores only pixels whose ground truth is one of the
    model's eval labels (e.g. road + sidewalk) or anomalous, as SMIYC's obstacle track does: a
    model asked "is this road?" is not penalised for calling a building "not road"."""
    limit = cfg.decide.max_eval_images
    indices = list(range(len(dataset)))[: limit or None]
    first = dataset.load_raw(indices[0])[0]
    exact = len(indices) * first.shape[0] * first.shape[1] <= EXACT_METRIC_PIXELS
    acc = ExactPixelMetricAccumulator() if exact else PixelMetricAccumulator()
    anomalous = total = 0
    model = model.to(device)
    for index in tqdm(indices, desc=desc, unit="img", disable=not cfg.progress):
        image, labels, ood = dataset.load_raw(index)
        if cfg.decide.eval_region == "eval_labels":
            ood = restrict_labels(ood, labels, model.eval_labels)
        anomaly, _, _ = model(torch.from_numpy(image)[None].to(device))
        acc.update(anomaly[0].float().cpu().numpy(), ood.astype(np.uint8))
        anomalous += int((ood == 1).sum())
        total += int((ood != 255).sum())
    metrics = {k: float(v) for k, v in acc.compute(on_degenerate="nan").items()}
    return {
        "ap": metrics["ap"],
        "auroc": metrics["auroc"],
        "fpr95": metrics["fpr95"],
        "anomaly_fraction": anomalous / max(total, 1),
        "images": len(indices),
        "exact": exact,
    }


def save_checkpoint(model: PixOODModel, target) -> None:
    """save_model (fsynced files) into a temporary directory, then swap it in and flush the
    rename (never half a checkpoint)."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_model(model, tmp)
    durable.fsync_dir(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    durable.fsync_dir(target.parent)


def run_decide(exp: Experiment, ctx: DistContext) -> dict[str, Any]:
    cfg = exp.config
    cache, backbone, decoder = training_cache(exp, ctx)
    if not ctx.is_main:
        return {}
    backbone, decoder = backbone.cpu(), decoder.cpu()
    prototypes = _load_prototypes(exp)
    state = exp.load_state(STAGE) or {}
    stats = state.get("stats")
    if stats is None:
        stats = collect_training_statistics(cache, prototypes, cfg, ctx.device)
        state = {"stats": stats, "done": {}}
        exp.save_state(STAGE, state)
        maybe_test_kill(STAGE, 0)
    splits = cfg.data.splits
    eval_role = cfg.decide.eval_split
    eval_data = parts.dataset(cfg, eval_role, resize=False) if splits.get(eval_role) else None
    if eval_data is not None and not eval_data.has_ood:
        exp.log(f"{STAGE}: split {eval_role!r} has no OOD masks; skipping anomaly metrics")
        eval_data = None
    results: dict[str, Any] = dict(state["done"])
    for step, name in enumerate(scorer_names(cfg), start=1):
        if name in results and exp.path("checkpoints", name, "model.safetensors").is_file():
            continue
        torch.manual_seed(cfg.seed)
        scorer = fit_scorer(name, stats, prototypes, cfg)
        model = build_end_to_end(cfg, backbone, decoder, scorer)
        save_checkpoint(model, exp.path("checkpoints", name))
        metrics: dict[str, Any] = {"checkpoint": str(exp.path("checkpoints", name))}
        if eval_data is not None:
            metrics.update(evaluate_anomaly(model, eval_data, cfg, ctx.device, f"eval {name}"))
            exp.log(
                f"{STAGE}: {name:8s} AP {metrics['ap']:.4f}  AUROC {metrics['auroc']:.4f}  "
                f"FPR95 {metrics['fpr95']:.4f}  (anomalous {metrics['anomaly_fraction']:.4f})"
            )
        results[name] = metrics
        state["done"] = results
        exp.save_state(STAGE, state)
        maybe_test_kill(STAGE, step)
    summary = {
        "eval_split": splits.get(eval_role) if eval_data is not None else None,
        "eval_region": cfg.decide.eval_region,
        "eval_labels": cfg.model.eval_labels,
        "training_patches": int(stats["labels"].numel()),
        "scorers": results,
    }
    exp.update_metrics(STAGE, summary)
    exp.mark_done(STAGE, {"scorers": list(results)})
    # The statistics can be large (N x 2C floats); the checkpoints hold everything needed.
    state_file = exp.path(STAGE, "state.pt")
    if state_file.exists():
        state_file.unlink()
    return summary
