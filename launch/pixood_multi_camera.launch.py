"""Serve several cameras with PixOOD.

  ros2 launch pixood_ros pixood_multi_camera.launch.py cameras:=front,rear
  ros2 launch pixood_ros pixood_multi_camera.launch.py cameras:=front,rear shared_model:=false

Camera C's images are read from /C/<image_suffix> (default /C/image_raw).
- shared_model:=true (default): ONE node loads the model once and serves every camera
  (parameter `cameras`), publishing /pixood_node/C/anomaly_score etc. Best on one GPU.
- shared_model:=false: one node per camera in namespace C (/C/pixood_node/anomaly_score ...),
  each with its own model instance; cameras are then fully independent processes.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pixood_ros.node.launch_arguments import common_arguments, flag


def _camera_names(context) -> list[str]:
    raw = LaunchConfiguration("cameras").perform(context)
    names = [name.strip().strip("/") for name in raw.split(",") if name.strip()]
    if not names:
        raise RuntimeError("cameras:= must list at least one camera name, e.g. front,rear")
    return names


def _nodes(context, *args, **kwargs) -> list[Node]:
    names = _camera_names(context)
    suffix = LaunchConfiguration("image_suffix").perform(context).strip("/")
    common = {
        "model_path": LaunchConfiguration("model").perform(context),
        "input_transport": LaunchConfiguration("transport").perform(context),
        "use_sim_time": LaunchConfiguration("use_sim_time").perform(context) == "true",
        "autostart": True,
    }
    params_file = LaunchConfiguration("params_file").perform(context)
    if LaunchConfiguration("shared_model").perform(context) == "true":
        remappings = [pair for name in names for pair in _remappings(f"{name}/", name, suffix)]
        return [_pixood_node([params_file, {**common, "cameras": names}], remappings)]
    return [
        _pixood_node([params_file, common], _remappings("", name, suffix), namespace=name)
        for name in names
    ]


def _remappings(local: str, camera: str, suffix: str) -> list[tuple[str, str]]:
    """The node's base topic `<local>image` onto the camera's /<camera>/<suffix> (the node
    derives <suffix>/compressed and the camera_info sibling from it)."""
    return [(f"{local}image", f"/{camera}/{suffix}")]


def _pixood_node(parameters: list, remappings: list, namespace: str | None = None) -> Node:
    return Node(
        package="pixood_ros",
        executable="pixood_node",
        name="pixood_node",
        namespace=namespace,
        output="screen",
        parameters=parameters,
        remappings=remappings,
    )


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *common_arguments(),
            DeclareLaunchArgument(
                "cameras",
                default_value="front,rear",
                description="Comma-separated camera names; camera C publishes /C/<image_suffix>",
            ),
            DeclareLaunchArgument(
                "image_suffix",
                default_value="image_raw",
                description="Image topic of each camera below its name",
            ),
            flag(
                "shared_model",
                "true",
                "true: one node and one model for all cameras; false: one node per camera "
                "namespace",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
