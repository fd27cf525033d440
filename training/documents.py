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
    """``parse`` of the UTF-8 text of ``path``. A missing, unreadable, binary or malformed file
    (or a directory) raises ``error`` with one line naming ``<what>`` and ``path``."""
    if path.is_dir():
        raise error(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not a UTF-8 text file ({one_line(exc)})") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {one_line(exc)}") from None
    try:
        return parse(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise error(f"cannot parse {what} {path}: {one_line(exc)}") from None
