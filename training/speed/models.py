"""The models `pixood-bench` times besides a loaded checkpoint: random-weight DINOv2 architectures
(no download), the same model with K random prototypes per class, and the exported ONNX file of
any of them. Random weights and prototypes give timings only: their outputs mean nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from pixood_training.model import PixOODModel, tiny_model

TINY_ARCH = "tiny"  # the test-sized model (pixood_training.model.tiny_model), for quick runs


def random_model(arch: str, network_long_side: int) -> PixOODModel:
    """Untrained PixOOD model (MSP scorer, 19 classes) on the DINOv2 architecture `arch`, or the
    tiny test model for ``arch == "tiny"``. ValueError for an unknown architecture."""
    if arch == TINY_ARCH:
        return tiny_model(network_long_side=network_long_side)
    from pixood_training.models.backbone import BackboneConfig, DinoV2Backbone
    from pixood_training.models.decoder import MLPDecoder
    from pixood_training.scorers.baselines import MSPScorer

    backbone = DinoV2Backbone(BackboneConfig(arch=arch))
    decoder = MLPDecoder(backbone.out_channels, 19)
    model = PixOODModel(backbone, decoder, MSPScorer(), network_long_side=network_long_side)
    return model.eval()


def export_to(model: PixOODModel, path: Path) -> Path:
    """The model file `pixood-export` would write (without its parity check), at `path`."""
    from pixood_training.export.metadata import model_metadata
    from pixood_training.export.onnx_export import export_onnx

    device = next(model.parameters()).device
    cpu_model = model.to("cpu")
    export_onnx(cpu_model, path, model_metadata(cpu_model.get_config(), cpu_model))
    model.to(device)
    return path


@torch.no_grad()
def with_random_prototypes(model: PixOODModel, per_class: int, seed: int = 0) -> PixOODModel:
    """A copy of `model` whose scorer is PixOOD with `per_class` random prototypes per class.

    Prototypes are drawn around the model's own patch features, so distances have a realistic
    range. The decision strategy is the checkpoint's when it has one; otherwise (MSP and other
    baseline scorers) one is fitted on the model's patches of a random image.
    """
    from pixood_training.scorers.pixood import PixOODScorer

    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (1, 224, 308, 3), dtype=torch.uint8, generator=generator)
    logits, e = model.patch_logits_and_features(model.preprocess(image))
    dim, classes = e.shape[1], logits.shape[1]
    flat_e = e.permute(0, 2, 3, 1).reshape(-1, dim)
    picks = torch.randint(0, flat_e.shape[0], (classes * per_class,), generator=generator)
    noise = torch.randn(classes * per_class, dim, generator=generator) * flat_e.std()
    prototypes = (flat_e[picks] + 0.1 * noise).reshape(classes, per_class, dim)
    decision = getattr(model.scorer, "decision", None)
    if decision is None:
        decision = _fitted_decision(logits, flat_e, prototypes)
    copied = copy.deepcopy(model)
    copied.scorer = PixOODScorer(prototypes, copy.deepcopy(decision))
    return copied.eval()


def _fitted_decision(logits: torch.Tensor, flat_e: torch.Tensor, prototypes: torch.Tensor) -> Any:
    """A decision strategy fitted on these patches (coarse grid: its speed, not its quality)."""
    from pixood_training.condensation import PrototypeDistance
    from pixood_training.decision import fit_decision

    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    dists = PrototypeDistance(prototypes)(flat_e)
    return fit_decision(flat_logits.argmax(1), flat_logits, dists, logits.shape[1], grid_size=120)


def num_prototypes(model: PixOODModel) -> int | None:
    """Prototypes per class of a PixOOD scorer (padded count), None for other scorers."""
    distance = getattr(model.scorer, "distance", None)
    return None if distance is None else int(distance.kmax)
