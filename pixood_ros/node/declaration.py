"""Declaring the parameter table on the node at start-up, where a user's mistakes show first.

A value of the wrong type, out of its range or not among its choices stops the node with one
line that names the parameter and what it takes (`SettingsError`; `main` turns it into exit
code 2), instead of rclpy's traceback. A parameter given for this node that it does not have
(a misspelt name in a params file or a `-p`) is named in a warning with its closest known name:
rclpy would silently ignore it, and the user would believe it applied.
"""

from __future__ import annotations

import difflib
from typing import Any

from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from pixood_ros.node.param_spec import ParamSpec
from pixood_ros.node.parameters import PARAMETER_NAMES, PARAMETERS, SettingsError

# What a value of each default's type looks like, for the error message.
_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number with a decimal point",
    str: "a string",
    list: "a list of strings",
}


def declare_parameters(node: Any) -> None:
    """Declare every parameter of the table on `node` (an rclpy Node); a start-up value that
    does not fit raises SettingsError; unknown parameters given for the node are warned about."""
    given = _given_values(node)
    for spec in PARAMETERS:
        default = spec.type_ if spec.default is None else spec.default
        try:
            value = node.declare_parameter(spec.name, default, spec.descriptor()).value
        except InvalidParameterTypeException:
            raise SettingsError(_type_message(spec, given.get(spec.name))) from None
        except InvalidParameterValueException:
            raise SettingsError(_range_message(spec, given.get(spec.name))) from None
        if spec.choices and value not in spec.choices:
            raise SettingsError(
                f"parameter {spec.name} is {value!r}; use one of {', '.join(spec.choices)}"
            )
    for name in unknown_parameters(given, node.has_parameter):
        node.get_logger().warning(unknown_parameter_message(name))


def unknown_parameters(given: dict[str, Any], known: Any) -> list[str]:
    """Names in `given` for which `known(name)` is false, sorted."""
    return sorted(name for name in given if not known(name))


def unknown_parameter_message(name: str) -> str:
    """The warning for one unknown parameter, with the closest known name if one is close."""
    close = difflib.get_close_matches(name, (*PARAMETER_NAMES, "use_sim_time"), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"ignoring unknown parameter {name!r}{hint}"


def _given_values(node: Any) -> dict[str, Any]:
    """Parameter values given for this node (params files, -p, parameter_overrides), by name.

    rclpy keeps them in `_parameter_overrides` (from Foxy to Rolling) and has no public getter."""
    return {name: p.value for name, p in getattr(node, "_parameter_overrides", {}).items()}


def _example(spec: ParamSpec) -> str:
    if spec.default is None:
        return "[front, rear]"
    if isinstance(spec.default, list):
        return "[" + ", ".join(spec.default) + "]"
    return str(spec.default).lower() if isinstance(spec.default, bool) else str(spec.default)


def _type_message(spec: ParamSpec, value: Any) -> str:
    kind = list if spec.default is None else type(spec.default)
    return (
        f"parameter {spec.name} is {value!r}, not {_TYPE_WORDS[kind]}; "
        f"write e.g. {spec.name}:={_example(spec)}"
    )


def _range_message(spec: ParamSpec, value: Any) -> str:
    low, high = spec.float_range or spec.int_range or (None, None)
    return f"parameter {spec.name} is {value!r}; use a value from {low} to {high}"
