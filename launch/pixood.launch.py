"""Start pixood_node for one camera.

  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw
  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw transport:=compressed \
      model:=/path/to/model.onnx namespace:=front use_sim_time:=true

The node configures and activates itself (parameter autostart); set autostart:=false to drive
its lifecycle from a lifecycle manager instead.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pixood_ros.node.launch_arguments import common_arguments, flag, flag_value, share_path
from pixood_ros.node.parameters import INPUT_QOS_CHOICES


def generate_launch_description() -> LaunchDescription:
    arguments = [
        *common_arguments(),
        DeclareLaunchArgument(
            "image",
            default_value="/camera/image_raw",
            description="Camera image topic (raw sensor_msgs/Image; with transport:=compressed "
            "the node subscribes <image>/compressed)",
        ),
        DeclareLaunchArgument(
            "input_qos",
            default_value="auto",
            choices=list(INPUT_QOS_CHOICES),
            description="Input QoS: auto (follow the camera's publisher), sensor_data (best "
            "effort) or reliable",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the node (e.g. camera name)"
        ),
        DeclareLaunchArgument(
            "node_name", default_value="pixood_node", description="Name of the node"
        ),
        flag("autostart", "true", "Configure and activate the lifecycle node right away"),
        flag("rviz", "false", "Also start rviz2 showing camera, overlay and mask"),
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
                "autostart": flag_value("autostart"),
                "use_sim_time": flag_value("use_sim_time"),
            },
        ],
        # The base topic is enough: with input_transport compressed the node listens on
        # <image>/compressed, and on <dirname of image>/camera_info for the camera info.
        remappings=[("image", LaunchConfiguration("image"))],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", share_path("config/pixood.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
        parameters=[{"use_sim_time": flag_value("use_sim_time")}],
    )
    return LaunchDescription([*arguments, node, rviz])
