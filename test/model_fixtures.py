"""Model files for tests: ONNX graphs that honour the model-file contract (docs/architecture.md §3).

`make_handmade_model` builds a tiny graph with onnx.helper only (no torch, milliseconds to build
and run), so node, bag and engine tests can check outputs against `handmade_expected` exactly.
Its outputs are simple, deterministic functions of the input image:

- anomaly_score = R / 255                       (float32, [0, 1])
- semantic      = (G // 8) mod num_classes      (uint8)
- confidence    = 1 - anomaly_score             (float32, [0, 1])
- unknown_score = B / 255                       (float32, only with `unknown_score=True`)

`make_foreign_model` writes a valid ONNX file that is *not* a PixOOD model (other I/O names),
for error-path tests. `export_tiny_model` exports a real, tiny randomly initialised PixOOD model
from PyTorch (needs the training extra).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from pixood_ros.cityscapes import CLASS_NAMES, PALETTE

CITYSCAPES_CLASSES = list(CLASS_NAMES)
CITYSCAPES_PALETTE = [list(colour) for colour in PALETTE]

# Opset and IR version that every onnxruntime >= 1.18 loads (robots lag behind desktops).
HANDMADE_OPSET = 17
HANDMADE_IR_VERSION = 9
GREEN_QUANTUM = 8


def handmade_metadata(
    class_names: list[str] | None = None,
    palette: list[list[int]] | None = None,
    eval_labels: Iterable[int] = (0, 1),
    network_long_side: int = 224,
    scorer: str = "pixood",
    config_hash: str = "handmade-0001",
    format_version: str = "1",
) -> dict[str, str]:
    """The metadata_props of a contract-conforming model, as strings (what ONNX stores)."""
    class_names = list(CITYSCAPES_CLASSES if class_names is None else class_names)
    palette = CITYSCAPES_PALETTE[: len(class_names)] if palette is None else palette
    return {
        "pixood_format_version": format_version,
        "class_names": json.dumps(class_names),
        "palette": json.dumps([list(map(int, c)) for c in palette]),
        "eval_labels": json.dumps([int(c) for c in eval_labels]),
        "network_long_side": str(int(network_long_side)),
        "scorer": scorer,
        "config_hash": config_hash,
    }


def make_handmade_model(
    path: str | Path,
    class_names: list[str] | None = None,
    palette: list[list[int]] | None = None,
    eval_labels: Iterable[int] = (0, 1),
    network_long_side: int = 224,
    scorer: str = "pixood",
    config_hash: str = "handmade-0001",
    format_version: str = "1",
    metadata_overrides: Mapping[str, str] | None = None,
    drop_metadata: Iterable[str] = (),
    unknown_score: bool = False,
) -> Path:
    """Write the handmade contract model to `path` and return the path.

    `metadata_overrides` replaces/adds metadata entries and `drop_metadata` removes some, so
    error paths (missing keys, unsupported format version) can be tested with the same graph.
    `unknown_score` adds the optional output the unknown anomaly modes read (B / 255).
    """
    num_classes = len(CITYSCAPES_CLASSES if class_names is None else class_names)
    dims = [1, "H", "W"]
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "H", "W", 3])
    outputs = [
        helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, dims),
        helper.make_tensor_value_info("semantic", TensorProto.UINT8, dims),
        helper.make_tensor_value_info("confidence", TensorProto.FLOAT, dims),
    ]

    def const(name: str, value, dtype) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, dtype, [len(value)], value)
        )

    def scalar(name: str, value, dtype) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, dtype, [], [value])
        )

    nodes = [
        const("channel_axis", [3], TensorProto.INT64),
        const("red_start", [0], TensorProto.INT64),
        const("green_start", [1], TensorProto.INT64),
        const("blue_start", [2], TensorProto.INT64),
        scalar("inv_255", 1 / 255, TensorProto.FLOAT),
        scalar("one", 1.0, TensorProto.FLOAT),
        scalar("quantum", GREEN_QUANTUM, TensorProto.INT32),
        scalar("num_classes", num_classes, TensorProto.INT32),
        # anomaly_score = R / 255
        helper.make_node("Slice", ["image", "red_start", "green_start", "channel_axis"], ["red"]),
        helper.make_node("Squeeze", ["red", "channel_axis"], ["red_hw"]),
        helper.make_node("Cast", ["red_hw"], ["red_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["red_f", "inv_255"], ["anomaly_score"]),
        # confidence = 1 - anomaly_score
        helper.make_node("Sub", ["one", "anomaly_score"], ["confidence"]),
        # semantic = (G // 8) mod num_classes
        helper.make_node(
            "Slice", ["image", "green_start", "blue_start", "channel_axis"], ["green"]
        ),
        helper.make_node("Squeeze", ["green", "channel_axis"], ["green_hw"]),
        helper.make_node("Cast", ["green_hw"], ["green_i"], to=TensorProto.INT32),
        helper.make_node("Div", ["green_i", "quantum"], ["green_q"]),
        helper.make_node("Mod", ["green_q", "num_classes"], ["class_id"]),
        helper.make_node("Cast", ["class_id"], ["semantic"], to=TensorProto.UINT8),
    ]
    if unknown_score:
        outputs.append(helper.make_tensor_value_info("unknown_score", TensorProto.FLOAT, dims))
        nodes += [
            const("blue_end", [3], TensorProto.INT64),
            helper.make_node("Slice", ["image", "blue_start", "blue_end", "channel_axis"], ["b"]),
            helper.make_node("Squeeze", ["b", "channel_axis"], ["blue_hw"]),
            helper.make_node("Cast", ["blue_hw"], ["blue_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["blue_f", "inv_255"], ["unknown_score"]),
        ]
    graph = helper.make_graph(nodes, "pixood_handmade", [image], outputs)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", HANDMADE_OPSET)],
        producer_name="pixood_ros test fixtures",
    )
    model.ir_version = HANDMADE_IR_VERSION
    metadata = handmade_metadata(
        class_names, palette, eval_labels, network_long_side, scorer, config_hash, format_version
    )
    metadata.update(metadata_overrides or {})
    for key in drop_metadata:
        metadata.pop(key, None)
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def handmade_expected(
    rgb: np.ndarray, num_classes: int = len(CITYSCAPES_CLASSES)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anomaly_score, semantic, confidence) the handmade model gives for an HxWx3 RGB image."""
    anomaly = rgb[..., 0].astype(np.float32) * np.float32(1 / 255)
    semantic = ((rgb[..., 1].astype(np.int32) // GREEN_QUANTUM) % num_classes).astype(np.uint8)
    return anomaly, semantic, (np.float32(1.0) - anomaly).astype(np.float32)


def make_foreign_model(path: str | Path) -> Path:
    """A valid ONNX file with a classifier-like interface (float `input` -> `logits`)."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("ReduceMean", ["input"], ["logits"], axes=[2, 3], keepdims=0)]
    model = helper.make_model(
        helper.make_graph(nodes, "foreign", [inp], [out]),
        opset_imports=[helper.make_opsetid("", HANDMADE_OPSET)],
    )
    model.ir_version = HANDMADE_IR_VERSION
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def export_tiny_model(
    path: str | Path,
    network_long_side: int = 112,
    seed: int = 0,
    fp16: bool = False,
    ckpt_dir: str | Path | None = None,
    check_sizes: list[tuple[int, int]] | None = None,
) -> Path:
    """A real PixOOD model file: tiny random PixOODModel ▶ checkpoint dir ▶ pixood-export code.

    Goes through save_model/load_model so the checkpoint round trip is part of what the file
    proves. The checkpoint directory (default: `<path stem>_ckpt` next to `path`) is kept so tests
    can compare with PyTorch. Takes several seconds (dynamo export): build it once per module.
    """
    from pixood_training.checkpoint import load_model, read_model_config, save_model
    from pixood_training.export.onnx_export import export_model
    from pixood_training.model import tiny_model

    path = Path(path)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else path.with_name(path.stem + "_ckpt")
    save_model(tiny_model(seed=seed, network_long_side=network_long_side), ckpt_dir)
    report = export_model(
        load_model(ckpt_dir),
        read_model_config(ckpt_dir),
        path,
        fp16=fp16,
        check_sizes=check_sizes,
        seed=seed,
    )
    if check_sizes and not report.parity_ok:
        raise AssertionError(f"tiny model export failed parity: {report.parity}")
    return path
