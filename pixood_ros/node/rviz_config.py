"""The rviz2 layout for a launched node: `config/pixood.rviz` (written for the defaults, no
namespace, image:=/camera/image_raw) with its topics pointed at what the node really uses, so
that `rviz:=true` shows the camera and the outputs after a namespace, node name or remap.

Used by `launch/pixood.launch.py` at launch time; pure text in and out, testable without ROS.
"""

from __future__ import annotations

import posixpath

import yaml

IMAGE_DISPLAY = "rviz_default_plugins/Image"
CAMERA_DISPLAY = "Camera"  # the display showing the camera itself; the others show outputs


def launched_topics(namespace: str, node_name: str, image: str, transport: str) -> tuple[str, str]:
    """(camera topic rviz subscribes, the node's topic prefix) as ROS resolves them.

    A relative image topic lives in the node's namespace; with compressed transport rviz2 is
    given `<image>/compressed`, from which it picks its compressed image_transport."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    camera = image if image.startswith("/") else f"{ns}/{image}"
    if transport == "compressed":
        camera += "/compressed"
    return camera, f"{ns}/{node_name}"


def rviz_config(template: str, camera_topic: str, node_prefix: str) -> str:
    """`template` (an rviz2 YAML layout) with the camera display on `camera_topic` and every
    other image display on the same output below `node_prefix`."""
    layout = yaml.safe_load(template)
    for display in layout["Visualization Manager"]["Displays"]:
        if display.get("Class") != IMAGE_DISPLAY:
            continue
        topic = display["Topic"]
        if display.get("Name") == CAMERA_DISPLAY:
            topic["Value"] = camera_topic
        else:
            topic["Value"] = posixpath.join(node_prefix, posixpath.basename(topic["Value"]))
    return yaml.safe_dump(layout, sort_keys=False)
