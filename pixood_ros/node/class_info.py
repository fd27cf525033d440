"""The model's classes for consumers: what the ids in ~/semantic mean and how to colour them.

Published once per configure on the latched topic `~/class_info` (reliable, transient local:
a consumer that starts later still gets it) as a std_msgs/String holding JSON
`{"class_names": [...], "palette": [[r, g, b], ...], "eval_labels": [...], "scorer": "..."}`,
and as the read-only parameter `class_names` (`ros2 param get`).

Why a JSON String: the standard message, vision_msgs/LabelInfo, needs the vision_msgs package,
which the pip-installed ROS this node is tested with does not provide (and it has no palette or
scorer); std_msgs is everywhere and `json.loads` is one line in any consumer.
"""

from __future__ import annotations

import json
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

TOPIC = "~/class_info"
PARAMETER = "class_names"
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
_DESCRIPTOR = ParameterDescriptor(
    name=PARAMETER,
    type=ParameterType.PARAMETER_STRING_ARRAY,
    read_only=True,
    description="Class names of the loaded model, index = class id in ~/semantic (set from the "
    "model's metadata at configure; read-only).",
)


def class_info_json(info: Any) -> str:
    """The JSON text of `~/class_info` for a `pixood_ros.engine.ModelInfo`."""
    return json.dumps(
        {
            "class_names": list(info.class_names),
            "palette": [list(colour) for colour in info.palette],
            "eval_labels": list(info.eval_labels),
            "scorer": info.scorer,
        }
    )


class ClassInfo:
    """Announces the classes of each configured model on `node`."""

    def __init__(self, node: Any) -> None:
        self._node = node
        self._publisher: Any = None

    def announce(self, info: Any) -> None:
        """Set the `class_names` parameter and publish `~/class_info` for model `info`."""
        names = Parameter(PARAMETER, Parameter.Type.STRING_ARRAY, list(info.class_names))
        if not self._node.has_parameter(PARAMETER):
            self._node.declare_parameter(PARAMETER, names.value, _DESCRIPTOR, ignore_override=True)
        else:
            # A read-only parameter can only change with its descriptor given again; rclpy has
            # no public call for that (its own declare_parameters uses this one).
            self._node._set_parameters_atomically_common(
                [names], descriptors={PARAMETER: _DESCRIPTOR}
            )
        if self._publisher is None:
            self._publisher = self._node.create_publisher(String, TOPIC, LATCHED)
        self._publisher.publish(String(data=class_info_json(info)))

    def withdraw(self) -> None:
        """Stop publishing (the model was released)."""
        if self._publisher is not None:
            self._node.destroy_publisher(self._publisher)
            self._publisher = None
