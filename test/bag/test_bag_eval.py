"""pixood-bag-eval: offline replay of a bag through the model gives the metrics that
pixood_ros.metrics computes on the engine outputs, an output bag rviz can replay, and clear
errors (partial reports on damaged bags) for bad input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import make_handmade_model
from rosbags.highlevel import AnyReader

from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE, anomaly_map
from pixood_ros.bag import bagio
from pixood_ros.bag.cli import main
from pixood_ros.bag.make_bag import write_bag
from pixood_ros.engine import Segmenter
from pixood_ros.frames import Frame, Source
from pixood_ros.metrics import PixelMetricAccumulator, pixel_metrics
from pixood_ros.metrics.components import ComponentMetricAccumulator, component_metrics
from pixood_ros.metrics.semantic import ece, miou

H, W = 48, 64
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
COMMON = ["--providers", "cpu", "--no-progress", "--min-pred-size", "0", "--min-gt-size", "0"]


def make_frames(count: int, seed: int = 0, height: int = H, width: int = W) -> list[Frame]:
    """Frames whose red channel (= the handmade model's anomaly score) is high on the labelled
    anomaly patch and lower but overlapping elsewhere, so AP/AUROC are neither 0 nor 1."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        rgb[..., 0] = rng.integers(0, 170, (height, width))
        ood = np.zeros((height, width), np.uint8)
        top, left = 4 + 2 * i, 6 + 3 * i
        ood[top : top + 12, left : left + 14] = 1
        patch = rng.integers(110, 256, (12, 14))
        rgb[top : top + 12, left : left + 14, 0] = patch
        ood[-3:] = 255  # void rows
        semantic = ((rgb[..., 1].astype(int) // 8) % 19).astype(np.uint8)
        wrong = rng.random((height, width)) < 0.2
        semantic[wrong] = (semantic[wrong] + 1) % 19
        semantic[:2] = 255
        frames.append(Frame(f"f{i}", rgb, ood, semantic))
    return frames


def bag_from(frames: list[Frame], path: Path, **kwargs) -> Path:
    source = Source(
        iter(frames),
        len(frames),
        has_ood=frames[0].ood is not None,
        has_semantic=frames[0].semantic is not None,
    )
    kwargs.setdefault("rate", 1e9 / PERIOD_NS)
    write_bag(source, path, start_ns=START_NS, progress=False, **kwargs)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_handmade_model(tmp_path_factory.mktemp("model") / "handmade.onnx")


@pytest.fixture(scope="module")
def engine(model):
    return Segmenter(model, providers=["cpu"], warmup=False)


def run(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the command, also for mistakes the parser reports."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def load_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def load_report_of(capsys, model: Path, bag: Path, out: Path, *extra) -> dict:
    """The offline report of `bag` (default options + COMMON)."""
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON, *extra)
    assert rc == 0, err
    return load_report(out)


ROAD = [0, 1]  # the handmade model's eval labels: `auto` scores only these classes + anomalies


def in_region(frame: Frame, classes: list[int] | None) -> np.ndarray:
    """The OOD labels the report must score: anomalies, plus normal pixels of `classes`."""
    if classes is None:
        return frame.ood
    inside = np.isin(frame.semantic, classes) & (frame.ood == 0)
    return np.where(frame.ood == 1, 1, np.where(inside, 0, 255)).astype(np.uint8)


def published_score(engine, rgb: np.ndarray, mode: str = DEFAULT_ANOMALY_MODE) -> np.ndarray:
    """The anomaly score the node publishes for `rgb` (the engine's result in anomaly `mode`)."""
    return anomaly_map(engine(rgb), mode, engine.info.eval_labels)


def expected_metrics(
    engine, frames: list[Frame], region: list[int] | None = ROAD, mode: str = DEFAULT_ANOMALY_MODE
) -> dict:
    """pixood_ros.metrics computed directly on the engine outputs of the frames (in anomaly
    `mode`), inside the region; components at the best-F1 threshold of all frames at once."""
    results = [engine(f.rgb) for f in frames]
    scores = [published_score(engine, f.rgb, mode) for f in frames]
    labels = [in_region(f, region) for f in frames]
    streaming = PixelMetricAccumulator()
    for s, lab in zip(scores, labels, strict=True):
        streaming.update(s, lab)
    mask_rule = ComponentMetricAccumulator(0.5, min_pred_size=0, min_gt_size=0, inclusive=True)
    mask_rule.update(scores, labels)
    valid = [f.semantic != 255 for f in frames] if frames[0].semantic is not None else None
    return {
        "streaming": streaming.compute(),
        "exact": pixel_metrics(scores, labels),
        "components": component_metrics(scores, labels, None, min_pred_size=0, min_gt_size=0),
        "components_mask": mask_rule.compute(),
        "miou": miou([r.semantic for r in results], [f.semantic for f in frames], 19)
        if valid
        else None,
        "ece": ece(
            [r.confidence[v] for r, v in zip(results, valid, strict=True)],
            [
                r.semantic[v] == f.semantic[v]
                for r, f, v in zip(results, frames, valid, strict=True)
            ],
        )
        if valid
        else None,
    }


def assert_anomaly_numbers(report: dict, expected: dict, components_key: str = "components"):
    pixel = report["metrics"]["pixel"]
    for key in ("ap", "auroc", "fpr95", "best_f1", "n_pos", "n_neg"):
        assert pixel[key] == expected["streaming"][key], key
    # scores are k/255: the streaming histogram separates every level, so it is exact here
    for key in ("ap", "auroc", "fpr95"):
        assert pixel[key] == pytest.approx(expected["exact"][key], abs=1e-12)
    components = report["metrics"]["components"]
    want = expected[components_key]
    for key in ("siou", "ppv", "f1_mean", "n_gt_components", "n_pred_components", "tp_50"):
        assert components[key] == pytest.approx(want[key], abs=1e-12), key
    value = components["component_threshold"]["value"]
    if components_key == "components":  # best-f1: the lower edge of the exact threshold's bin
        assert value == np.floor(want["threshold"] * 65536) / 65536
    else:
        assert value == want["threshold"]


@pytest.mark.parametrize(
    "storage, compressed",
    [("sqlite3", None), ("mcap", None), ("mcap", "png"), ("sqlite3", "png")],
)
def test_report_numbers_equal_metrics_on_engine_outputs(
    tmp_path, capsys, model, engine, storage, compressed
):
    frames = make_frames(4)
    topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    bag = bag_from(frames, tmp_path / "bag", storage=storage, compressed=compressed, topic=topic)
    out = tmp_path / "out"
    rc, stdout, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 0, err
    assert "evaluated 4/4 frames" in stdout
    report = load_report(out)
    assert report["partial"] is False and report["error"] is None
    assert report["input"]["topic"] == topic and report["input"]["storage"] == storage
    assert report["frames"] == {
        "read": 4,
        "evaluated": 4,
        "failed": 0,
        "without_gt": 0,
        "without_gt_indices": [],
        "unmatched_gt_messages": {"/camera/anomaly_gt": 0, "/camera/semantic_gt": 0},
    }
    expected = expected_metrics(engine, frames)
    assert_anomaly_numbers(report, expected)
    pixel = report["metrics"]["pixel"]
    assert 0.3 < pixel["ap"] < 0.99 and 0.5 < pixel["auroc"] < 0.999
    # the best-F1 pass's temporary file: compressed 16-bit bins, under a byte per pixel (was 5)
    assert 0 < report["outputs"]["temporary_score_file_bytes_per_frame"] < frames[0].semantic.size
    components = report["metrics"]["components"]
    assert components["n_gt_components"] >= 4
    # auto: the model's eval labels are 2 of 19 classes and the bag has semantic ground truth
    region = report["metrics"]["region"]
    assert region["name"] == "eval-labels" and region["classes"] == ROAD
    assert region["reason"].startswith("auto:")
    assert components["component_threshold"]["rule"] == "best-f1"
    assert components["component_threshold"]["track"] == "obstacle"
    semantic = report["metrics"]["semantic"]
    assert semantic["miou"] == pytest.approx(expected["miou"], abs=1e-12)
    assert semantic["ece"] == pytest.approx(expected["ece"], abs=1e-12)
    assert 0.3 < semantic["miou"] < 0.95
    latency = report["speed"]["engine_latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["speed"]["engine_fps"] > 0
    assert report["input"]["recorded_rate_hz"] == pytest.approx(10.0)
    for name in ("report.md", "pr_curve.png", "roc_curve.png", "score_histogram.png"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "report.md").read_text()
    assert f"{pixel['ap']:.4f}" in markdown and "complete" in markdown


def test_anomaly_mode_decides_what_is_scored(tmp_path, capsys, model, engine):
    """The raw eval-label score (`eval_labels`) differs from the default mode's on these frames,
    and the report is of the mode asked for; the unknown modes need the unknown_score output."""
    frames = make_frames(3)
    bag = bag_from(frames, tmp_path / "bag")
    report = load_report_of(capsys, model, bag, tmp_path / "raw", "--anomaly-mode", "eval_labels")
    assert report["model"]["anomaly_mode"] == "eval_labels"
    raw = expected_metrics(engine, frames, mode="eval_labels")
    assert raw["streaming"]["ap"] != expected_metrics(engine, frames)["streaming"]["ap"]
    assert_anomaly_numbers(report, raw)
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "u", *COMMON, "--anomaly-mode", "unknown")
    assert rc == 2 and "re-export it with pixood-export" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "region, classes", [("all", None), ("eval-labels", ROAD), ("eval_labels", ROAD)]
)
def test_eval_region_scores_the_correspondingly_masked_labels(
    tmp_path, capsys, model, engine, region, classes
):
    frames = make_frames(3, seed=5)
    bag = bag_from(frames, tmp_path / "bag")
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON, "--eval-region", region)
    assert rc == 0, err
    report = load_report(out)
    assert_anomaly_numbers(report, expected_metrics(engine, frames, classes))
    assert report["metrics"]["region"]["name"] == region.replace("_", "-")
    assert report["metrics"]["region"]["reason"].startswith("requested")
    # the size filters follow the region (SMIYC obstacle track for the drivable-area ROI)
    track = "anomaly" if classes is None else "obstacle"
    assert report["metrics"]["components"]["component_threshold"]["track"] == track
    markdown = (out / "report.md").read_text()
    assert report["metrics"]["region"]["reason"] in markdown
    assert "best-f1 threshold: score >= " in markdown
    assert not list(out.glob(".pixood_scores_*")), "the temporary score file must be removed"


def test_component_threshold_mask_uses_the_node_mask_rule(tmp_path, capsys, model, engine):
    frames = make_frames(3, seed=6)
    bag = bag_from(frames, tmp_path / "bag")
    out = tmp_path / "out"
    rc, _, err = run(
        capsys,
        model,
        bag,
        "-o",
        out,
        *COMMON,
        "--component-threshold",
        "mask",
        "--threshold",
        "0.5",
    )
    assert rc == 0, err
    report = load_report(out)
    expected = expected_metrics(engine, frames)
    assert_anomaly_numbers(report, expected, components_key="components_mask")
    rule = report["metrics"]["components"]["component_threshold"]
    assert rule["rule"] == "mask" and rule["value"] == 0.5
    # the two operating points differ on these frames, so the option really changes the numbers
    assert expected["components"]["threshold"] != 0.5
    assert "mask threshold: score >= 0.5000" in (out / "report.md").read_text()


def test_eval_labels_region_needs_semantic_ground_truth(tmp_path, capsys, model):
    frames = make_frames(2)
    bag = write_custom_bag(tmp_path / "bag", frames)  # OOD masks only
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON, "--eval-region", "eval-labels")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--eval-region: the eval-labels region needs semantic ground truth" in err
    assert not (out / "report.json").exists()
    rc, _, err = run(capsys, model, bag, "-o", out, "--eval-region", "road")
    assert rc == 2 and "invalid choice: 'road'" in err


