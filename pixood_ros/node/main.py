"""Entry point of `pixood_node` (`ros2 run pixood_ros pixood_node` or
`python -m pixood_ros.node.main --ros-args -p model_path:=model.onnx -r image:=/camera/image`).
"""

from __future__ import annotations

import argparse
import sys

from pixood_ros.cli import EXIT_OK, EXIT_USAGE, OneLineParser, argv_or_sys, fail
from pixood_ros.node.parameters import describe_parameters

PROG = "pixood_node"

DESCRIPTION = """\
PixOOD anomaly segmentation node (ROS 2 lifecycle node).

Subscribes 'image' (sensor_msgs/Image) or 'image/compressed' (input_transport:=compressed) and
publishes ~/anomaly_score (32FC1), ~/anomaly_mask (mono8), ~/semantic (mono8),
~/confidence (32FC1) and ~/overlay (bgr8) with the input header, plus /diagnostics.
Parameters and remappings go after --ros-args, e.g.
  pixood_node --ros-args -p model_path:=model.onnx -r image:=/camera/image_raw
  pixood_node --ros-args --params-file config/pixood.yaml
"""


def _parser() -> argparse.ArgumentParser:
    return OneLineParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog="parameters:\n" + describe_parameters(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the node until Ctrl-C; 2 when autostart cannot configure (e.g. missing model).

    Ctrl-C (and `ros2 launch` stopping the node) is the normal end of a node: exit code 0."""
    argv = argv_or_sys(argv)
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.utilities import remove_ros_args

    non_ros = remove_ros_args([PROG, *argv])[1:]
    _parser().parse_args(non_ros)  # --help, or exit 2 on unknown options

    from pixood_ros.node.memory import keep_frame_buffers
    from pixood_ros.node.pixood_node import PixoodNode

    keep_frame_buffers()
    rclpy.init(args=[PROG, *argv])
    node = None
    try:
        node = PixoodNode()
        if node.get_parameter("autostart").value and not node.autostart():
            return fail(PROG, "could not configure/activate (see the log above)", EXIT_USAGE)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if node.lifecycle_state in ("active", "inactive"):
                node.trigger_shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
