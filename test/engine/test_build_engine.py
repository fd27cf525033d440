"""pixood-build-engine: builds the node's TensorRT engine ahead of time, or says in one line why
it cannot. (No GPU here: the build itself is exercised with a stand-in for the engine.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pixood_ros.engine import build
from pixood_ros.engine.providers import CPU, TENSORRT

MODEL = "checkpoints/pixood_demo.onnx"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pixood-build-engine: error: ")
    return err


def test_without_a_gpu_it_says_why_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(build, "nvidia_gpu_visible", lambda: False)
    monkeypatch.setattr(build.ort, "get_available_providers", lambda: [TENSORRT, CPU])
    assert build.main([MODEL, "--height", "256", "--width", "512"]) == 2
    assert "no NVIDIA GPU" in _one_line_error(capsys)


@pytest.mark.parametrize("argv", [["--height", "0", "--width", "4"], ["--width", "4"]])
def test_size_mistakes_are_one_line(capsys, argv):
    assert build.main([MODEL, *argv]) == 2
    _one_line_error(capsys)


def _fake_engine(monkeypatch, provider: str) -> dict:
    seen: dict = {}

    def segmenter(model, **kwargs):
        seen.update(kwargs, model=model)
        return SimpleNamespace(
            active_provider=provider, trt_cache_dir="/cache/key", warmup_seconds=1.5
        )

    monkeypatch.setattr(build, "tensorrt_problem", lambda: None)
    monkeypatch.setattr(build, "Segmenter", segmenter)
    return seen


def test_builds_the_engine_the_node_will_load(monkeypatch, capsys, tmp_path):
    seen = _fake_engine(monkeypatch, TENSORRT)
    argv = [MODEL, "--height", "720", "--width", "1280", "--trt-cache-dir", str(tmp_path)]
    assert build.main(argv) == 0
    assert seen == {
        "model": MODEL,
        "providers": ["tensorrt"],
        "trt_cache_dir": str(tmp_path),
        "warmup": True,
        "input_size": (720, 1280),
        "trt_fp16": True,
    }
    assert "1280x720 (fp16) ready in /cache/key" in capsys.readouterr().out


def test_a_fallback_to_another_provider_is_an_error(monkeypatch, capsys):
    _fake_engine(monkeypatch, CPU)
    assert build.main([MODEL, "--height", "8", "--width", "8", "--fp32"]) == 2
    assert "no engine was built" in _one_line_error(capsys)


def test_a_missing_model_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(build, "tensorrt_problem", lambda: None)
    assert build.main([str(tmp_path / "nope.onnx"), "--height", "8", "--width", "8"]) == 2
    assert "not found" in _one_line_error(capsys)