def read_all(bag: Path) -> tuple[dict[str, str], dict[str, list]]:
    with AnyReader([bag], default_typestore=bagio.TYPESTORE) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        messages: dict[str, list] = {}
        for conn, t, raw in reader.messages():
            messages.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return types, messages


def test_raw_output_bag_has_the_node_topics_with_input_headers(tmp_path, capsys, model, engine):
    frames = make_frames(3)
    bag = bag_from(frames, tmp_path / "bag", storage="sqlite3")
    out = tmp_path / "out"
    rc, _, err = run(
        capsys, model, bag, "-o", out, *COMMON, "--threshold", "0.6", "--video", "--raw-outputs"
    )
    assert rc == 0, err
    types, messages = read_all(out / "output_bag")
    ns = "/pixood_node"
    expected_encodings = {
        f"{ns}/anomaly_score": "32FC1",
        f"{ns}/anomaly_mask": "mono8",
        f"{ns}/semantic": "mono8",
        f"{ns}/confidence": "32FC1",
        f"{ns}/overlay": "bgr8",
    }
    assert types == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        **{t: "sensor_msgs/msg/Image" for t in expected_encodings},
    }
    stamps = [START_NS + i * PERIOD_NS for i in range(3)]
    for topic, encoding in expected_encodings.items():
        assert len(messages[topic]) == 3
        for (t, msg), stamp in zip(messages[topic], stamps, strict=True):
            assert t == stamp
            assert bagio.stamp_to_ns(msg.header.stamp) == stamp
            assert msg.header.frame_id == "camera"
            assert msg.encoding == encoding and (msg.height, msg.width) == (H, W)
    for (_, score_msg), (_, mask_msg), frame in zip(
        messages[f"{ns}/anomaly_score"], messages[f"{ns}/anomaly_mask"], frames, strict=True
    ):
        expected = published_score(engine, frame.rgb)
        score = score_msg.data.view(np.float32).reshape(H, W)
        assert np.array_equal(score, expected)
        mask = mask_msg.data.reshape(H, W)
        assert np.array_equal(mask, np.where(expected >= 0.6, 255, 0))
    assert (out / "overlay.mp4").stat().st_size > 0


