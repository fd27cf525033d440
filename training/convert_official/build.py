"""Official PixOOD files -> our end-to-end ``PixOODModel`` (then ``checkpoint.save_model``).

The published inference (docs/method.md §5.4, §6) is reproduced as follows:

* DINOv2 size (width, depth, registers) from the weights file; intermediate blocks from the
  official backbone config's MULTISCALE, else evenly spaced quarters of the depth;
* decoder = the stage-1 MLP, weights copied unchanged;
* scorer ``pixood``: raw-space Euclidean distance to the nearest official prototype of each class,
  similarity 1 / (1 + 0.5 d), the official class / OOD Gaussians and the official interp1d knot
  tables (``DecisionStrategy.from_tables``);
* native network resolution (``network_long_side`` 0, the official eval mode), anomaly =
  1 - max over ``eval_labels`` (default road + sidewalk, the official default).

Deliberate differences (all in ``DecisionStrategy``; see checkpoints/README.md):
* the likelihood ratio is evaluated in the log domain, so the published 0/0 = NaN scores (both
  pdfs underflow) and x/0 = inf ratios (scored 1.0) become finite ratios scored by the table;
* knots with non-finite / non-positive abscissae are dropped (np.interp ignored them anyway);
* the knot table is thinned so that the mass rises by at most ``epsilon`` between kept knots
  (the published tables hold up to 4 million knots per class), bounding |dS| by ``epsilon``;
* exactly singular covariances get a 1e-12 variance floor (the published evaluation raised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..condensation.distance import pad_prototypes
from ..decision import DEFAULT_EPSILON, DIST_TO_SIM_SLOPE, DecisionStrategy
from ..model import CITYSCAPES_CLASSES, DEFAULT_EVAL_LABELS, PixOODModel
from ..models.backbone import (
    BackboneConfig,
    BackboneWeightsError,
    DinoV2Backbone,
    backbone_config_from_weights,
    build_backbone,
)
from ..models.decoder import MLPDecoder
from ..scorers.pixood import PixOODScorer
from .official import (
    DECODER_KEYS,
    HUB_ARCHS,
    OfficialFormatError,
    OfficialParameters,
    OfficialPixOOD,
    multiscale_blocks,
    read_backbone_checkpoint,
    read_backbone_config,
    read_parameters,
    read_pixood_checkpoint,
)


@dataclass
class ConversionReport:
    """What was read and what was changed, for the command's summary."""

    backbone: dict = field(default_factory=dict)
    blocks_source: str = ""
    prototypes_per_class: list[int] = field(default_factory=list)
    knots_per_class: list[int] = field(default_factory=list)
    kept_knots_per_class: list[int] = field(default_factory=list)
    dropped_nonfinite_knots: int = 0

    def lines(self) -> list[str]:
        b = self.backbone
        return [
            f"backbone: {b.get('arch')} embed_dim {b.get('embed_dim')} depth {b.get('depth')} "
            f"blocks {b.get('blocks')} ({self.blocks_source})",
            f"prototypes per class: {self.prototypes_per_class}",
            f"decision knots per class: {self.knots_per_class} -> kept "
            f"{self.kept_knots_per_class} (dropped {self.dropped_nonfinite_knots} non-finite)",
        ]


def _backbone_config(
    dinov2_weights: Path | None, backbone_config: Path | None, emb_size: int | None
) -> tuple[BackboneConfig, str]:
    official = read_backbone_config(backbone_config) if backbone_config else None
    if dinov2_weights is not None:
        try:
            config = backbone_config_from_weights(dinov2_weights)
        except BackboneWeightsError as exc:
            raise OfficialFormatError(str(exc)) from exc
    else:
        arch = official.arch if official else None
        if arch is None and emb_size == 1024:
            arch = "dinov2_vitl14"  # the published PixOOD backbone
        if arch not in HUB_ARCHS:
            raise OfficialFormatError(
                "without --dinov2-weights the DINOv2 size comes from MODEL.ARCH of "
                f"--backbone-config (one of {sorted(HUB_ARCHS)}), got {arch!r}"
            )
        config = BackboneConfig(arch=HUB_ARCHS[arch])
    depth = config.resolved_depth
    if official is not None:
        blocks = multiscale_blocks(official.multiscale, depth, str(backbone_config))
        source = f"MULTISCALE of {backbone_config}"
    else:
        blocks = None
        source = "evenly spaced quarters"
    try:
        config = dataclasses.replace(config, blocks=blocks)  # re-validates against the depth
    except ValueError as exc:
        raise OfficialFormatError(f"{source}: {exc}") from exc
    return config, source


def build_decision(
    official: OfficialPixOOD, epsilon: float = DEFAULT_EPSILON, rule: str = "published"
) -> tuple[DecisionStrategy, list[int], int]:
    """DecisionStrategy from the official N-P model; also kept knots per class, dropped count.
    ``published`` replays the authors' tables; ``monotone`` refits them for the monotone rule
    from the same Gaussians (docs/method.md §5.6)."""
    decision = DecisionStrategy.from_tables(
        official.class_means,
        official.class_covs,
        official.ood_means,
        official.ood_covs,
        official.knots_x,
        official.knots_y,
        epsilon=epsilon,
        slope=DIST_TO_SIM_SLOPE,
        rule=rule,
    )
    dropped = sum(
        int((~(np.isfinite(x) & np.isfinite(y))).sum())
        for x, y in zip(official.knots_x, official.knots_y, strict=True)
    )
    return decision, [int(n) for n in decision.table_count.tolist()], dropped


