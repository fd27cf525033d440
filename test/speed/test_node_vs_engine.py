"""`python -m pixood_ros.speed.node_vs_engine`: node and engine throughput from one run, and
user mistakes ending in one line with exit code 2."""

from __future__ import annotations

import json

import pytest
from model_fixtures import make_foreign_model, make_handmade_model

from pixood_ros.speed import node_vs_engine as bench


@pytest.mark.ros
@pytest.mark.slow
def test_bench_reports_node_and_engine_throughput(tmp_path, capsys):
    model = make_handmade_model(tmp_path / "m.onnx")
    out = tmp_path / "bench.json"
    code = bench.main(
        [str(model), "--width", "64", "--height", "48", "--duration", "0.7", "--threads", "1"]
        + ["--json", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["engine_fps"] > 0 and result["node_fps"] > 0
    assert result["ratio"] == pytest.approx(result["node_fps"] / result["engine_fps"])
    assert min(result["node"]["outputs_received"].values()) > 0
    assert len(result["rounds"]) == 3 and result["intra_op_threads"] == 1
    # closed loop: no frame waits for the model long enough to be replaced; the only drops are
    # results replaced before this tiny model's publisher (slower than its inference) took them
    assert result["node"]["dropped_in_node"] == result["node"]["results_dropped"]
    engine_cpu, node_cpu = result["engine"]["cpu_ms_per_frame"], result["node"]["cpu_ms_per_frame"]
    assert result["cpu_ratio"] == pytest.approx(engine_cpu / node_cpu)
    stages = result["node"]["stage_cpu_ms_per_frame"]
    assert set(stages) == {"inference", "publishing"} and min(stages.values()) > 0
    assert result["pipeline_ratio"] == pytest.approx(engine_cpu / max(stages.values()))
    # the node never outruns its own model
    assert result["node_fps"] <= result["engine_fps"] * 1.2


@pytest.mark.ros
@pytest.mark.slow
def test_bench_can_take_the_compressed_outputs(tmp_path, capsys):
    model = make_handmade_model(tmp_path / "m.onnx")
    size = ["--width", "64", "--height", "48", "--duration", "0.4", "--rounds", "1"]
    assert bench.main([str(model), *size, "--compressed", "--no-progress"]) == 0
    received = json.loads(capsys.readouterr().out)["node"]["outputs_received"]
    compressed = {"overlay/compressed", "anomaly_mask/compressed", "semantic/compressed"}
    assert set(received) == compressed | {"anomaly_score", "confidence"}
    assert min(received.values()) > 0


def test_bench_user_errors_exit_2(tmp_path, capsys):
    assert bench.main([str(tmp_path / "missing.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
    model = make_handmade_model(tmp_path / "m.onnx")
    for wrong in (["--duration", "0"], ["--width", "0"], ["--rate", "-1"], ["--rounds", "x"]):
        with pytest.raises(SystemExit) as info:
            bench.main([str(model), *wrong])
        assert info.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith(f"{bench.PROG}: error: ") and error.count("\n") == 1, error
    with pytest.raises(SystemExit) as info:
        bench.main(["--help"])
    assert info.value.code == 0


def test_bench_rejects_a_file_that_is_not_a_pixood_model_in_one_line(tmp_path, capsys):
    model = make_foreign_model(tmp_path / "foreign.onnx")
    assert bench.main([str(model), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{bench.PROG}: error: foreign.onnx: not a PixOOD model"), error
    assert error.count("\n") == 1
