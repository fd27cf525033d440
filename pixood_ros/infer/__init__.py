"""`pixood-infer`: a model over images or a video, offline (no ROS). `command` is the command
line and the run; `files` names and writes each frame's outputs."""

from __future__ import annotations

from pixood_ros.infer.command import main

__all__ = ["main"]
