"""End-to-end PixOOD module: output contract at odd sizes, score combination, eval labels,
checkpoint round trip and errors, and ONNX export with dynamic H, W (tiny random models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_fixtures import random_image as _image
from torch_fixtures import tiny_pixood_model as _tiny_pixood_model

from pixood_training.checkpoint import CheckpointError, load_model, save_model
from pixood_training.model import tiny_model
from pixood_training.scorers import KMeansScorer, MaxLogitScorer


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


@pytest.mark.parametrize("size", [(37, 53), (100, 180), (200, 90), (14, 14)])
def test_outputs_match_contract_at_odd_sizes(model, size):
    with torch.no_grad():
        anomaly, semantic, confidence = model(_image(*size))
    assert anomaly.shape == semantic.shape == confidence.shape == (1, *size)
    assert anomaly.dtype == confidence.dtype == torch.float32 and semantic.dtype == torch.uint8
    for score in (anomaly, confidence):
        assert torch.isfinite(score).all() and score.min() >= 0 and score.max() <= 1
    assert int(semantic.max()) < 19


def _reference(model, image, eval_labels):
    """The combination rule of scorers/base.py written out with PyTorch's own resize ops."""
    h, w = image.shape[1:3]
    logits, scores = model.patch_scores(model.preprocess(image))
    sem = logits.argmax(1, keepdim=True)
    anomaly = 1 - F.interpolate(scores[:, eval_labels], size=(h, w), mode="bilinear").amax(1)
    semantic = F.interpolate(sem.float(), size=(h, w), mode="nearest")[:, 0]
    confidence = F.interpolate(scores.gather(1, sem), size=(h, w), mode="nearest")[:, 0]
    return anomaly, semantic.to(torch.uint8), confidence


@pytest.mark.parametrize("eval_labels", [[0, 1], [5], list(range(19))])
@pytest.mark.parametrize("size", [(37, 53), (100, 180)])
def test_combination_and_eval_labels(eval_labels, size):
    model = tiny_model(seed=0, eval_labels=eval_labels)
    image = _image(*size, seed=1)
    with torch.no_grad():
        outputs = model(image)
        expected = _reference(model, image, eval_labels)
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("eval_labels", [(0, 1), (3,)])
def test_pixood_forward_scoring_needed_classes_equals_all_class_reference(eval_labels):
    model = _tiny_pixood_model(eval_labels)
    image = _image(61, 97, seed=9)
    with torch.no_grad():
        outputs = model(image)
        expected = _reference(model, image, list(eval_labels))
    assert expected[2].std() > 1e-3  # non-trivial confidence map
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_eval_labels_change_the_anomaly_map():
    image = _image(56, 70, seed=2)
    with torch.no_grad():
        road = tiny_model(seed=0, eval_labels=[0])(image)[0]
        everything = tiny_model(seed=0, eval_labels=[])(image)[0]
    assert (everything <= road + 1e-6).all()  # more classes can only lower the anomaly
    assert (road - everything).max() > 1e-3


def test_eval_scale_factor_scores_at_finer_grid():
    model = tiny_model(seed=0, eval_scale_factor=3)
    image = _image(42, 70)
    with torch.no_grad():
        logits, scores = model.patch_scores(model.preprocess(image))
        anomaly, semantic, _ = model(image)
    assert logits.shape[2:] == scores.shape[2:] == (9, 15)
    assert anomaly.shape == semantic.shape == (1, 42, 70)


def test_network_long_side_option():
    model = tiny_model(seed=0, network_long_side=56)
    assert model.preprocess(_image(100, 180)).shape == (1, 3, 28, 56)


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="eval_labels"):
        tiny_model(eval_labels=[19])
    with pytest.raises(ValueError, match="eval_scale_factor"):
        tiny_model(eval_scale_factor=0)


def test_training_helpers(model):
    image = model.preprocess(_image(42, 56))
    features, logits = model.features_and_logits(image)
    assert features.shape == (1, 128, 3, 4) and logits.shape == (1, 19, 3, 4)
    assert model.last_block(features).shape == (1, 32, 3, 4)
    logits.sum().backward()  # the decoder trains, the backbone is frozen
    assert model.decoder[0].weight.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())
    model.zero_grad()


