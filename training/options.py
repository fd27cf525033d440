"""Command-line options the training commands share beyond pixood_ros.cli: image sizes as
``HxW`` (``pixood-export --check-sizes``, ``pixood-bench --sizes``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W) for argparse."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 480x640, got {text!r}"
        ) from None
    if height < 2 or width < 2:
        raise argparse.ArgumentTypeError(f"image sizes must be at least 2x2, got {text!r}")
    return height, width


def add_sizes(
    parser: argparse.ArgumentParser, flag: str, defaults: Sequence[str], what: str
) -> None:
    """``flag HxW [HxW ...]`` with `defaults` (as text, shown in the help)."""
    parser.add_argument(
        flag,
        nargs="+",
        type=parse_size,
        default=[parse_size(s) for s in defaults],
        metavar="HxW",
        help=f"{what} (default: {' '.join(defaults)})",
    )
