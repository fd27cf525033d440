"""The end-to-end PixOOD module: uint8 image in, anomaly / semantic / confidence maps out.

This one module is what the ONNX export traces (docs/architecture.md §3), so preprocessing,
backbone, decoder, scorer and the upsampling back to the input size all live in ``forward``. The
scores are combined the same way for every scorer (scorers/base.py):

    semantic   = argmax_c logits                 nearest-upsampled (official ``pred_y``)
    confidence = S_semantic                      nearest-upsampled (official ``pred_score``)
    anomaly    = 1 - max_{c in eval_labels} S_c   S bilinearly upsampled, align_corners=False
    unknown    = 1 - max_{all c} S_c              max on the patch grid, then bilinearly upsampled

``forward`` gives the first three (the model-file contract); ``forward_with_unknown`` adds the
fourth, the optional ``unknown_score`` output the exporter writes (pixood_ros.anomaly_modes: "no
known class explains the pixel"). It scores every class once and takes the other three from
those scores, so they are the same values as ``forward``'s.

Everything is computed on the scoring grid; only the final maps reach input size, each in as
few full-size passes as possible (``combine``, models/upsample.py): the eval-label maps and the
unknown map are upsampled one by one (as 1 - S, the same values to float rounding), the eval-label
maximum is an elementwise minimum of those, semantic and confidence are gathered with exact integer
nearest indices. Upsampling all 19 maps to full resolution would dominate CPU time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixood_ros.cityscapes import CLASS_NAMES, PALETTE

from .models import upsample
from .models.backbone import DinoV2Backbone
from .models.decoder import MLPDecoder
from .models.preprocess import PATCH_SIZE, normalize, preprocess_image
from .scorers.base import Scorer

# The one Cityscapes label space of the project (names and colours in train-id order).
CITYSCAPES_CLASSES = CLASS_NAMES
CITYSCAPES_PALETTE = PALETTE
DEFAULT_EVAL_LABELS = (0, 1)  # road + sidewalk ("road obstacle" mode of the official code)


class PixOODModel(nn.Module):
    """uint8 RGB [1,H,W,3] -> (anomaly f32 [1,H,W], semantic u8 [1,H,W], confidence f32 [1,H,W])."""

    grid_stride = (
        PATCH_SIZE  # input pixels per logit-grid cell (a family with finer logits says so)
    )

    def __init__(
        self,
        backbone: DinoV2Backbone,
        decoder: MLPDecoder,
        scorer: Scorer,
        class_names: Sequence[str] = CITYSCAPES_CLASSES,
        palette: Sequence[Sequence[int]] | None = None,
        eval_labels: Sequence[int] | None = DEFAULT_EVAL_LABELS,
        network_long_side: int = 0,
        eval_scale_factor: int = 1,
        antialias: bool = True,
    ):
        super().__init__()
        num_classes = decoder.num_classes
        if decoder.in_channels != backbone.out_channels:
            raise ValueError(
                f"decoder expects {decoder.in_channels} channels, backbone gives "
                f"{backbone.out_channels}"
            )
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        if palette is None:
            palette = (
                CITYSCAPES_PALETTE
                if num_classes == len(CITYSCAPES_PALETTE)
                else [[(37 * i) % 256, (97 * i) % 256, (173 * i) % 256] for i in range(num_classes)]
            )
        if len(palette) != num_classes:
            raise ValueError(f"{len(palette)} palette colours for {num_classes} classes")
        eval_labels = list(range(num_classes)) if not eval_labels else sorted(set(eval_labels))
        if any(not 0 <= c < num_classes for c in eval_labels):
            raise ValueError(f"eval_labels {eval_labels} out of range 0..{num_classes - 1}")
        if int(eval_scale_factor) != eval_scale_factor or eval_scale_factor < 1:
            raise ValueError(f"eval_scale_factor must be a positive integer: {eval_scale_factor}")
        self.backbone = backbone
        self.decoder = decoder
        self.scorer = scorer
        self.class_names = [str(n) for n in class_names]
        self.palette = [[int(v) for v in colour] for colour in palette]
        self.eval_labels = [int(c) for c in eval_labels]
        self.network_long_side = int(network_long_side)
        self.eval_scale_factor = int(eval_scale_factor)
        self.antialias = bool(antialias)
        self.register_buffer(
            "eval_index", torch.tensor(self.eval_labels, dtype=torch.long), persistent=False
        )

    @property
    def num_classes(self) -> int:
        return self.decoder.num_classes

    @property
    def matrix_upsampling(self) -> bool:
        """Bilinear upsampling by matrix products: chosen when the network size is fixed and
        the scoring grid is therefore known to stay a few dozen rows high
        (models/upsample.py: faster there, slower on large grids; same values)."""
        rows = (self.network_long_side // self.grid_stride) * self.eval_scale_factor
        return 0 < rows <= upsample.MATRIX_MAX_GRID_ROWS

    # -- training helpers -------------------------------------------------------------------
    def features_and_logits(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float image [B,3,h,w] -> (features [B,n*D,h/14,w/14], logits [B,C,..])."""
        features = self.backbone(image)
        return features, self.decoder(features)

    def last_block(self, features: torch.Tensor) -> torch.Tensor:
        """The normed last-block features ``e`` used by the prototype / k-means scorers."""
        return features[:, -self.backbone.embed_dim :]

    def normalize(self, image01: torch.Tensor) -> torch.Tensor:
        """float [B,3,h,w] in [0,1] (already at network size) -> backbone input."""
        return normalize(image01)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [B,H,W,3] -> normalised float at the network size (as in ``forward``)."""
        return preprocess_image(image, self.network_long_side, self.antialias)

    def patch_logits_and_features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised image [B,3,h,w] -> (logits, last-block features ``e``) on the scoring grid
        (patch grid times ``eval_scale_factor``)."""
        features, logits = self.features_and_logits(image)
        e = self.last_block(features)
        if self.eval_scale_factor != 1:
            factor = self.eval_scale_factor
            size = (logits.shape[2] * factor, logits.shape[3] * factor)
            e = F.interpolate(e, size=size, mode="bilinear", align_corners=False)
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits, e

    def patch_scores(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised image [B,3,h,w] -> (logits, class scores S), both [B,C,s*h/14,s*w/14]."""
        logits, e = self.patch_logits_and_features(image)
        return logits, self.scorer.class_scores(e, logits)

    def needed_classes(self, logits: torch.Tensor) -> torch.Tensor:
        """[B,1+E,h,w] class ids whose scores ``forward`` uses: the semantic (argmax) class, then
        the E eval labels. Scoring only these is exact and skips the other classes' work."""
        semantic = logits.argmax(dim=1, keepdim=True)
        b, _, h, w = semantic.shape
        eval_classes = self.eval_index.view(1, -1, 1, 1).expand(b, -1, h, w)
        return torch.cat([semantic, eval_classes], dim=1)

    # -- inference ---------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        height, width = image.shape[1], image.shape[2]
        logits, e = self.patch_logits_and_features(self.preprocess(image))
        classes = self.needed_classes(logits)
        scores = self.scorer.scores_at(e, logits, classes)
        return self.combine(classes, scores, height, width)

    def forward_with_unknown(
        self, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward``'s three outputs plus ``unknown`` = 1 - max over all classes of S (f32
        [1,H,W]): what the exported model file carries (training/export)."""
        height, width = image.shape[1], image.shape[2]
        logits, e = self.patch_logits_and_features(self.preprocess(image))
        all_scores = self.scorer.class_scores(e, logits)
        classes = self.needed_classes(logits)
        top = all_scores.amax(dim=1, keepdim=True)
        return self.combine(classes, all_scores.gather(1, classes), height, width, top)

    def combine(
        self,
        classes: torch.Tensor,
        scores: torch.Tensor,
        height: Any,
        width: Any,
        top: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """(``needed_classes``, their scores) on the patch grid -> the three full-size outputs,
        plus ``unknown`` when ``top`` (max over all classes of S, [B,1,h,w]) is given.

        Everything that can be is done on the patch grid; at full size each output is written by
        as few passes as possible: each bilinear map (1 - S of an eval label, 1 - top) upsampled
        on its own (one fused upsampling would need a channel split, a full-size copy, after
        it), an elementwise minimum over the eval labels (not a channel reduction, which ONNX
        Runtime runs far slower), one clamp; semantic (uint8) and confidence (already clamped)
        by exact integer-index gathers. 1 - S is upsampled rather than S: the same values up to
        float rounding (bilinear weights sum to one), with the subtraction on the patch grid.
        """
        num_eval = scores.shape[1] - 1
        maps = [1.0 - scores[:, k] for k in range(1, num_eval + 1)]
        if top is not None:
            maps.append(1.0 - top[:, 0])
        full = upsample.bilinear(maps, height, width, self.matrix_upsampling)
        anomaly = full[0]
        for eval_map in full[1:num_eval]:
            anomaly = torch.minimum(anomaly, eval_map)
        outputs = (
            anomaly.clamp(0.0, 1.0),
            upsample.nearest(classes[:, 0].to(torch.uint8), height, width),
            upsample.nearest(scores[:, 0].clamp(0.0, 1.0), height, width),
        )
        if top is None:
            return outputs
        return (*outputs, full[num_eval].clamp(0.0, 1.0))

    def get_config(self) -> dict[str, Any]:
        """JSON-able description (model_config.json, docs/architecture.md §7.2)."""
        return {
            "backbone": self.backbone.config.to_dict(),
            "decoder": self.decoder.get_config(),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "eval_labels": list(self.eval_labels),
            "network_long_side": self.network_long_side,
            "eval_scale_factor": self.eval_scale_factor,
            "antialias": self.antialias,
            "scorer": self.scorer.get_config(),
        }


def build_pixood_model(config: dict[str, Any]) -> PixOODModel:
    """Module with the structure described by ``config`` (``get_config`` output), random weights.

    Fill it with ``load_state_dict`` (checkpoint.load_model does) or train it. Checkpoints of
    either family are built through ``families.build_model``.
    """
    from .models.backbone import build_backbone
    from .scorers import build_scorer

    backbone = build_backbone(config["backbone"])
    decoder = MLPDecoder.from_config(config["decoder"])
    return PixOODModel(
        backbone,
        decoder,
        build_scorer(config["scorer"]),
        class_names=config["class_names"],
        palette=config.get("palette"),
        eval_labels=config.get("eval_labels", DEFAULT_EVAL_LABELS),
        network_long_side=int(config.get("network_long_side", 0)),
        eval_scale_factor=int(config.get("eval_scale_factor", 1)),
        antialias=bool(config.get("antialias", True)),
    )


def tiny_model(
    scorer: Scorer | None = None,
    num_classes: int = 19,
    seed: int = 0,
    registers: bool = False,
    **options: Any,
) -> PixOODModel:
    """A randomly initialised few-kB PixOOD model for tests and fixtures (same code path)."""
    from .models.backbone import DinoV2Backbone, tiny_backbone_config
    from .scorers.baselines import MSPScorer

    torch.manual_seed(seed)
    backbone = DinoV2Backbone(tiny_backbone_config(registers=registers))
    decoder = MLPDecoder(backbone.out_channels, num_classes, hidden_channels=16)
    names = CITYSCAPES_CLASSES if num_classes == 19 else [f"class{i}" for i in range(num_classes)]
    model = PixOODModel(backbone, decoder, scorer or MSPScorer(), class_names=names, **options)
    return model.eval()