def test_truncated_mcap_gives_partial_report_and_clear_error(tmp_path, capsys, model):
    # ~50 kB per frame: rosbags cuts 1 MiB chunks, so the first chunk survives the cut
    frames = make_frames(40, height=120, width=160)
    bag = bag_from(frames, tmp_path / "bag", storage="mcap")
    mcap = next(bag.glob("*.mcap"))
    os.truncate(mcap, int(mcap.stat().st_size * 0.7))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 2
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1
    assert lines[0].startswith("pixood-bag-eval: error: partial report written;")
    assert "damaged" in lines[0]
    report = load_report(out)
    assert report["partial"] is True and "damaged" in report["error"]
    assert report["input"]["salvaged"] is True
    assert 10 <= report["frames"]["evaluated"] < 40
    assert report["frames"]["evaluated"] == report["metrics"]["pixel"]["frames"]
    assert 0 < report["metrics"]["pixel"]["ap"] < 1
    assert "Partial report" in (out / "report.md").read_text()
    # the output bag holds what was evaluated and reads back
    types, messages = read_all(out / "output_bag")
    assert len(messages["/pixood_node/anomaly_score/compressed"]) == report["frames"]["read"]


def test_sqlite3_cut_in_half_is_a_one_line_error(tmp_path, capsys, model):
    bag = bag_from(make_frames(6), tmp_path / "bag", storage="sqlite3")
    db = next(bag.glob("*.db3"))
    os.truncate(db, db.stat().st_size // 2)
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", *COMMON)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "cannot open bag" in err and "malformed" in err


def test_undecodable_frames_are_counted_and_listed(tmp_path, capsys, model):
    frames = make_frames(3)
    bag = tmp_path / "bag"
    with bagio.open_writer(bag, "mcap") as writer:
        cam = writer.add_connection(
            "/cam/compressed", bagio.COMPRESSED_TYPE, typestore=bagio.TYPESTORE
        )
        gt = writer.add_connection(
            "/camera/anomaly_gt", bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
        )
        for i, frame in enumerate(frames):
            header = bagio.make_header(START_NS + i * PERIOD_NS, "cam")
            msg = bagio.compressed_message(frame.rgb, "png", header)
            if i == 1:
                msg.data = msg.data[: len(msg.data) // 3]  # half-written PNG
            writer.write(cam, START_NS + i * PERIOD_NS, bagio.serialize(msg))
            label = bagio.image_message(frame.ood, "mono8", header)
            writer.write(gt, START_NS + i * PERIOD_NS, bagio.serialize(label))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 0
    assert "1 frame(s) could not be evaluated" in err
    report = load_report(out)
    assert report["frames"]["read"] == 3 and report["frames"]["evaluated"] == 2
    [failed] = report["failed_frames"]
    assert failed["index"] == 1 and failed["stamp_ns"] == START_NS + PERIOD_NS
    assert "undecodable frame" in failed["reason"]
    assert report["metrics"]["pixel"]["frames"] == 2


def write_custom_bag(path: Path, frames: list[Frame], gt_shape=None, gt_offset_ns: int = 0):
    with bagio.open_writer(path, "sqlite3") as writer:
        cam = writer.add_connection(
            "/camera/image_raw", bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
        )
        gt = writer.add_connection(
            "/camera/anomaly_gt", bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
        )
        for i, frame in enumerate(frames):
            stamp = START_NS + i * PERIOD_NS
            header = bagio.make_header(stamp, "camera")
            writer.write(
                cam, stamp, bagio.serialize(bagio.image_message(frame.rgb, "rgb8", header))
            )
            ood = (
                frame.ood
                if gt_shape is None or i not in gt_shape
                else np.zeros(gt_shape[i], np.uint8)
            )
            label_header = bagio.make_header(stamp + gt_offset_ns, "camera")
            label = bagio.image_message(ood, "mono8", label_header)
            writer.write(gt, stamp + gt_offset_ns, bagio.serialize(label))
    return path


def test_ground_truth_of_the_wrong_size(tmp_path, capsys, model):
    frames = make_frames(3)
    # one bad frame: listed, the rest evaluated
    bag = write_custom_bag(tmp_path / "one", frames, gt_shape={2: (10, 12)})
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out1", *COMMON)
    assert rc == 0
    report = load_report(tmp_path / "out1")
    assert report["frames"]["evaluated"] == 2
    assert (
        "OOD ground truth is 12x10 but the frame is 64x48" in report["failed_frames"][0]["reason"]
    )
    # every frame bad: the user gave the wrong labels, exit 2 with one line
    bag = write_custom_bag(tmp_path / "all", frames, gt_shape={i: (10, 12) for i in range(3)})
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out2", *COMMON)
    assert rc == 2
    assert err.strip().splitlines()[-1].startswith("pixood-bag-eval: error: no frame could be")
    assert "12x10" in err
    assert load_report(tmp_path / "out2")["partial"] is False


def test_stamp_tolerance_pairs_slightly_offset_labels(tmp_path, capsys, model, engine):
    frames = make_frames(3)
    bag = write_custom_bag(tmp_path / "bag", frames, gt_offset_ns=1_000_000)
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "exact", *COMMON)
    assert rc == 2 and "no ground truth matched any frame" in err
    assert load_report(tmp_path / "exact")["frames"]["without_gt"] == 3
    rc, _, err = run(
        capsys, model, bag, "-o", tmp_path / "tol", *COMMON, "--stamp-tolerance", "0.002"
    )
    assert rc == 0, err
    report = load_report(tmp_path / "tol")
    assert report["frames"]["evaluated"] == 3
    expected = expected_metrics(engine, frames, region=None)  # no semantic topic in this bag
    assert report["metrics"]["pixel"]["ap"] == expected["streaming"]["ap"]


def test_gt_folder_is_paired_by_order(tmp_path, capsys, model, engine):
    import cv2

    frames = make_frames(3)
    bag = bag_from([Frame(f.name, f.rgb) for f in frames], tmp_path / "bag")
    (tmp_path / "gt").mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / "gt" / f"{i:02d}.png"), frame.ood)
    rc, _, err = run(
        capsys, model, bag, "-o", tmp_path / "out", *COMMON, "--gt-dir", tmp_path / "gt"
    )
    assert rc == 0, err
    report = load_report(tmp_path / "out")
    expected = expected_metrics(engine, frames, region=None)
    assert report["metrics"]["pixel"]["ap"] == expected["streaming"]["ap"]
    assert "semantic" not in report["metrics"]
    # without semantic ground truth `auto` cannot find the eval-label pixels: all are scored
    assert report["metrics"]["region"]["name"] == "all"
    assert "no semantic ground truth" in report["metrics"]["region"]["reason"]


