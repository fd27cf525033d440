"""Launch files, parameter file and rviz layout agree with what the node really declares.

`launch`/`launch_ros` are not pip-installable here, so the launch files are checked by parsing
(ast), together with the `pixood_ros` modules they import (the shared launch arguments); where a
ROS install provides them the LaunchDescriptions are loaded as well.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from pixood_ros.node.parameters import DEFAULT_MODEL_PATH, PARAMETER_NAMES, PARAMETERS
from pixood_ros.node.rviz_config import launched_topics, rviz_config

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PARAMS_FILE = ROOT / "config" / "pixood.yaml"
RVIZ_FILE = ROOT / "config" / "pixood.rviz"
# Parameters every ROS node has (launch files may set them too).
ROS_BUILTIN_PARAMETERS = {"use_sim_time"}


def _launch_tree(path: Path) -> ast.Module:
    """The launch file's syntax tree with the trees of the pixood_ros modules it imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in list(tree.body):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pixood_ros."):
            module = ROOT / (node.module.replace(".", "/") + ".py")
            tree.body.extend(ast.parse(module.read_text(), filename=str(module)).body)
    return tree


def _string_constants(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _dict_keys(tree: ast.AST) -> set[str]:
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return keys


# Calls that declare a launch argument: launch's own, and `flag(name, default, description)` of
# pixood_ros.node.launch_arguments.
DECLARING_CALLS = ("DeclareLaunchArgument", "flag")


def _declared_arguments(tree: ast.AST) -> dict[str, ast.Call]:
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in DECLARING_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found[node.args[0].value] = node
    return found


def _launch_configurations(tree: ast.AST) -> set[str]:
    used = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "LaunchConfiguration"
            and isinstance(node.args[0], ast.Constant)
        ):
            used.add(node.args[0].value)
    return used


