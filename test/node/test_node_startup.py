"""Starting and stopping the node as a user does: a bad start-up parameter is one line and exit
code 2, a misspelt parameter in a params file is named in a warning, and Ctrl-C or SIGTERM end
the node cleanly (exit code 0, no ERROR line)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.parameter import Parameter

from pixood_ros.node.parameters import SettingsError
from pixood_ros.node.pixood_node import PixoodNode

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]


def _node_command(*ros_args: str) -> list[str]:
    return [sys.executable, "-m", "pixood_ros.node.main", "--ros-args", *ros_args]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


@pytest.fixture
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    yield context
    rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("threshold", 2.0, "parameter threshold is 2.0; use a value from 0.0 to 1.0"),
        ("threshold", "abc", "parameter threshold is 'abc', not a number with a decimal point"),
        ("threshold", 1, "write e.g. threshold:=0.995"),
        ("input_queue_depth", 0, "parameter input_queue_depth is 0; use a value from 1 to 100"),
        ("max_pixels", -5, "parameter max_pixels is -5; use a value from 1 to"),
        ("diagnostics_period", 0.0, "diagnostics_period is 0.0; use a value from 0.05 to 60.0"),
        ("drop_warn_ratio", 1.5, "drop_warn_ratio is 1.5; use a value from 0.0 to 1.0"),
        ("input_transport", "ros", "input_transport is 'ros'; use one of raw, compressed"),
        (
            "input_qos",
            "best_effort",
            "input_qos is 'best_effort'; use one of auto, sensor_data, reliable",
        ),
        ("cameras", "front", "cameras is 'front', not a list of strings; write e.g. cameras:=["),
        ("autostart", "yes", "autostart is 'yes', not true or false"),
        ("jpeg_quality", 0, "parameter jpeg_quality is 0; use a value from 1 to 100"),
        ("png_level", 10, "parameter png_level is 10; use a value from 0 to 9"),
        ("publish_compressed", 1, "publish_compressed is 1, not true or false"),
    ],
)
def test_bad_start_up_value_is_one_clear_error(ros_context, name, value, message):
    with pytest.raises(SettingsError) as info:
        PixoodNode(context=ros_context, parameter_overrides=[Parameter(name, value=value)])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("-p threshold:=2.0", "parameter threshold is 2.0; use a value from 0.0 to 1.0"),
        ("-p threshold:=abc", "parameter threshold is 'abc', not a number with a decimal point"),
        ("-p input_transport:=ros", "parameter input_transport is 'ros'; use one of raw, "),
        ("-p threshold", "Failed to parse ROS arguments: Couldn't parse parameter override"),
        ("--params-file /nonexistent.yaml", "Couldn't parse params file: '--params-file /non"),
    ],
)
def test_bad_start_up_parameter_exits_2_with_one_line(arguments, message):
    result = subprocess.run(
        _node_command(*arguments.split()),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixood_node: error: "), lines
    assert message in lines[0] and ", at /" not in lines[0], lines
    assert result.stdout == ""


PARAMS_WITH_TYPOS = """\
/**:
  ros__parameters:
    threshhold: 0.5
    providers: [cpu]
{node}:
  ros__parameters:
    model_path: {model}
    input_qoss: reliable
    frobnicate: 3
"""


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    """Lines the process printed up to the one containing `text` (fails after `timeout`)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    pytest.fail(f"no {text!r} in time; output: {''.join(lines)}")


def _run_until(command: list[str], line: str, stop_signal: int) -> tuple[int, str]:
    """Start the node, send `stop_signal` once it printed `line`; exit code and all output."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = _wait_for_line(process, line, timeout=60.0)
        process.send_signal(stop_signal)
        rest, _ = process.communicate(timeout=20.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, "".join(lines) + rest


def _assert_clean(code: int, output: str) -> None:
    assert code == 0, output
    assert "ERROR" not in output and "Failed to publish" not in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_misspelt_parameters_warned_and_signals_end_the_node_cleanly(
    tmp_path, model_path, stop_signal
):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_WITH_TYPOS.format(node="pixood_startup", model=model_path))
    command = _node_command("--params-file", str(params), "-r", "__node:=pixood_startup")
    code, output = _run_until(command, "active: listening on", stop_signal)
    _assert_clean(code, output)
    for warning in (
        "ignoring unknown parameter 'threshhold' (did you mean threshold?)",
        "ignoring unknown parameter 'input_qoss' (did you mean input_qos?)",
        "ignoring unknown parameter 'frobnicate'\n",
    ):
        assert warning in output, output


def test_ctrl_c_during_start_up_ends_the_node_cleanly(model_path):
    """The signal lands while the node configures or activates (a model load can take minutes)."""
    command = _node_command("-p", f"model_path:={model_path}", "-p", "providers:=[cpu]")
    _assert_clean(*_run_until(command, "configured: model", signal.SIGINT))