def _official_backbone(config: BackboneConfig, dinov2_weights: str | Path | None) -> DinoV2Backbone:
    try:
        return build_backbone(config, weights=dinov2_weights, pretrained_hub=dinov2_weights is None)
    except BackboneWeightsError as exc:
        raise OfficialFormatError(str(exc)) from exc
    except Exception as exc:  # hub download failures come in many types
        raise OfficialFormatError(
            f"cannot get DINOv2 weights for {config.arch} from the hub ({type(exc).__name__}); "
            "pass --dinov2-weights FILE"
        ) from exc


def _check_fit(
    backbone: DinoV2Backbone,
    decoder_state: dict[str, torch.Tensor],
    official: OfficialPixOOD,
    parameters: OfficialParameters,
) -> None:
    """Decoder, prototypes, parameters.yaml and DINOv2 must describe one model."""
    in_channels = decoder_state["decoder.0.weight"].shape[1]
    dim = official.prototypes[0].shape[1]
    problems = []
    if in_channels != backbone.out_channels:
        problems.append(
            f"the decoder expects {in_channels} input channels but DINOv2 "
            f"(embed_dim {backbone.embed_dim}) x {len(backbone.blocks)} blocks "
            f"{list(backbone.blocks)} gives {backbone.out_channels}"
        )
    if dim != backbone.embed_dim:
        problems.append(f"prototypes are {dim}-d but DINOv2 features {backbone.embed_dim}-d")
    if parameters.emb_size is not None and parameters.emb_size != dim:
        problems.append(f"MODEL.EMB_SIZE {parameters.emb_size} != prototype width {dim}")
    counts = {
        "decoder": decoder_state["decoder.2.weight"].shape[0],
        "prototype lists": official.num_classes,
        "MODEL.NUM_CLASSES": parameters.num_classes,
    }
    if len(set(counts.values())) != 1:
        problems.append(f"class counts disagree: {counts}")
    if problems:
        raise OfficialFormatError("official files do not fit together: " + "; ".join(problems))


def convert_official(
    backbone_ckpt: str | Path,
    pixood_ckpt: str | Path,
    params: str | Path,
    dinov2_weights: str | Path | None = None,
    backbone_config: str | Path | None = None,
    eval_labels: Sequence[int] | None = DEFAULT_EVAL_LABELS,
    class_names: Sequence[str] | None = None,
    epsilon: float = DEFAULT_EPSILON,
    eval_scale_factor: int = 1,
    rule: str = "published",
) -> tuple[PixOODModel, ConversionReport]:
    """Build our end-to-end model from the official files (docs/method.md §7).

    Without ``dinov2_weights`` the DINOv2 weights come from timm's hub (needs internet).
    Raises ``OfficialFormatError`` (one-line message) for anything wrong with the inputs.
    """
    parameters = read_parameters(Path(params))
    decoder_state = read_backbone_checkpoint(Path(backbone_ckpt))
    official = read_pixood_checkpoint(Path(pixood_ckpt))
    report = ConversionReport()

    config, report.blocks_source = _backbone_config(
        Path(dinov2_weights) if dinov2_weights is not None else None,
        Path(backbone_config) if backbone_config is not None else None,
        parameters.emb_size,
    )
    backbone = _official_backbone(config, dinov2_weights)
    report.backbone = config.to_dict()
    _check_fit(backbone, decoder_state, official, parameters)
    num_classes = official.num_classes
    hidden, in_channels = decoder_state["decoder.0.weight"].shape[:2]
    decoder = MLPDecoder(int(in_channels), int(num_classes), hidden_channels=int(hidden))
    decoder.load_state_dict({k.removeprefix("decoder."): decoder_state[k] for k in DECODER_KEYS})

    decision, kept, dropped = build_decision(official, epsilon, rule)
    padded, proto_counts = pad_prototypes(official.prototypes)
    scorer = PixOODScorer(padded, decision)
    report.prototypes_per_class = [int(n) for n in proto_counts.tolist()]
    report.knots_per_class = [int(x.size) for x in official.knots_x]
    report.kept_knots_per_class = kept
    report.dropped_nonfinite_knots = dropped

    if class_names is None:
        class_names = (
            CITYSCAPES_CLASSES
            if num_classes == len(CITYSCAPES_CLASSES)
            else [f"class{i}" for i in range(num_classes)]
        )
    try:
        model = PixOODModel(
            backbone,
            decoder,
            scorer,
            class_names=class_names,
            eval_labels=eval_labels,
            network_long_side=0,
            eval_scale_factor=eval_scale_factor,
            antialias=True,
        )
    except ValueError as exc:
        raise OfficialFormatError(str(exc)) from exc
    return model.eval(), report


@torch.no_grad()
def describe(model: PixOODModel) -> str:
    """One line about the converted model (classes, eval labels, sizes)."""
    names = [model.class_names[c] for c in model.eval_labels]
    return (
        f"{model.num_classes} classes, eval labels {model.eval_labels} ({', '.join(names)}), "
        f"network_long_side {model.network_long_side} (native), "
        f"eval_scale_factor {model.eval_scale_factor}"
    )