def test_without_ground_truth_reports_speed_and_histogram(tmp_path, capsys, model, monkeypatch):
    frames = [Frame(f.name, f.rgb) for f in make_frames(2)]
    bag = bag_from(frames, tmp_path / "bag")
    # on 8 cores the model gets the 5 its three busy stages leave
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", *COMMON, "--max-frames", "1")
    assert rc == 0, err
    report = load_report(tmp_path / "out")
    assert report["model"]["intra_op_threads"] == 5
    assert "5 CPU thread(s)" in (tmp_path / "out" / "report.md").read_text()
    assert report["frames"]["read"] == 1
    assert "pixel" not in report["metrics"]
    assert (tmp_path / "out" / "score_histogram.png").is_file()
    assert not (tmp_path / "out" / "pr_curve.png").exists()


def test_user_errors_are_one_line_exit_2(tmp_path, capsys, model):
    bag = bag_from(make_frames(2), tmp_path / "bag")
    out = tmp_path / "out"
    cases = [
        ([model, tmp_path / "missing", "-o", out], "bag not found"),
        ([tmp_path / "nomodel.onnx", bag, "-o", out], "model not found"),
        ([model, bag, "-o", out, "--topic", "/nope"], "topic /nope is not in the bag (topics:"),
        ([model, bag, "-o", out, "--gt-topic", "/nope"], "--gt-topic /nope is not in the bag"),
        ([model, bag, "-o", out, "--threshold", "2"], "--threshold: must be in [0, 1]"),
        ([model, bag, "-o", out, "--threads", "-1"], "--threads: must be >= 0"),
    ]
    for args, expected in cases:
        rc, _, err = run(capsys, *args, *COMMON)
        assert rc == 2, expected
        assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (out / "report.json").exists()
    # results are not overwritten by accident
    assert run(capsys, model, bag, "-o", out, *COMMON)[0] == 0
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 2 and "--overwrite" in err
    assert run(capsys, model, bag, "-o", out, *COMMON, "--overwrite")[0] == 0


