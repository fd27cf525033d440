"""Reading the small text documents the training code takes in (training configs, checkpoint
model_config.json, the official release's YAML files) with one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pixood_ros.cli import one_line


def read_document(
    path: Path, parse: Callable[[str], Any], what: str, error: type[Exception]
) -> Any:
    """``parse`` of the text of ``path``. A missing, unreadable or malformed file raises ``error``
    with one line: ``<what> not found: <path>`` or ``cannot parse <what> <path>: <reason>``."""
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return parse(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise error(f"cannot parse {what} {path}: {one_line(exc)}") from None
