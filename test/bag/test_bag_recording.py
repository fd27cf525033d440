"""Scoring a recording of the node's outputs (`bag-eval --live --record`, the demo): the figures
are those of pixood_ros.metrics on the recorded maps against the replayed bag's ground truth, and
frames the node did not answer are counted, not scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixood_ros.bag import bagio
from pixood_ros.bag.recording import recorded_frames, score_recording
from pixood_ros.bag.scoring import ALL_PIXELS, EvalMetrics
from pixood_ros.metrics import pixel_metrics
from pixood_ros.metrics.semantic import miou

H, W = 16, 20
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
NS = "/pixood_node"
CAMERA, GT, SEM = "/camera/image_raw", "/camera/anomaly_gt", "/camera/semantic_gt"


def _write(path: Path, topics: dict[str, list[tuple[int, np.ndarray, str]]]) -> Path:
    """A bag of mono8/32FC1/rgb8 images: topic -> [(stamp, pixels, encoding)]."""
    with bagio.open_writer(path, "mcap") as writer:
        for topic, messages in topics.items():
            conn = writer.add_connection(topic, bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE)
            for stamp, pixels, encoding in messages:
                msg = bagio.image_message(pixels, encoding, bagio.make_header(stamp, "camera"))
                writer.write(conn, stamp, bagio.serialize(msg))
    return path


def test_recorded_outputs_score_like_the_metrics_on_those_maps(tmp_path):
    rng = np.random.default_rng(3)
    stamps = [START_NS + i * PERIOD_NS for i in range(4)]
    ood = [np.zeros((H, W), np.uint8) for _ in stamps]
    for i, labels in enumerate(ood):
        labels[2 + i : 7 + i, 3:9] = 1
        labels[-1] = 255
    semantic = [rng.integers(0, 3, (H, W)).astype(np.uint8) for _ in stamps]
    scores = [(rng.integers(0, 256, (H, W)) / 255).astype(np.float32) for _ in stamps]
    predicted = [
        np.where(rng.random((H, W)) < 0.7, s, (s + 1) % 3).astype(np.uint8) for s in semantic
    ]
    rgb = np.zeros((H, W, 3), np.uint8)
    bag = _write(
        tmp_path / "bag",
        {
            CAMERA: [(t, rgb, "rgb8") for t in stamps],
            GT: [(t, o, "mono8") for t, o in zip(stamps, ood, strict=True)],
            SEM: [(t, s, "mono8") for t, s in zip(stamps, semantic, strict=True)],
        },
    )
    answered = stamps[:3]  # the node never answered the last frame
    confidence = np.full((H, W), 0.9, np.float32)
    recording = _write(
        tmp_path / "recording",
        {
            f"{NS}/anomaly_score": [
                (t, s, "32FC1") for t, s in zip(answered, scores, strict=False)
            ],
            f"{NS}/semantic": [(t, p, "mono8") for t, p in zip(answered, predicted, strict=False)],
            f"{NS}/confidence": [(t, confidence, "32FC1") for t in answered],
        },
    )
    with EvalMetrics(0.5, num_classes=3, region=ALL_PIXELS, spill_dir=tmp_path) as metrics:
        frames = recorded_frames(bag, recording, CAMERA, (GT, SEM), NS)
        found = score_recording(frames, metrics, semantic=True)
        summary = metrics.summary(["road", "sidewalk", "car"])
    assert (found.frames_in_bag, found.frames_answered) == (4, 3)
    assert found.missing_output_stamps == [stamps[3]] and found.unscored == []
    expected = pixel_metrics(scores[:3], ood[:3])
    assert summary["pixel"]["frames"] == 3
    for key in ("ap", "auroc", "fpr95"):
        assert summary["pixel"][key] == pytest.approx(expected[key], abs=1e-12), key
    assert summary["semantic"]["miou"] == pytest.approx(miou(predicted[:3], semantic[:3], 3))


def test_unusable_ground_truth_is_a_note_not_a_crash(tmp_path):
    stamp = START_NS
    bag = _write(
        tmp_path / "bag",
        {
            CAMERA: [(stamp, np.zeros((H, W, 3), np.uint8), "rgb8")],
            GT: [(stamp, np.zeros((H // 2, W), np.uint8), "mono8")],  # wrong size
        },
    )
    recording = _write(
        tmp_path / "recording",
        {f"{NS}/anomaly_score": [(stamp, np.zeros((H, W), np.float32), "32FC1")]},
    )
    with EvalMetrics(0.5, num_classes=3, spill_dir=tmp_path) as metrics:
        found = score_recording(
            recorded_frames(bag, recording, CAMERA, (GT, None), NS), metrics, semantic=False
        )
        assert metrics.frames_with_ood_gt == 0
    assert found.frames_answered == 0 and found.frames_in_bag == 1
    [note] = found.unscored
    assert note.startswith(f"stamp {stamp}:") and "OOD ground truth is 20x8" in note