def _fitted_kmeans_model():
    base = tiny_model(seed=3)
    with torch.no_grad():
        features, logits = base.features_and_logits(base.preprocess(_image(70, 98, seed=4)))
    e = base.last_block(features).permute(0, 2, 3, 1).reshape(-1, 32)
    labels = logits.argmax(1).reshape(-1)
    scorer = KMeansScorer.fit(e, None, labels, num_classes=19, k=3)
    base.scorer = scorer
    return base


@pytest.mark.parametrize("kind", ["msp", "maxlogit", "kmeans"])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, kind):
    if kind == "kmeans":
        model = _fitted_kmeans_model()
    elif kind == "maxlogit":
        model = tiny_model(seed=5, scorer=MaxLogitScorer(center=1.5, scale=0.7), eval_labels=[2])
    else:
        model = tiny_model(seed=5, network_long_side=42, eval_scale_factor=2)
    save_model(model, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "model_config.json").read_text())
    assert config["scorer"]["name"] == kind and len(config["class_names"]) == 19
    assert config["backbone"]["blocks"] == [0, 1, 2, 3]
    loaded = load_model(tmp_path / "ckpt")
    image = _image(37, 53, seed=6)
    with torch.no_grad():
        for got, want in zip(loaded(image), model(image), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert loaded.eval_labels == model.eval_labels
    assert not any(p.requires_grad for p in loaded.backbone.parameters())


def test_checkpoint_errors_name_the_file(tmp_path, model):
    with pytest.raises(CheckpointError, match="model_config.json"):
        load_model(tmp_path / "empty")
    ckpt = save_model(model, tmp_path / "ckpt")
    (ckpt / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(ckpt)
    save_model(model, ckpt)
    config = json.loads((ckpt / "model_config.json").read_text())
    config["decoder"]["hidden_channels"] = 8
    (ckpt / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model.safetensors does not match.*decoder\.0"):
        load_model(ckpt)
    (ckpt / "model_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot parse .*model_config.json"):
        load_model(ckpt)
    (ckpt / "model.safetensors").unlink()
    save_model(model, ckpt)
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights not found: .*model.safetensors"):
        load_model(ckpt)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["msp", "kmeans_registers"])
def test_onnx_export_with_dynamic_size_matches_pytorch(tmp_path, variant):
    """Official pos-embed interpolation + MSP, and a register ViT (antialiased pos-embed resize)
    with the k-means scorer and eval_scale_factor 2."""
    import onnxruntime as ort

    if variant == "msp":
        model = tiny_model(seed=7)
    else:
        model = _fitted_kmeans_model()
        model = tiny_model(seed=7, registers=True, scorer=model.scorer, eval_scale_factor=2)
    path = tmp_path / "tiny.onnx"
    height = torch.export.Dim("height", min=14, max=4096)
    width = torch.export.Dim("width", min=14, max=4096)
    torch.onnx.export(
        model,
        (_image(100, 180),),
        str(path),
        dynamo=True,
        input_names=["image"],
        output_names=["anomaly_score", "semantic", "confidence"],
        dynamic_shapes={"image": {1: height, 2: width}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["anomaly_score", "semantic", "confidence"]
    for size in [(37, 53), (140, 70), (70, 70)]:  # 70x70 = the native 5x5 pos-embed grid
        image = _image(*size, seed=8)
        with torch.no_grad():
            expected = [t.numpy() for t in model(image)]
        got = session.run(None, {"image": image.numpy()})
        for name, a, b in zip(("anomaly", "semantic", "confidence"), got, expected, strict=True):
            assert a.shape == b.shape == (1, *size) and a.dtype == b.dtype, name
            assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= 1e-4, name


@pytest.mark.parametrize("scorer", ["pixood", "msp"])
def test_forward_with_unknown_adds_one_minus_max_over_all_classes(scorer):
    """The three contract outputs are forward's; the fourth is 1 - max over ALL classes."""
    model = _tiny_pixood_model((0, 1)) if scorer == "pixood" else tiny_model(seed=0)
    image = _image(45, 67, seed=4)
    with torch.no_grad():
        expected = model(image)
        *outputs, unknown = model.forward_with_unknown(image)
        scores = model.patch_scores(model.preprocess(image))[1]
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    top = F.interpolate(scores.amax(1, keepdim=True), size=(45, 67), mode="bilinear")
    torch.testing.assert_close(unknown, (1 - top[:, 0]).clamp(0, 1), rtol=0, atol=1e-6)
    assert (unknown <= expected[0] + 1e-6).all()  # all classes explain at least the eval labels
