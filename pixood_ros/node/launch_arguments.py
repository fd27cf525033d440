"""Launch arguments that both launch files (`launch/pixood.launch.py`,
`launch/pixood_multi_camera.launch.py`) declare, written once so they cannot drift apart.

Imported by the launch files only: it needs ROS 2's `launch` package, which the rest of
`pixood_ros` never imports.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.parameter_descriptions import ParameterValue

from pixood_ros.node.parameters import DEFAULT_MODEL_PATH, INPUT_TRANSPORTS, PACKAGE

# The parameter file installed with the package: every node default (config/pixood.yaml).
PARAMS_FILE = os.path.join("config", "pixood.yaml")


def share_path(relative: str) -> str:
    """A file installed in the package's share directory."""
    return os.path.join(get_package_share_directory(PACKAGE), relative)


def flag(name: str, default: str, description: str) -> DeclareLaunchArgument:
    """A true/false launch argument."""
    return DeclareLaunchArgument(
        name, default_value=default, choices=["true", "false"], description=description
    )


def flag_value(name: str) -> ParameterValue:
    """The launch argument `name` as a bool node parameter."""
    return ParameterValue(LaunchConfiguration(name), value_type=bool)


def common_arguments() -> list[DeclareLaunchArgument]:
    """model, transport, params_file and use_sim_time: what every PixOOD launch takes."""
    return [
        DeclareLaunchArgument(
            "model",
            default_value=share_path(DEFAULT_MODEL_PATH),
            description="PixOOD ONNX model file",
        ),
        DeclareLaunchArgument(
            "transport",
            default_value="raw",
            choices=list(INPUT_TRANSPORTS),
            description="Input transport of the camera(s): raw Image or CompressedImage (jpeg/png)",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=share_path(PARAMS_FILE),
            description="Parameter file (/**: ros__parameters:) with all node defaults",
        ),
        flag(
            "use_sim_time",
            "false",
            "Use /clock (set true when replaying a bag with ros2 bag play --clock)",
        ),
    ]
