"""PyTorch end-to-end module ▶ ONNX model file with dynamic H, W and the contract metadata.

Uses the dynamo exporter (`torch.onnx.export(..., dynamo=True)`): the legacy TorchScript exporter
cannot trace timm's antialiased bicubic position-embedding resize (docs/architecture.md §6).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch

from pixood_ros import durable
from pixood_ros.contract import MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT

from .attention import translation_table
from .fp16 import with_half_precision_backbone
from .metadata import model_metadata
from .parity import ParityResult, check_parity, default_tolerances

LOG = logging.getLogger("pixood_training.export")

INPUT_NAME = "image"
# The three contract outputs, then the optional one the unknown anomaly modes need.
OUTPUT_NAMES = (*MODEL_OUTPUTS, UNKNOWN_SCORE_OUTPUT)
DEFAULT_OPSET = 18  # antialiased Resize (in-graph preprocessing) needs opset 18
# Sample size for tracing: two different sizes, neither 0 nor 1, so torch.export keeps H and W
# symbolic and independent instead of specialising them.
TRACE_SIZE = (238, 322)
EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf cannot hold more than 2 GB in one file


class WithUnknownScore(torch.nn.Module):
    """What the exporter traces: the end-to-end module's ``forward_with_unknown`` (all four
    outputs of ``OUTPUT_NAMES``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.forward_with_unknown(image)


@dataclass
class ExportReport:
    """What `export_model` did: output path, metadata written, parity rows."""

    path: Path
    metadata: dict[str, str]
    parity: list[ParityResult] = field(default_factory=list)
    fp16: bool = False

    @property
    def parity_ok(self) -> bool:
        return all(row.passed for row in self.parity)


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    metadata: Mapping[str, str],
    opset: int = DEFAULT_OPSET,
    trace_size: tuple[int, int] = TRACE_SIZE,
    attention: str = "standard",
) -> onnx.ModelProto:
    """Export `model` (a PixOODModel: image uint8 [1,H,W,3] -> the four `OUTPUT_NAMES`) to
    `path` and return it; `attention` picks how attention is written (export/attention.py)."""
    model = WithUnknownScore(model.eval().cpu()).eval()
    sample = torch.zeros((1, *trace_size, 3), dtype=torch.uint8)
    height = torch.export.Dim("height", min=2, max=16384)
    width = torch.export.Dim("width", min=2, max=16384)
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            model,
            (sample,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=({1: height, 2: width},),
            opset_version=opset,
            external_data=False,
            verbose=False,
            custom_translation_table=translation_table(attention),
        )
    proto = program.model_proto
    name_dims(proto)
    onnx.helper.set_model_props(proto, dict(metadata))
    save_model(proto, path)
    return proto


def name_dims(proto: onnx.ModelProto) -> None:
    """Give the dynamic axes the names users see in Netron / ORT: 1 x H x W (x 3)."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index, label in ((1, "H"), (2, "W")):
            if len(dims) > index and not dims[index].HasField("dim_value"):
                dims[index].dim_param = label


def save_model(proto: onnx.ModelProto, path: str | Path) -> None:
    """Check and save, complete or absent (``pixood_ros.durable``); large models (ViT-L+) go to
    external data next to the file, written and flushed before the model file appears."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    large = proto.ByteSize() > EXTERNAL_DATA_BYTES
    if not large:
        onnx.checker.check_model(proto, full_check=True)
    with durable.replacing(path) as tmp:
        if large:
            data = path.with_name(path.name + ".data")
            data.unlink(missing_ok=True)  # onnx appends to an existing data file
            onnx.save_model(
                proto,
                str(tmp),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data.name,
            )
            durable.fsync_file(data)
        else:
            onnx.save_model(proto, str(tmp))
    if large:
        onnx.checker.check_model(str(path), full_check=True)


def export_model(
    model: torch.nn.Module,
    model_config: Mapping[str, Any],
    output: str | Path,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    check_sizes: list[tuple[int, int]] | None = None,
    seed: int = 0,
    progress: bool = False,
    providers: list[str] | None = None,
    attention: str = "standard",
) -> ExportReport:
    """Export (optionally with an fp16 backbone), then check parity against the fp32 module.

    The returned report says whether parity passed; the CLI turns a failure into exit 1.
    """
    output = Path(output)
    metadata = model_metadata(model_config, model)
    exported = with_half_precision_backbone(model) if fp16 else model
    export_onnx(exported, output, metadata, opset, attention=attention)
    report = ExportReport(path=output, metadata=metadata, fp16=fp16)
    if check_sizes:
        tolerances = default_tolerances(fp16)
        report.parity = check_parity(
            model,
            output,
            check_sizes,
            seed=seed,
            progress=progress,
            providers=providers,
            **tolerances,
        )
    return report