def test_several_image_topics_must_be_chosen(tmp_path, capsys, model):
    frames = make_frames(1)
    bag = tmp_path / "bag"
    with bagio.open_writer(bag, "mcap") as writer:
        for topic in ("/left/image_raw", "/right/image_raw"):
            conn = writer.add_connection(topic, bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE)
            header = bagio.make_header(START_NS, "cam")
            msg = bagio.image_message(frames[0].rgb, "rgb8", header)
            writer.write(conn, START_NS, bagio.serialize(msg))
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", *COMMON)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "/left/image_raw (Image), /right/image_raw (Image)" in err
    rc, _, err = run(
        capsys, model, bag, "-o", tmp_path / "out", *COMMON, "--topic", "/right/image_raw"
    )
    assert rc == 0, err


def test_pairing_by_stamp_handles_late_missing_and_extra_labels():
    from pixood_ros.bag.bagio import BagMessage
    from pixood_ros.bag.pairing import PairingStats, pair_by_stamp

    def msg(topic: str, stamp: int) -> BagMessage:
        return BagMessage(topic, bagio.IMAGE_TYPE, stamp, stamp, np.zeros(3), b"")

    # labels arrive after their frames, frame 200 has none, label 50 belongs to no frame
    stream = [msg("img", 0), msg("img", 100), msg("gt", 0), msg("gt", 50), msg("img", 200),
              msg("gt", 100), msg("img", 300), msg("gt", 300)]  # fmt: skip
    stats = PairingStats()
    pairs = [
        (frame.stamp_ns, None if labels["gt"] is None else labels["gt"].stamp_ns)
        for frame, labels in pair_by_stamp(stream, "img", ["gt"], 0, stats=stats)
    ]
    assert pairs == [(0, 0), (100, 100), (200, None), (300, 300)]
    assert stats.unmatched_labels == {"gt": 1}
    # with a tolerance the nearest label wins
    stream = [msg("img", 100), msg("gt", 96), msg("gt", 103), msg("gt", 250)]
    [(frame, labels)] = list(pair_by_stamp(stream, "img", ["gt"], 5))
    assert labels["gt"].stamp_ns == 103


