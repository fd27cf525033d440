"""What an evaluation hands back and where it writes: the result object and the output folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixood_ros.cli import UserError


@dataclass
class EvalResult:
    """The report (also written to the output folder), the exit code and, when the run failed,
    the one-line reason; `failed_frames` lists frames that could not be evaluated."""

    report: dict[str, Any]
    exit_code: int
    error: str | None = None
    failed_frames: list[dict[str, Any]] = field(default_factory=list)


def prepare_out_dir(out: Path, produced: list[str], overwrite: bool) -> None:
    """Create `out`; results of an earlier run (`produced` names) are replaced only with
    --overwrite."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    existing = [out / name for name in produced if (out / name).exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace the results)")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
