"""pixood-export: a real (tiny) PixOOD checkpoint becomes an ONNX file that the runtime engine
loads, whose outputs match PyTorch on several sizes, and whose metadata is the checkpoint's."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from model_fixtures import export_tiny_model

from pixood_ros.anomaly_modes import ANOMALY_MODES
from pixood_ros.engine import Segmenter
from pixood_training.checkpoint import load_model, read_model_config
from pixood_training.export.cli import main as export_main
from pixood_training.export.metadata import config_hash
from pixood_training.export.parity import check_parity, parity_image

pytestmark = pytest.mark.slow  # each dynamo export of the tiny model takes several seconds


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    export_tiny_model(path)
    return path, path.with_name("tiny_ckpt")


def test_engine_reproduces_pytorch_and_reads_checkpoint_metadata(exported):
    path, ckpt_dir = exported
    model = load_model(ckpt_dir)
    config = read_model_config(ckpt_dir)
    segmenter = Segmenter(path, providers=["cpu"], warmup=False)
    assert segmenter.info.class_names == tuple(config["class_names"])
    assert segmenter.info.palette == tuple(tuple(c) for c in config["palette"])
    assert segmenter.info.eval_labels == tuple(config["eval_labels"])
    assert segmenter.info.network_long_side == config["network_long_side"] == 112
    assert segmenter.info.scorer == config["scorer"]["name"]
    assert segmenter.info.config_hash == config_hash(config)
    for index, (height, width) in enumerate([(60, 80), (97, 41)]):
        image = parity_image(height, width, seed=index)
        result = segmenter(image)
        with torch.no_grad():
            anomaly, semantic, confidence, unknown = (
                t[0].numpy() for t in model.forward_with_unknown(torch.from_numpy(image)[None])
            )
        assert result.anomaly_score.shape == (height, width)
        assert np.abs(result.anomaly_score - anomaly).max() <= 1e-3
        assert (result.semantic == semantic).mean() >= 0.999
        assert np.abs(result.confidence - confidence).max() <= 1e-3
        assert np.abs(result.unknown_score - unknown).max() <= 1e-3
        assert result.anomaly_score.min() >= 0.0 and result.anomaly_score.max() <= 1.0
    assert segmenter.info.anomaly_modes == ANOMALY_MODES  # the unknown modes too


def test_graph_has_dynamic_image_size_and_contract_dtypes(exported):
    proto = onnx.load(str(exported[0]))
    (image,) = proto.graph.input
    dims = image.type.tensor_type.shape.dim
    assert image.name == "image"
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in dims] == [1, "H", "W", 3]
    types = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    assert types == {
        "anomaly_score": onnx.TensorProto.FLOAT,
        "semantic": onnx.TensorProto.UINT8,
        "confidence": onnx.TensorProto.FLOAT,
        "unknown_score": onnx.TensorProto.FLOAT,
    }
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["pixood_format_version"] == "1"
    assert json.loads(meta["eval_labels"]) == [0, 1]


def test_parity_check_detects_a_model_that_differs(exported):
    """The check must be able to fail: compare the file with a differently seeded model."""
    path, ckpt_dir = exported
    other = load_model(ckpt_dir)
    with torch.no_grad():
        for parameter in other.decoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    rows = check_parity(other, path, [(40, 60)])
    assert not rows[0].passed


def test_cli_exports_fp16_with_parity_table_and_report(exported, tmp_path, capsys):
    _, ckpt_dir = exported
    output = tmp_path / "fp16.onnx"
    report = tmp_path / "parity.json"
    code = export_main(
        [str(ckpt_dir), "-o", str(output), "--fp16", "--check-sizes", "50x70", "33x91",
         "--report", str(report)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "parity ok" in printed and "50x70" in printed
    rows = json.loads(report.read_text())["parity"]
    assert [(r["height"], r["width"]) for r in rows] == [(50, 70), (33, 91)]
    assert all(r["passed"] and r["unknown_max_abs_diff"] <= r["max_anomaly_diff"] for r in rows)
    proto = onnx.load(str(output))
    initializer_types = {i.data_type for i in proto.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in initializer_types
    assert Segmenter(output, providers=["cpu"], warmup=False).info.scorer == "msp"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{missing}"], "checkpoint directory not found"),
        (["{file}"], "model.onnx is a file; pixood-export takes a checkpoint directory"),
        (["{empty}"], "checkpoint config not found"),
        (["{empty}", "--check-sizes", "12by4"], "HEIGHTxWIDTH"),
        (["{empty}", "--opset", "13"], "--opset must be at least 18"),
        (["{empty}", "--eval-scale-factor", "0"], "--eval-scale-factor: must be >= 1"),
        (["{empty}", "--eval-scale-factor", "2.5"], "--eval-scale-factor: not a whole number"),
        (["{empty}", "--network-long-side", "-14"], "--network-long-side: must be >= 0"),
    ],
)
def test_cli_user_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")  # a model file where a folder belongs
    places = {"missing": tmp_path / "absent", "empty": tmp_path / "empty"}
    argv = [a.format(file=tmp_path / "model.onnx", **places) for a in argv]
    try:
        code = export_main(argv)
    except SystemExit as exit_:  # argparse rejects malformed options itself
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_cli_output_has_no_third_party_info_lines(exported, tmp_path):
    """A fresh process (as users run it): the exporter's optimiser logs hundreds of INFO lines,
    which stay hidden unless --verbose."""
    import subprocess
    import sys

    _, ckpt_dir = exported
    output = tmp_path / "quiet.onnx"
    command = [sys.executable, "-m", "pixood_training.export.cli", str(ckpt_dir), "-o", str(output),
               "--skip-parity"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout + done.stderr
    assert "wrote" in printed and output.is_file()
    assert "INFO" not in printed, printed[:2000]


def _full_size_nodes(proto: onnx.ModelProto) -> list[str]:
    """Op types of the nodes that write a tensor with both image dimensions (H and W)."""
    shapes = {
        v.name: {d.dim_param for d in v.type.tensor_type.shape.dim}
        for v in [*proto.graph.value_info, *proto.graph.output]
    }
    full = {"H", "W"}, {"height", "width"}
    return [
        node.op_type
        for node in proto.graph.node
        if any(any(dims <= shapes.get(o, set()) for dims in full) for o in node.output)
    ]


def _assert_few_full_size_passes(proto: onnx.ModelProto, upsampling: str) -> None:
    """The full-size work is the input layout change and, per output, its upsampling and one
    elementwise pass: no channel reduction, split or concatenation of full-size maps."""
    nodes = [op for op in _full_size_nodes(proto) if op != "Squeeze"]  # a view, no pass
    assert nodes.count(upsampling) == 3, nodes  # two eval labels and unknown, one map each
    assert set(nodes) == {"Transpose", "Cast", upsampling, "Min", "Clip", "Gather"}, nodes
    assert len(nodes) <= 11, nodes  # Transpose, Cast, 3 upsamplings, Min, 2 Clips, 3 Gathers


def test_full_size_work_is_a_few_elementwise_passes(exported):
    _assert_few_full_size_passes(onnx.load(str(exported[0])), "MatMul")  # fixed network size


def test_cli_export_options_override_the_checkpoint(exported, tmp_path, capsys):
    path, ckpt_dir = exported
    output = tmp_path / "native_x2.onnx"
    argv = [str(ckpt_dir), "-o", str(output), "--eval-scale-factor", "2",
            "--network-long-side", "0", "--check-sizes", "40x60"]  # fmt: skip
    code = export_main(argv)
    assert code == 0, capsys.readouterr()
    proto = onnx.load(str(output))
    metadata = {p.key: p.value for p in proto.metadata_props}
    config = read_model_config(ckpt_dir)
    assert metadata["network_long_side"] == "0"
    assert metadata["config_hash"] == config_hash(
        config | {"eval_scale_factor": 2, "network_long_side": 0}
    )
    _assert_few_full_size_passes(proto, "Resize")  # the grid grows with the image
    image = parity_image(70, 98, seed=3)
    base = Segmenter(path, providers=["cpu"], warmup=False)(image)
    native = Segmenter(output, providers=["cpu"], warmup=False)(image)
    assert np.abs(base.anomaly_score - native.anomaly_score).max() > 1e-2
    model = load_model(ckpt_dir)
    model.eval_scale_factor, model.network_long_side = 2, 0
    with torch.no_grad():
        anomaly = model(torch.from_numpy(image)[None])[0][0].numpy()
    assert np.abs(native.anomaly_score - anomaly).max() <= 1e-3


def test_cli_network_size_the_model_cannot_take_is_one_line(exported, capsys):
    code = export_main([str(exported[1]), "--network-long-side", "100", "--skip-parity"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--network-long-side 100" in err and "multiple of 14" in err


def test_cli_fused_attention_keeps_parity(exported, tmp_path, capsys):
    """--attention ort: one ONNX Runtime MultiHeadAttention per backbone block, same outputs."""
    _, ckpt_dir = exported
    output = tmp_path / "mha.onnx"
    code = export_main([str(ckpt_dir), "-o", str(output), "--attention", "ort",
                        "--check-sizes", "50x70", "33x91"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "parity ok" in printed, printed
    proto = onnx.load(str(output))
    fused = [n for n in proto.graph.node if n.op_type == "MultiHeadAttention"]
    assert len(fused) == len(load_model(ckpt_dir).backbone.vit.blocks)
    assert {n.domain for n in fused} == {"com.microsoft"}
