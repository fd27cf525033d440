"""One declared node parameter and its ROS descriptor (description, range, choices), so that
`ros2 param describe` explains it and rclpy enforces its range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter. `default` None means 'unset' (typed by `type_`)."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    type_: Parameter.Type | None = None
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only
        )
        if self.float_range is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(self.float_range[0]),
                    to_value=float(self.float_range[1]),
                    step=0.0,
                )
            ]
        if self.int_range is not None:
            descriptor.integer_range = [
                IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1], step=1)
            ]
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.type_ is Parameter.Type.STRING_ARRAY:
            descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
        return descriptor
