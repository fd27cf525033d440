"""The node as a separate process, started like a user starts it: outputs, bad frames counted
in /diagnostics, Ctrl-C ends it with code 0, and a missing model ends it with one line and code 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_node_graph import (
    assert_outputs_match,
    frames_in_several_encodings,
    make_image_msg,
    rng_image,
)

from pixood_ros import image_conversion as ic

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]


def _node_process(*ros_args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "pixood_ros.node.main", "--ros-args", *ros_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(process: subprocess.Popen, interrupt: bool = True, timeout: float = 10.0):
    """Ctrl-C the node (or wait for it to end by itself); its exit code and output."""
    if interrupt and process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return -9, output
    return process.returncode, output


@pytest.mark.slow
def test_node_as_a_separate_process(graph_factory, model_path, segmenter):
    process = _node_process(
        "-p", f"model_path:={model_path}",
        "-p", "providers:=[cpu]",
        "-p", "input_qos:=reliable",
        "-p", "threshold:=0.3",
        "-r", "__node:=pixood_proc",
        "-r", "image:=/cam/image",
    )  # fmt: skip
    try:
        graph = graph_factory(None, input_topics=("cam/image",), output_prefixes=("/pixood_proc/",))
        graph.wait_connected(timeout=60.0)
        for index, (encoding, pixels, padding) in enumerate(frames_in_several_encodings()[:3]):
            stamp = 3_000_000_000 + index
            msg = make_image_msg(pixels, encoding, stamp, "proc_cam", padding)
            graph.publish(msg, "cam/image")
            outputs = graph.wait_outputs(stamp, prefix="/pixood_proc/", timeout=20.0)
            rgb = ic.image_to_rgb(msg)
            assert_outputs_match(outputs, rgb, segmenter, stamp, "proc_cam", 0.3)
        bad = make_image_msg(rng_image(2, 2, 0), "rgb8", 4)
        bad.encoding = "nonsense"
        graph.publish(bad, "cam/image")

        def bad_counted() -> bool:
            for array in reversed(graph.diagnostics):  # the newest report decides
                for status in array.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if status.name == "/pixood_proc: camera":
                        return values["bad_frames_unsupported_encoding"] == "1"
            return False

        # Wait before the next frame: with input depth 1 a newer frame may replace the bad one
        # in the reader's history before the node sees it (the latest-frame policy).
        assert graph.wait_for(bad_counted, 20.0)
        graph.publish(make_image_msg(rng_image(3, 3, 0), "rgb8", 5), "cam/image")
        graph.wait_outputs(5, prefix="/pixood_proc/", timeout=20.0)
    finally:
        code, output = _stop(process)
    assert code == 0, output
    assert "active: listening on /cam/image" in output
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_process_with_missing_model_exits_with_code_2(tmp_path):
    process = _node_process("-p", f"model_path:={tmp_path / 'missing.onnx'}")
    code, output = _stop(process, interrupt=False, timeout=60.0)
    assert code == 2, output
    assert "not found" in output and "missing.onnx" in output
    assert "pixood_node: error: could not configure/activate" in output
    assert "Traceback" not in output
