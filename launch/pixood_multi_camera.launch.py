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

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _camera_names(context) -> list[str]:
    raw = LaunchConfiguration("cameras").perform(context)
    names = [name.strip().strip("/") for name in raw.split(",") if name.strip()]
    if not names:
        raise RuntimeError("cameras:= must list at least one camera name, e.g. front,rear")
    return names


def _nodes(context, *args, **kwargs):
    names = _camera_names(context)
    suffix = LaunchConfiguration("image_suffix").perform(context).strip("/")
    transport = LaunchConfiguration("transport").perform(context)
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context) == "true"
    common = {
        "model_path": LaunchConfiguration("model").perform(context),
        "input_transport": transport,
        "use_sim_time": use_sim_time,
        "autostart": True,
    }
    params_file = LaunchConfiguration("params_file").perform(context)
    if LaunchConfiguration("shared_model").perform(context) == "true":
        remappings = []
        for name in names:
            remappings.append((f"{name}/image", f"/{name}/{suffix}"))
            remappings.append((f"{name}/image/compressed", f"/{name}/{suffix}/compressed"))
        return [
            Node(
                package="pixood_ros",
                executable="pixood_node",
                name="pixood_node",
                output="screen",
                parameters=[params_file, {**common, "cameras": names}],
                remappings=remappings,
            )
        ]
    return [
        Node(
            package="pixood_ros",
            executable="pixood_node",
            name="pixood_node",
            namespace=name,
            output="screen",
            parameters=[params_file, common],
            remappings=[
                ("image", f"/{name}/{suffix}"),
                ("image/compressed", f"/{name}/{suffix}/compressed"),
            ],
        )
        for name in names
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("pixood_ros")
    return LaunchDescription(
        [
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
            DeclareLaunchArgument(
                "shared_model",
                default_value="true",
                choices=["true", "false"],
                description="true: one node and one model for all cameras; false: one node "
                "per camera namespace",
            ),
            DeclareLaunchArgument(
                "model",
                default_value=os.path.join(share, "checkpoints", "pixood_demo.onnx"),
                description="PixOOD ONNX model file",
            ),
            DeclareLaunchArgument(
                "transport",
                default_value="raw",
                choices=["raw", "compressed"],
                description="Input transport of every camera",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "pixood.yaml"),
                description="Parameter file (/**: ros__parameters:) with all node defaults",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=["true", "false"],
                description="Use /clock (bag replay with --clock)",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
