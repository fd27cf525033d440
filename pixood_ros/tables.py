"""Numbers and tables in the reports (Markdown and console), formatted one way everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "n/a"


def fmt(value: Any, digits: int = 4) -> str:
    """`value` with `digits` decimals; `n/a` for None, NaN and infinities; ints and text as is."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, int, str)):
        return str(value)
    value = float(value)
    return MISSING if not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table as lines: header, separator, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
