"""InternImage family end to end: a tiny randomly initialised InternImage + UperNet in the
published structure, written as a published mmseg checkpoint, converted, given InternImage-OOD's
published k-means rule, exported with PyTorch-vs-ONNX Runtime parity at odd sizes, served by the
node over a real rclpy graph, evaluated by pixood-bag-eval and scored by pixood-bravo."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from test_internimage_convert import randomised, write_published_checkpoint

from pixood_ros.bag.cli import main as bag_eval
from pixood_ros.bag.make_bag import write_bag
from pixood_ros.bravo.cli import main as bravo
from pixood_ros.engine import Segmenter
from pixood_ros.frames import read_rgb, synth_source
from pixood_ros.synth import write_dataset
from pixood_training.checkpoint import load_model, save_model
from pixood_training.export.cli import main as export
from pixood_training.internimage.convert import main as convert
from pixood_training.internimage.model import tiny_internimage_model
from pixood_training.scorers.kmeans import KMeansScorer

pytestmark = pytest.mark.slow
SPLITS = {"val": 2, "ood_val": 2}
CPU = ["--providers", "cpu", "--no-progress"]


def fit_published_kmeans(model, images: list[np.ndarray]) -> KMeansScorer:
    """k-means on the model's own scorer features, labelled with its predictions."""
    features, labels = [], []
    with torch.no_grad():
        for rgb in images:
            e, logits = model.features_and_logits(model.preprocess(torch.from_numpy(rgb)[None]))
            features.append(e[0].flatten(1).T)
            labels.append(logits[0].argmax(0).flatten())
    return KMeansScorer.fit(
        torch.cat(features), None, torch.cat(labels), model.num_classes, k=3, rule="published"
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("internimage")
    synth = root / "synth"
    write_dataset(synth, SPLITS, width=96, height=48, seed=5, progress=False)
    source = randomised(tiny_internimage_model(preset="tiny", seed=1), seed=1)
    published = write_published_checkpoint(root / "upernet_internimage_tiny.pth", source)
    assert convert([str(published), "-o", str(root / "converted"), "--offset-scale", "1"]) == 0
    model = load_model(root / "converted")
    images = [read_rgb(p) for p in sorted((synth / "leftImg8bit").rglob("*.png"))]
    model.scorer = fit_published_kmeans(model, images)
    save_model(model, root / "kmeans")
    onnx_path = root / "internimage.onnx"
    argv = [str(root / "kmeans"), "-o", str(onnx_path), "--check-sizes", "61x97", "45x45"]
    assert export(argv + ["--providers", "cpu"]) == 0
    return root, synth, onnx_path


def test_export_carries_the_contract_metadata(exported):
    _, _, onnx_path = exported
    meta = {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
    assert meta["scorer"] == "kmeans" and meta["network_long_side"] == "0"
    info = Segmenter(onnx_path, providers=["cpu"], warmup=False)
    result = info(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    assert result.anomaly_score.shape == (37, 53) and result.unknown_score is not None


@pytest.mark.ros
def test_node_serves_the_converted_model(exported):
    from node.test_node_graph import NodeGraph, assert_outputs_match, make_image_msg, rng_image

    from pixood_ros import image_conversion as ic
    from pixood_ros.node.pixood_node import PixoodNode

    _, _, onnx_path = exported
    params = {"model_path": str(onnx_path), "input_qos": "reliable", "providers": ["cpu"]}
    graph = NodeGraph(PixoodNode, {**params, "warmup": False})
    try:
        assert graph.node.autostart(), "node did not reach active"
        graph.wait_connected()
        msg = make_image_msg(rng_image(41, 67, 3), "rgb8", 1_000_000_000)
        graph.publish(msg)
        outputs = graph.wait_outputs(1_000_000_000)
        segmenter = Segmenter(onnx_path, providers=["cpu"], warmup=False)
        assert_outputs_match(outputs, ic.image_to_rgb(msg), segmenter, 1_000_000_000, "cam", 0.995)
    finally:
        graph.close()


def test_bag_eval_and_bravo_accept_the_model(exported, tmp_path):
    _, synth, onnx_path = exported
    bag = tmp_path / "ood.mcap"
    write_bag(synth_source(synth, "ood_val"), bag, rate=10.0, start_ns=10**18, progress=False)
    out = tmp_path / "eval"
    assert bag_eval([str(onnx_path), str(bag), "-o", str(out), *CPU]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"]["evaluated"] == SPLITS["ood_val"]
    sub = tmp_path / "submission"
    assert bravo(["predict", str(onnx_path), str(synth), "-o", str(sub), *CPU]) == 0
    assert len(list(sub.rglob("*_conf.png"))) == sum(SPLITS.values())
    result = tmp_path / "bravo.json"
    assert bravo(["evaluate", str(synth), str(sub), "--json", str(result), "--no-progress"]) == 0
    summary = json.loads(result.read_text())
    assert 0.0 <= summary["bravo_index"] <= 1.0