def test_both_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert {"pixood.launch.py", "pixood_multi_camera.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_parses_and_is_consistent(path):
    tree = _launch_tree(path)
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = _declared_arguments(tree)
    for name, call in declared.items():
        keywords = {k.arg for k in call.keywords}
        described = "description" in keywords or (call.func.id == "flag" and len(call.args) == 3)
        assert described, f"argument {name} has no description"
    used = _launch_configurations(tree)
    assert used <= set(declared), f"undeclared launch arguments: {used - set(declared)}"
    # Node parameters set in the launch file are parameters the node declares.
    node_params = _dict_keys(tree)  # the only dict literals are node parameter overrides
    unknown = node_params - set(PARAMETER_NAMES) - ROS_BUILTIN_PARAMETERS
    assert not unknown, f"parameters the node does not declare: {unknown}"
    assert {"model_path", "input_transport", "use_sim_time"} <= node_params
    # Files it points at are installed by setup.py from these source locations.
    strings = _string_constants(tree)
    assert "pixood_node" in strings and "pixood_ros" in strings
    assert {"config", "pixood.yaml"} <= strings
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "DEFAULT_MODEL_PATH" in names  # the node's own default model, under share/
    assert PARAMS_FILE.is_file()


def test_single_camera_launch_arguments():
    tree = _launch_tree(ROOT / "launch" / "pixood.launch.py")
    declared = set(_declared_arguments(tree))
    assert {"model", "image", "transport", "namespace", "params_file", "use_sim_time"} <= declared
    assert {"autostart", "rviz"} <= declared
    assert "config/pixood.rviz" in _string_constants(tree) and RVIZ_FILE.is_file()


def test_multi_camera_launch_uses_the_cameras_parameter():
    tree = _launch_tree(ROOT / "launch" / "pixood_multi_camera.launch.py")
    assert {"cameras", "image_suffix", "shared_model", "model", "transport"} <= set(
        _declared_arguments(tree)
    )
    assert "cameras" in _dict_keys(tree) | _string_constants(tree)
    assert "cameras" in PARAMETER_NAMES


def _params_yaml() -> dict:
    data = yaml.safe_load(PARAMS_FILE.read_text())
    return data["/**"]["ros__parameters"]


def test_params_file_holds_every_default():
    values = _params_yaml()
    declared = {p.name: p.default for p in PARAMETERS if p.default is not None}
    assert values == declared
    assert values["model_path"] == DEFAULT_MODEL_PATH == "checkpoints/pixood_demo.onnx"
    unset = [p.name for p in PARAMETERS if p.default is None]
    text = PARAMS_FILE.read_text()
    for name in unset:  # documented as a commented example
        assert f"# {name}:" in text


@pytest.mark.ros
def test_params_file_loads_in_rclpy_with_the_declared_types(tmp_path):
    """rcl's YAML parser accepts the file and every value fits its declared type."""
    import rclpy

    from pixood_ros.node.pixood_node import PixoodNode

    context = rclpy.Context()
    rclpy.init(
        args=["x", "--ros-args", "--params-file", str(PARAMS_FILE)],
        context=context,
        domain_id=int(os.environ["ROS_DOMAIN_ID"]),
    )
    try:
        node = PixoodNode(context=context)
        try:
            for name, value in _params_yaml().items():
                assert node.get_parameter(name).value == value, name
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_rviz_layout_shows_camera_overlay_and_mask():
    layout = yaml.safe_load(RVIZ_FILE.read_text())
    topics = {
        d["Topic"]["Value"]
        for d in layout["Visualization Manager"]["Displays"]
        if d["Class"] == "rviz_default_plugins/Image"
    }
    assert {"/camera/image_raw", "/pixood_node/overlay", "/pixood_node/anomaly_mask"} <= topics


@pytest.mark.parametrize(
    ("namespace", "image", "transport", "camera", "prefix"),
    [
        ("", "/camera/image_raw", "raw", "/camera/image_raw", "/pixood_node"),
        ("front", "/cam/image_raw", "raw", "/cam/image_raw", "/front/pixood_node"),
        ("/front/", "camera/image_raw", "raw", "/front/camera/image_raw", "/front/pixood_node"),
        ("", "/cam/image", "compressed", "/cam/image/compressed", "/pixood_node"),
    ],
)
def test_rviz_layout_follows_the_launch_topics(namespace, image, transport, camera, prefix):
    """rviz:=true shows this launch's camera and outputs, not the defaults."""
    topics = launched_topics(namespace, "pixood_node", image, transport)
    assert topics == (camera, prefix)
    original = yaml.safe_load(RVIZ_FILE.read_text())
    layout = yaml.safe_load(rviz_config(RVIZ_FILE.read_text(), *topics))
    shown = {
        d["Name"]: d["Topic"]["Value"]
        for d in layout["Visualization Manager"]["Displays"]
        if d["Class"] == "rviz_default_plugins/Image"
    }
    assert shown == {
        "Camera": camera,
        "Anomaly overlay": f"{prefix}/overlay",
        "Anomaly mask": f"{prefix}/anomaly_mask",
        "Anomaly score": f"{prefix}/anomaly_score",
    }
    for display in (
        *layout["Visualization Manager"]["Displays"],
        *original["Visualization Manager"]["Displays"],
    ):
        display.pop("Topic", None)
    assert layout == original  # nothing else changed


def test_single_camera_launch_starts_rviz_only_on_request_with_its_topics():
    tree = _launch_tree(ROOT / "launch" / "pixood.launch.py")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    opaque = [c for c in calls if getattr(c.func, "id", None) == "OpaqueFunction"]
    assert len(opaque) == 1
    keywords = {k.arg: k.value for k in opaque[0].keywords}
    assert ast.unparse(keywords["condition"]) == "IfCondition(LaunchConfiguration('rviz'))"
    called = {getattr(c.func, "id", None) for c in calls}
    assert {"launched_topics", "rviz_config"} <= called


def _launch_available() -> bool:
    try:
        return importlib.util.find_spec("launch_ros") is not None and hasattr(
            __import__("launch"), "LaunchDescription"
        )
    except ImportError:
        return False


@pytest.mark.skipif(not _launch_available(), reason="ROS 2 launch / launch_ros not installed")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_loads(path):
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except LookupError:  # PackageNotFoundError: package not installed into an ament prefix
        pytest.skip("pixood_ros is not installed in an ament index")
    assert isinstance(description, LaunchDescription)
