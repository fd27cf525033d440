"""The output bag's two forms: compact by default (a small fraction of the raw size, scores within
1/65536 below the published ones, the mask and semantic map exact) and the node's raw form with
--raw-outputs; both read back by the recording reader the demo and --live --record use. The
shipped model on generated road scenes gives outputs with real statistics (smooth maps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_bag_eval import COMMON, bag_from, load_report, read_all

from pixood_ros.bag import bagio
from pixood_ros.bag.cli import main
from pixood_ros.bag.output_codec import SCORE_ERROR_BOUND, decode
from pixood_ros.bag.recording import recorded_frames
from pixood_ros.frames import Frame
from pixood_ros.synth.dataset import frame_rng
from pixood_ros.synth.scene import render_scene

H, W = 360, 640
NS = "/pixood_node"
CAMERA = "/camera/image_raw"
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "checkpoints" / "pixood_demo.onnx"
THRESHOLD = 0.6
COMPACT_TOPICS = {
    "anomaly_score": f"{NS}/anomaly_score/compressed",
    "confidence": f"{NS}/confidence/compressed",
    "overlay": f"{NS}/overlay/compressed",
    "anomaly_mask": f"{NS}/anomaly_mask",
    "semantic": f"{NS}/semantic",
}
TYPES = {True: bagio.COMPRESSED_TYPE, False: bagio.IMAGE_TYPE}


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """Generated road scenes (real image statistics, unlike noise)."""
    scenes = [render_scene(frame_rng(3, "ood_val", i), W, H, "ood_val") for i in range(3)]
    return [Frame(f"s{i}", s.image, s.ood, s.labels) for i, s in enumerate(scenes)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, frames) -> dict[str, Path]:
    """The model, the JPEG bag and bag-eval's output folders: default and --raw-outputs."""
    root = tmp_path_factory.mktemp("forms")
    paths = {"model": SHIPPED_MODEL}
    paths["bag"] = bag_from(frames, root / "bag", compressed="jpeg")
    forms = (
        ("compact", []),
        ("raw", ["--raw-outputs"]),
        ("sqlite3", ["--output-storage", "sqlite3"]),
    )
    for form, extra in forms:
        paths[form] = root / form
        args = [paths["model"], paths["bag"], "-o", paths[form], *COMMON]
        assert main([str(a) for a in [*args, "--threshold", str(THRESHOLD), *extra]]) == 0
    return paths


def bag_bytes(bag: Path) -> int:
    return sum(f.stat().st_size for f in bag.iterdir())


def test_default_output_bag_is_compact(runs):
    compact, raw = runs["compact"] / "output_bag", runs["raw"] / "output_bag"
    assert bag_bytes(compact) < 0.1 * bag_bytes(raw)
    report = load_report(runs["compact"])
    assert report["outputs"]["output_form"] == "compact"
    per_frame = report["outputs"]["output_bag_bytes_per_frame"]
    assert per_frame == pytest.approx(bag_bytes(compact) / 3, rel=0.01)
    assert "MB per frame" in (runs["compact"] / "report.md").read_text()
    types, _ = read_all(compact)
    assert types == {
        CAMERA: bagio.COMPRESSED_TYPE,
        **{topic: TYPES[topic.endswith("/compressed")] for topic in COMPACT_TOPICS.values()},
    }
    # the mcap chunks name their compression
    assert b"zstd" in next(compact.glob("*.mcap")).read_bytes()
    assert b"zstd" not in next(raw.glob("*.mcap")).read_bytes()


def test_compact_sqlite3_bag_compresses_each_message(runs):
    compact, raw = runs["sqlite3"] / "output_bag", runs["raw"] / "output_bag"
    assert bag_bytes(compact) < 0.1 * bag_bytes(raw)
    assert "compression_mode: message" in (compact / "metadata.yaml").read_text()
    _, from_sqlite = read_all(compact)
    _, from_mcap = read_all(runs["compact"] / "output_bag")
    for topic in COMPACT_TOPICS.values():
        for (ta, a), (tb, b) in zip(from_sqlite[topic], from_mcap[topic], strict=True):
            assert ta == tb == bagio.stamp_to_ns(a.header.stamp)
            assert np.array_equal(a.data, b.data)


def test_compact_outputs_read_back_within_the_stated_bound(runs):
    _, compact = read_all(runs["compact"] / "output_bag")
    types, raw = read_all(runs["raw"] / "output_bag")
    assert types[f"{NS}/anomaly_score"] == bagio.IMAGE_TYPE
    assert {raw[f"{NS}/{name}"][0][1].encoding for name in ("anomaly_score", "confidence")} == {
        "32FC1"
    }
    for i in range(3):
        exact = {
            name: decode(name, raw[f"{NS}/{name}"][i][1])
            for name in ("anomaly_score", "anomaly_mask", "semantic", "confidence", "overlay")
        }
        read = {name: decode(name, compact[topic][i][1]) for name, topic in COMPACT_TOPICS.items()}
        score = read["anomaly_score"]
        assert score.dtype == np.float32 and score.shape == (H, W)
        # at most 1/65536 below, never above (a score of exactly 1, e.g. the confidence of the
        # monotone rule's most typical pixels, is stored as 65535 and sits exactly 1/65536 below)
        gap = exact["anomaly_score"] - score
        assert np.all((gap >= 0) & (gap <= SCORE_ERROR_BOUND))
        gap = exact["confidence"] - read["confidence"]
        assert np.all((gap >= 0) & (gap <= SCORE_ERROR_BOUND))
        assert np.array_equal(read["anomaly_mask"], exact["anomaly_mask"])  # full precision
        assert np.array_equal(
            exact["anomaly_mask"], np.where(exact["anomaly_score"] >= THRESHOLD, 255, 0)
        )
        assert np.array_equal(read["semantic"], exact["semantic"])
        assert read["overlay"].shape == exact["overlay"].shape == (H, W, 3)
        assert np.abs(read["overlay"].astype(int) - exact["overlay"]).mean() < 4  # JPEG


def test_the_output_form_changes_no_metric(runs):
    assert load_report(runs["compact"])["metrics"] == load_report(runs["raw"])["metrics"]


def test_recording_reader_reads_both_forms(runs):
    read = {
        form: list(
            recorded_frames(runs["bag"], runs[form] / "output_bag", CAMERA, (None, None), NS)
        )
        for form in ("compact", "raw")
    }
    assert len(read["compact"]) == len(read["raw"]) == 3
    for compact, raw in zip(read["compact"], read["raw"], strict=True):
        assert compact.answered and raw.answered
        assert compact.frame.stamp_ns == raw.frame.stamp_ns
        gap = raw.outputs["anomaly_score"] - compact.outputs["anomaly_score"]
        assert np.all((gap >= 0) & (gap <= SCORE_ERROR_BOUND))
        assert np.array_equal(compact.outputs["semantic"], raw.outputs["semantic"])