# --- live mode: replay into a running node over ROS 2 -------------------------------------------


def _live_prerequisites() -> None:
    pytest.importorskip("rclpy", reason="live mode needs rclpy")
    try:
        import pixood_ros.node.main  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"pixood_ros.node (node area) is not importable yet: {exc}")


@pytest.mark.ros
def test_live_without_a_node_is_a_one_line_error(tmp_path, capsys, model):
    _live_prerequisites()
    bag = bag_from(make_frames(2), tmp_path / "bag")
    rc, _, err = run(
        capsys, model, bag, "-o", tmp_path / "out", "--live", "--timeout", "1",
        "--node-ns", "/nobody_here",
    )  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "no pixood node found within 1 s" in err


@pytest.mark.ros
@pytest.mark.slow
def test_live_replay_into_the_node(tmp_path, capsys, model):
    """Start the real node, replay a bag at its recorded rate, count answers, record them and
    check the recorded outputs score the same as the offline evaluation."""
    import subprocess
    import time

    _live_prerequisites()
    frames = make_frames(6)
    bag = bag_from(frames, tmp_path / "bag", storage="mcap")
    node = subprocess.Popen(
        [sys.executable, "-m", "pixood_ros.node.main", "--ros-args",
         "-p", f"model_path:={model}", "-p", "providers:=['cpu']",
         "-r", "image:=/camera/image_raw"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert node.poll() is None, node.stdout.read()
        out = tmp_path / "live"
        rc, stdout, err = run(
            capsys, model, bag, "-o", out, "--live", "--record", "--timeout", "30",
            "--min-pred-size", "0", "--min-gt-size", "0",
            "--rate", "0.5",  # 5 Hz: a loaded CI machine must not drop frames (latest-frame policy)
        )  # fmt: skip
        assert rc == 0, err
    finally:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    report = load_report(out)
    assert report["mode"] == "live"
    assert report["frames"]["published"] == 6
    assert report["frames"]["answered"] == 6 and report["frames"]["dropped"] == 0
    assert report["frames"]["outputs_received"] == {
        name: 6 for name in ("anomaly_score", "anomaly_mask", "semantic", "confidence", "overlay")
    }
    latency = report["speed"]["end_to_end_latency_ms"]
    assert 0 < latency["p50"] <= latency["max"] < 5000
    # a 10 Hz bag of 6 frames replayed at half speed takes about a second
    assert 0.8 < report["speed"]["replay_s"] < 6
    types, messages = read_all(out / "live_bag")
    assert len(types) == 5
    stamps = [START_NS + i * PERIOD_NS for i in range(6)]
    assert sorted(t for t, _ in messages["/pixood_node/anomaly_score"]) == stamps
    offline = load_report_of(capsys, model, bag, tmp_path / "offline")
    # same frames, same region (auto: eval labels), same best-F1 component threshold
    assert report["metrics"]["region"] == offline["metrics"]["region"]
    assert report["metrics"]["region"]["name"] == "eval-labels"
    assert report["metrics"]["pixel"] == offline["metrics"]["pixel"]
    assert report["metrics"]["components"] == offline["metrics"]["components"]


def test_unusable_ground_truth_fails_its_frame_in_bag_order(tmp_path, capsys, model):
    """A frame whose semantic labels hold a class the model does not have and one whose anomaly
    labels are not 0/1/255 are each listed as failed, with the reason, in bag order; the other
    frames are evaluated."""
    frames = make_frames(4)
    frames[1].semantic[10, 10] = 40  # not one of the 19 classes, not void
    frames[2].ood[5, 5] = 7  # not 0, 1 or 255
    bag = bag_from(frames, tmp_path / "bag")
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", *COMMON)
    assert rc == 0, err
    report = load_report(tmp_path / "out")
    assert report["frames"]["read"] == 4 and report["frames"]["evaluated"] == 2
    failed = report["failed_frames"]
    assert [f["index"] for f in failed] == [1, 2]
    assert all(f["reason"].startswith("ground truth unusable") for f in failed)
    assert "[40]" in failed[0]["reason"]
