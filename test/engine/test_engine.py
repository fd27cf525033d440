"""Runtime engine: a contract-conforming model runs on CPU with exact outputs, and every kind of
wrong model file or wrong image fails with a ModelError that says what is wrong."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from model_fixtures import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    handmade_expected,
    make_foreign_model,
    make_handmade_model,
)

from pixood_ros.anomaly_modes import ANOMALY_MODES
from pixood_ros.cli import UserError
from pixood_ros.engine import InputError, ModelError, SegmentationResult, Segmenter
from pixood_ros.engine.providers import (
    CPU,
    CUDA,
    TENSORRT,
    canonical_provider,
    nvidia_gpu_visible,
    resolve_providers,
    trt_cache_key,
)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    return make_handmade_model(tmp_path_factory.mktemp("models") / "handmade.onnx")


@pytest.fixture(scope="module")
def segmenter(handmade):
    return Segmenter(handmade, providers=["cpu"], warmup=True, input_size=(12, 16))


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_outputs_match_the_handmade_graph_at_input_resolution(segmenter):
    for height, width in [(12, 16), (7, 33), (1, 1)]:
        image = random_image(height, width, seed=height)
        result = segmenter(image)
        anomaly, semantic, confidence = handmade_expected(image)
        assert result.anomaly_score.dtype == np.float32
        assert result.semantic.dtype == np.uint8
        assert result.confidence.dtype == np.float32
        assert result.anomaly_score.shape == (height, width)
        np.testing.assert_array_equal(result.anomaly_score, anomaly)
        np.testing.assert_array_equal(result.semantic, semantic)
        np.testing.assert_array_equal(result.confidence, confidence)


def test_metadata_is_parsed_and_provider_reported(segmenter):
    info = segmenter.info
    assert info.class_names == tuple(CITYSCAPES_CLASSES)
    assert info.num_classes == 19
    assert info.palette[0] == tuple(CITYSCAPES_PALETTE[0])
    assert info.eval_labels == (0, 1)
    assert info.scorer == "pixood"
    assert info.network_long_side == 224
    assert info.format_version == "1"
    assert info.config_hash == "handmade-0001"
    assert segmenter.active_provider == CPU
    assert segmenter.warmup_seconds is not None
    assert info.anomaly_modes == ("surface", "eval_labels")  # no unknown_score output


def test_optional_unknown_score_output_is_read_when_the_model_has_it(tmp_path):
    path = make_handmade_model(tmp_path / "unknown.onnx", unknown_score=True)
    segmenter = Segmenter(path, providers=["cpu"], warmup=False)
    assert segmenter.info.anomaly_modes == ANOMALY_MODES
    image = random_image(9, 13, seed=5)
    expected_unknown = image[..., 2].astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(segmenter(image).unknown_score, expected_unknown)
    out = SegmentationResult.empty(9, 13, unknown_score=True)
    segmenter(image, out=out)
    np.testing.assert_array_equal(out.unknown_score, expected_unknown)
    np.testing.assert_array_equal(out.anomaly_score, handmade_expected(image)[0])
    plain = segmenter(image, out=SegmentationResult.empty(9, 13))  # no buffer: not read
    assert plain.unknown_score is None


def test_non_contiguous_views_and_preallocated_outputs(segmenter):
    image = random_image(10, 14, seed=3)
    bgr_view = image[..., ::-1]  # what a BGR camera driver hands over after a channel flip
    expected = handmade_expected(np.ascontiguousarray(bgr_view))
    out = SegmentationResult.empty(10, 14)
    for _ in range(2):  # buffers are reused, not reallocated
        result = segmenter(bgr_view, out=out)
        assert result is out
        np.testing.assert_array_equal(out.anomaly_score, expected[0])
        np.testing.assert_array_equal(out.semantic, expected[1])
        np.testing.assert_array_equal(out.confidence, expected[2])
    with pytest.raises(InputError, match="output buffer"):
        segmenter(image, out=SegmentationResult.empty(5, 5))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), "HxWx3"),
        (np.zeros((8, 8, 4), np.uint8), "HxWx3"),
        (np.zeros((1, 8, 8, 3), np.uint8), "HxWx3"),
        (np.zeros((0, 8, 3), np.uint8), "non-empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_wrong_images_raise_a_clear_input_error(segmenter, bad, message):
    with pytest.raises(InputError, match=message) as caught:
        segmenter(bad)
    assert isinstance(caught.value, ModelError) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        Segmenter(tmp_path / "absent.onnx", providers=["cpu"])


def test_corrupt_bytes_and_other_file_types(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="corrupt.onnx: cannot load as an ONNX model"):
        Segmenter(corrupt, providers=["cpu"])
    with pytest.raises(ModelError, match="not a file"):
        Segmenter(tmp_path, providers=["cpu"])


def test_truncated_model_file(tmp_path, handmade):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(handmade.read_bytes()[:200])
    with pytest.raises(ModelError, match="truncated.onnx"):
        Segmenter(truncated, providers=["cpu"])


def test_foreign_onnx_model_is_rejected_naming_its_interface(tmp_path):
    foreign = make_foreign_model(tmp_path / "classifier.onnx")
    with pytest.raises(ModelError, match="not a PixOOD model") as caught:
        Segmenter(foreign, providers=["cpu"])
    assert "input: tensor(float) [1, 3, 8, 8]" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_metadata": ["palette", "scorer"]}, "metadata lacks palette, scorer"),
        ({"format_version": "2"}, "format version '2' is not supported"),
        ({"metadata_overrides": {"class_names": "[road"}}, "'class_names' is not valid JSON"),
        ({"metadata_overrides": {"palette": "[[1, 2]]"}}, "'palette' must be"),
        ({"eval_labels": [0, 42]}, "'eval_labels' must be"),
        ({"network_long_side": -14}, "'network_long_side' must be an integer >= 0"),
        ({"metadata_overrides": {"network_long_side": "big"}}, "'network_long_side' must be"),
    ],
)
def test_bad_metadata_is_rejected(tmp_path, kwargs, message):
    path = make_handmade_model(tmp_path / "bad_meta.onnx", **kwargs)
    with pytest.raises(ModelError, match=message) as caught:
        Segmenter(path, providers=["cpu"], warmup=False)
    assert str(caught.value).startswith("bad_meta.onnx: ")


def test_concurrent_calls_from_several_threads_give_correct_results(handmade):
    segmenter = Segmenter(handmade, providers=["cpu"], warmup=False)
    images = [random_image(9 + i, 11 + i, seed=i) for i in range(4)]
    errors: list[str] = []

    def worker(index: int) -> None:
        image = images[index]
        expected = handmade_expected(image)
        out = SegmentationResult.empty(*image.shape[:2])
        for step in range(25):
            result = segmenter(image, out=out if step % 2 else None)
            if not np.array_equal(result.semantic, expected[1]) or not np.array_equal(
                result.anomaly_score, expected[0]
            ):
                errors.append(f"thread {index} step {step}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_provider_names_and_order():
    assert canonical_provider("TensorRT") == TENSORRT
    assert canonical_provider("cuda") == CUDA
    assert canonical_provider("CPUExecutionProvider") == CPU
    with pytest.raises(ModelError, match="unknown execution provider 'gpu0'"):
        canonical_provider("gpu0")
    everything = [CPU, CUDA, TENSORRT]
    gpu = {"gpu_visible": True, "trt_found": True}
    assert resolve_providers(None, everything, **gpu) == [TENSORRT, CUDA, CPU]
    assert resolve_providers(None, [CPU], **gpu) == [CPU]
    # onnxruntime-gpu lists the GPU providers on machines that cannot use them
    assert resolve_providers(None, everything, gpu_visible=False) == [CPU]
    assert resolve_providers(None, everything, gpu_visible=True, trt_found=False) == [CUDA, CPU]
    assert resolve_providers(["cpu", "cuda"], everything, **gpu) == [CPU, CUDA]  # user order
    assert resolve_providers(["tensorrt", "cpu"], [CUDA, CPU], **gpu) == [CPU]  # missing: skipped
    assert resolve_providers(["tensorrt", "cuda", "cpu"], everything, gpu_visible=False) == [CPU]
    with pytest.raises(ModelError, match="none of the requested execution providers"):
        resolve_providers(["tensorrt"], [CPU])


@pytest.mark.parametrize(
    "device",
    ["nvidiactl", "nvidia0", "nvhost-ctrl", "nvhost-ctrl-gpu", "nvgpu/igpu0", "dxg"],
    ids=["desktop", "desktop-gpu0", "jetson", "jetson-gpu", "jetson-nvgpu", "wsl"],
)
def test_gpu_probe_knows_desktop_jetson_and_wsl_device_files(tmp_path, device):
    assert not nvidia_gpu_visible(tmp_path, platform="linux")
    (tmp_path / "dev" / "null").parent.mkdir()
    (tmp_path / "dev" / "null").touch()
    (tmp_path / "dev" / "nvme0").touch()  # not a GPU despite the prefix
    assert not nvidia_gpu_visible(tmp_path, platform="linux")
    path = tmp_path / "dev" / device
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    assert nvidia_gpu_visible(tmp_path, platform="linux")


def test_gpu_probe_leaves_the_choice_to_onnxruntime_off_linux(tmp_path):
    assert nvidia_gpu_visible(tmp_path, platform="win32")


def test_model_errors_are_user_errors_and_runtime_errors(tmp_path):
    with pytest.raises(UserError, match="model file not found"):
        Segmenter(tmp_path / "missing.onnx")
    assert issubclass(ModelError, RuntimeError)
    assert issubclass(InputError, UserError) and issubclass(InputError, ValueError)


def test_trt_cache_key_changes_with_everything_an_engine_depends_on():
    base = trt_cache_key("ab" * 32, (480, 640), "1.20.0", "10.3.0", True)
    variants = [
        trt_cache_key("cd" * 32, (480, 640), "1.20.0", "10.3.0", True),
        trt_cache_key("ab" * 32, (720, 1280), "1.20.0", "10.3.0", True),
        trt_cache_key("ab" * 32, (480, 640), "1.21.0", "10.3.0", True),
        trt_cache_key("ab" * 32, (480, 640), "1.20.0", "10.4.0", True),
        trt_cache_key("ab" * 32, (480, 640), "1.20.0", "10.3.0", False),
    ]
    assert len({base, *variants}) == 6
    assert "/" not in base


def test_unavailable_provider_request_fails_clearly(handmade):
    with pytest.raises(ModelError, match="none of the requested execution providers"):
        Segmenter(handmade, providers=["OpenVINOExecutionProvider"], warmup=False)
