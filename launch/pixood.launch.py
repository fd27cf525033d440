"""Start pixood_node for one camera.

  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw
  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw transport:=compressed \
      model:=/path/to/model.onnx namespace:=front use_sim_time:=true

The node configures and activates itself (parameter autostart); set autostart:=false to drive
its lifecycle from a lifecycle manager instead.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("pixood_ros")
    default_params = os.path.join(share, "config", "pixood.yaml")
    default_model = os.path.join(share, "checkpoints", "pixood_demo.onnx")
    rviz_config = os.path.join(share, "config", "pixood.rviz")

    arguments = [
        DeclareLaunchArgument(
            "model", default_value=default_model, description="PixOOD ONNX model file"
        ),
        DeclareLaunchArgument(
            "image",
            default_value="/camera/image_raw",
            description="Camera image topic (raw sensor_msgs/Image; with transport:=compressed "
            "the node subscribes <image>/compressed)",
        ),
        DeclareLaunchArgument(
            "transport",
            default_value="raw",
            choices=["raw", "compressed"],
            description="Input transport: raw Image or CompressedImage (jpeg/png)",
        ),
        DeclareLaunchArgument(
            "input_qos",
            default_value="sensor_data",
            choices=["sensor_data", "reliable"],
            description="Input QoS: sensor_data (best effort, works with every camera) or reliable",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the node (e.g. camera name)"
        ),
        DeclareLaunchArgument(
            "node_name", default_value="pixood_node", description="Name of the node"
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=default_params,
            description="Parameter file (/**: ros__parameters:) with all node defaults",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use /clock (set true when replaying a bag with ros2 bag play --clock)",
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            choices=["true", "false"],
            description="Configure and activate the lifecycle node right away",
        ),
        DeclareLaunchArgument(
            "rviz",
            default_value="false",
            choices=["true", "false"],
            description="Also start rviz2 showing camera, overlay and mask",
        ),
    ]

    node = Node(
        package="pixood_ros",
        executable="pixood_node",
        name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model_path": LaunchConfiguration("model"),
                "input_transport": LaunchConfiguration("transport"),
                "input_qos": LaunchConfiguration("input_qos"),
                "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool),
                "use_sim_time": ParameterValue(
                    LaunchConfiguration("use_sim_time"), value_type=bool
                ),
            },
        ],
        # Both remappings are given; input_transport decides which topic is subscribed.
        remappings=[
            ("image", LaunchConfiguration("image")),
            (
                "image/compressed",
                PythonExpression(["'", LaunchConfiguration("image"), "/compressed'"]),
            ),
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", rviz_config],
        condition=IfCondition(LaunchConfiguration("rviz")),
        parameters=[
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}
        ],
    )
    return LaunchDescription([*arguments, node, rviz])
