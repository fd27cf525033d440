"""ROS 2 names given on the command line, checked by the rules of rcl's name validation: a
topic or namespace is tokens of [A-Za-z0-9_] separated by single '/', fully
qualified (leading '/') or relative, no token starting with a digit, no trailing '/'. Names that
break them would be written into bags that ROS tools refuse to play."""

from __future__ import annotations

import argparse
import re

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_problem(name: str, *, namespace: bool) -> str | None:
    """Why `name` is not a valid ROS 2 topic name (or namespace); None when it is."""
    if namespace and name == "/":
        return None
    if not name:
        return "is empty"
    if name.endswith("/"):
        return "ends with '/'"
    tokens = name[1:].split("/") if name.startswith("/") else name.split("/")
    for token in tokens:
        if not token:
            return "has an empty part ('//')"
        if not _TOKEN.fullmatch(token):
            return (
                f"has the part {token!r}: parts are letters, digits and '_' separated by '/', "
                "not starting with a digit"
            )
    return None


def _checked(name: str, namespace: bool) -> str:
    problem = name_problem(name, namespace=namespace)
    if problem is not None:
        kind = "namespace" if namespace else "topic name"
        raise argparse.ArgumentTypeError(f"{name!r} is not a valid ROS 2 {kind}: it {problem}")
    return name


def namespace(text: str) -> str:
    """argparse type: a ROS 2 namespace ('/' included)."""
    return _checked(text, namespace=True)


def topic_name(text: str) -> str:
    """argparse type: a ROS 2 topic name."""
    return _checked(text, namespace=False)
