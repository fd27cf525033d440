"""Offline tools (pixood-infer, bag evaluation, the demo) render without ROS: importing the render
package and the frame sources loads no ROS module."""

from __future__ import annotations

import subprocess
import sys

ROS_PACKAGES = ("rclpy", "sensor_msgs", "std_msgs", "builtin_interfaces", "rosbags", "cv_bridge")


def test_render_and_frames_import_no_ros():
    code = (
        "import sys\n"
        "import pixood_ros.render.outputs, pixood_ros.render.pictures, pixood_ros.render.video\n"
        "import pixood_ros.frames, pixood_ros.infer\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {ROS_PACKAGES!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
