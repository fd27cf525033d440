"""`python -m pixood_ros.demo`: the whole pipeline on a few small frames with a real exported model
leaves a complete output folder (report with numbers, curves, a video with frames, the recorded
node outputs), and the node process is gone afterwards, also after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import model_fixtures
import numpy as np
import pytest

from pixood_ros import demo

FRAMES = 4
SMALL = ["--width", "128", "--height", "64", "--providers", "cpu", "--no-progress"]
OUTPUT_TOPICS = ("anomaly_score", "anomaly_mask", "semantic", "confidence", "overlay")


def _domain() -> list[str]:
    return ["--domain-id", os.environ["ROS_DOMAIN_ID"]]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The real tiny PixOOD model when the training extra is installed, else the handmade one."""
    folder = tmp_path_factory.mktemp("demo_model")
    try:
        import torch  # noqa: F401
    except ImportError:
        return model_fixtures.make_handmade_model(folder / "handmade.onnx")
    return model_fixtures.export_tiny_model(folder / "tiny.onnx")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")  # a zombie (exited, not yet reaped) is gone too
    return status.is_file() and "zombie" in status.read_text()


def test_missing_model_is_one_line_with_the_build_commands(tmp_path, capsys):
    rc = demo.main(["--model", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "nope.onnx not found" in err and "checkpoints/README.md" in err
    assert "pixood-train all --config config/train/synth_small.yaml" in err
    assert not (tmp_path / "out").exists()


def test_refuses_a_folder_with_other_files(tmp_path, capsys):
    model = model_fixtures.make_handmade_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    rc = demo.main(["--model", str(model), "--out", str(out), *SMALL])
    assert rc == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "keep me"


def test_unknown_mode_needs_a_model_with_the_unknown_output(tmp_path, capsys):
    """Checked in this process before the node starts: one line naming the fix, exit 2."""
    model = model_fixtures.make_handmade_model(tmp_path / "m.onnx")
    argv = ["--model", str(model), "--out", str(tmp_path / "out"), "--frames", "2"]
    rc = demo.main([*argv, "--anomaly-mode", "unknown_on_surface", *SMALL])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "re-export it with pixood-export" in err
    assert not (tmp_path / "out" / "node.log").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "1"], "--frames must be at least 2"),
        (["--rate", "fast"], "--rate must be a number"),
        (["--threshold", "2"], "pixood-demo: error: argument --threshold: must be in [0, 1]"),
        (["--domain-id", "300"], "--domain-id must be in 0..101"),
        (["--anomaly-mode", "road"], "argument --anomaly-mode: invalid choice: 'road'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    try:
        rc = demo.main(["--out", str(tmp_path / "out"), *args])
    except SystemExit as exc:  # mistakes the parser finds
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err


@pytest.mark.slow
@pytest.mark.ros
def test_demo_leaves_a_complete_output_folder_and_no_node(tmp_path, capsys, model):
    pytest.importorskip("rclpy")
    out = tmp_path / "demo"
    rc = demo.main(
        ["--model", str(model), "--out", str(out), "--frames", str(FRAMES), "--rate", "4",
         "--min-pred-size", "0", "--min-gt-size", "0", *SMALL, *_domain()]
    )  # fmt: skip
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert str(out / "report.md") in stdout and str(out / "overlay.mp4") in stdout

    rep = json.loads((out / "report.json").read_text())
    assert rep["tool"] == "pixood-demo"
    assert _process_gone(rep["node"]["pid"])
    assert rep["node"]["exit_code"] == 0
    assert rep["replay"]["published"] == FRAMES
    assert rep["replay"]["answered"] == FRAMES and rep["replay"]["dropped"] == 0
    assert rep["replay"]["outputs_received"] == {name: FRAMES for name in OUTPUT_TOPICS}
    latency = rep["speed"]["end_to_end_latency_ms"]
    assert 0 < latency["p50"] <= latency["max"]
    assert rep["speed"]["engine_fps_in_process"] > 0 and rep["speed"]["node_output_fps"] > 0
    pixel = rep["metrics"]["pixel"]
    assert pixel["frames"] == FRAMES and pixel["n_pos"] > 0 and pixel["n_neg"] > 0
    for key in ("ap", "auroc", "fpr95"):
        assert 0.0 <= pixel[key] <= 1.0
    assert rep["metrics"]["components"]["n_gt_components"] > 0
    assert 0.0 <= rep["metrics"]["semantic"]["miou"] <= 1.0
    # auto: the model's eval labels are scored; components at the best-F1 threshold
    assert rep["metrics"]["region"]["name"] == "eval-labels"
    assert rep["evaluation"]["region"] == rep["metrics"]["region"]
    assert rep["evaluation"]["frames_scored"] == FRAMES
    assert rep["metrics"]["components"]["component_threshold"]["rule"] == "best-f1"
    md = (out / "report.md").read_text()
    assert f"{pixel['ap']:.4f}" in md and "latency p50" in md

    for name in ("pr_curve.png", "roc_curve.png", "score_histogram.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100, name
        assert rep["plots"][name.removesuffix(".png")] == name

    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    assert len(frames) == FRAMES == rep["video"]["frames"]
    height, width = frames[0].shape[:2]
    assert width % 3 == 0 and height > width / 3 / 2  # three 2:1 panels, key band below
    assert float(np.std(frames[0])) > 10  # pictures, not a blank frame

    from rosbags.highlevel import AnyReader

    with AnyReader([out / "replay" / "live_bag"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {f"/pixood_node/{name}": FRAMES for name in OUTPUT_TOPICS}
    assert (out / "sample_bag" / "metadata.yaml").is_file()

    # a second run replaces the first one's results in the same folder
    rc = demo.main(
        ["--model", str(model), "--out", str(out), "--frames", "2", "--rate", "4", *SMALL,
         *_domain()]
    )  # fmt: skip
    assert rc == 0
    assert json.loads((out / "report.json").read_text())["replay"]["published"] == 2


@pytest.mark.slow
@pytest.mark.ros
def test_ctrl_c_stops_the_node(tmp_path, model):
    pytest.importorskip("rclpy")
    out = tmp_path / "demo"
    command = [
        sys.executable, "-m", "pixood_ros.demo", "--model", str(model), "--out", str(out),
        "--frames", "40", "--rate", "2", *SMALL, *_domain(),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    node_pid = None
    deadline = time.monotonic() + 120
    try:
        for line in process.stdout:
            if "node pid" in line:
                node_pid = int(line.split("node pid")[1].split()[0])
                break
            assert time.monotonic() < deadline
        assert node_pid is not None, process.stderr.read()
        time.sleep(2.0)  # in the middle of the 20 s replay
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "interrupted; the node was stopped" in process.stderr.read()
    assert _process_gone(node_pid)
