"""Start pixood_node for one camera.

  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw
  ros2 launch pixood_ros pixood.launch.py image:=/camera/image_raw transport:=compressed \
      model:=/path/to/model.onnx namespace:=front use_sim_time:=true

The node configures and activates itself (parameter autostart); set autostart:=false to drive
its lifecycle from a lifecycle manager instead.
"""

from __future__ import annotations

import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pixood_ros.node.launch_arguments import common_arguments, flag, flag_value, share_path
from pixood_ros.node.parameters import INPUT_QOS_CHOICES
from pixood_ros.node.rviz_config import launched_topics, rviz_config


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
        flag(
            "rviz",
            "false",
            "Also start rviz2 (installed separately) showing camera, overlay and mask on this "
            "launch's topics",
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
                "autostart": flag_value("autostart"),
                "use_sim_time": flag_value("use_sim_time"),
            },
        ],
        # The base topic is enough: with input_transport compressed the node listens on
        # <image>/compressed, and on <dirname of image>/camera_info for the camera info.
        remappings=[("image", LaunchConfiguration("image"))],
    )
    rviz = OpaqueFunction(function=_rviz, condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*arguments, node, rviz])


def _rviz(context, *args, **kwargs) -> list[Node]:
    """rviz2 with config/pixood.rviz pointed at this launch's topics (namespace, node name,
    image remap and transport), written to a temporary file."""
    camera, prefix = launched_topics(
        LaunchConfiguration("namespace").perform(context),
        LaunchConfiguration("node_name").perform(context),
        LaunchConfiguration("image").perform(context),
        LaunchConfiguration("transport").perform(context),
    )
    with open(share_path("config/pixood.rviz")) as stream:
        layout = rviz_config(stream.read(), camera, prefix)
    with tempfile.NamedTemporaryFile("w", prefix="pixood_", suffix=".rviz", delete=False) as out:
        out.write(layout)
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", out.name],
            parameters=[{"use_sim_time": flag_value("use_sim_time")}],
        )
    ]
