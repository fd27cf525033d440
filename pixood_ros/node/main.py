"""Entry point of `pixood_node` (`ros2 run pixood_ros pixood_node` or
`python -m pixood_ros.node.main --ros-args -p model_path:=model.onnx -r image:=/camera/image`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pixood_ros.cli import (
    EXIT_OK,
    EXIT_USAGE,
    OneLineParser,
    UserError,
    argv_or_sys,
    fail,
    one_line,
)
from pixood_ros.node.parameters import describe_parameters

PROG = "pixood_node"
# How often the spin loop looks for a stop signal while no callback is due.
SIGNAL_POLL_S = 0.1

DESCRIPTION = """\
PixOOD anomaly segmentation node (ROS 2 lifecycle node).

Subscribes 'image' (sensor_msgs/Image) or '<image>/compressed' (input_transport:=compressed)
and its sibling 'camera_info'; publishes ~/anomaly_score (32FC1), ~/anomaly_mask (mono8),
~/semantic (mono8), ~/confidence (32FC1) and ~/overlay (bgr8) with the input header,
~/camera_info (the camera's, re-stamped), the latched ~/class_info (JSON) and /diagnostics;
~/enable (std_srvs/SetBool) pauses and resumes processing.
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


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM end the node the same way, with exit code 0.

    While the node configures (a TensorRT build takes minutes) a signal interrupts at once
    (KeyboardInterrupt). Otherwise it only sets a flag that the spin loop reads between
    callbacks, so the node shuts down (worker stopped, 'finalized' published, log sent) while ROS
    is still up. rclpy's own handlers shut ROS down first, and every step after that logged an
    error ("Unable to start transition 7", "Failed to publish log message to rosout")."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.interrupted = False  # a signal cut the start-up short (lifecycle maybe mid-way)
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = not self.requested.is_set()
        self.requested.set()
        if first and self._interruptible:  # a second signal must not break the clean-up
            self.interrupted = True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that a signal interrupts at once (it may already have come)."""
        if self.requested.is_set():
            self.interrupted = True
            raise KeyboardInterrupt
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def spin(self, executor: Any, ros_ok: Callable[[], bool]) -> None:
        """Run `executor` until a signal comes (or ROS is shut down by someone else)."""
        while not self.requested.is_set() and ros_ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)


def main(argv: list[str] | None = None) -> int:
    """Run the node until Ctrl-C or SIGTERM (exit code 0: `ros2 launch` stops nodes that way);
    2, after one line, for a bad start-up parameter or when autostart cannot configure."""
    argv = argv_or_sys(argv)
    with StopSignals() as stop:
        try:
            return _run_node(argv, stop)
        except KeyboardInterrupt:  # while configuring
            return EXIT_OK


def _run_node(argv: list[str], stop: StopSignals) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.impl.implementation_singleton import rclpy_implementation
    from rclpy.signals import SignalHandlerOptions
    from rclpy.utilities import remove_ros_args

    try:  # a malformed -p rule, a missing or broken params file
        non_ros = remove_ros_args([PROG, *argv])[1:]
    except rclpy_implementation.RCLInvalidROSArgsError as error:
        return fail(PROG, str(error).split(", at /")[0], EXIT_USAGE)  # cut rcl's source paths
    _parser().parse_args(non_ros)  # --help, or exit 2 on unknown options

    from pixood_ros.node.memory import keep_frame_buffers
    from pixood_ros.node.pixood_node import PixoodNode

    keep_frame_buffers()
    node = None
    try:
        rclpy.init(args=[PROG, *argv], signal_handler_options=SignalHandlerOptions.NO)
        with stop.interruptible():
            node = PixoodNode()
            if node.get_parameter("autostart").value and not node.autostart():
                return fail(PROG, "could not configure/activate (see the log above)", EXIT_USAGE)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        stop.spin(executor, rclpy.ok)
    except UserError as error:
        return fail(PROG, one_line(error), EXIT_USAGE)
    except ExternalShutdownException:
        pass
    finally:
        if node is not None:
            # After an interrupted start-up the lifecycle may be mid-transition: only destroy.
            active = node.lifecycle_state in ("active", "inactive")
            if active and rclpy.ok() and not stop.interrupted:
                node.trigger_shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
