"""The paths `pixood-bag-eval` is given, checked before anything is opened or written: MODEL must
be an ONNX file and BAG a rosbag2 bag (swapped arguments are named as such), and the output
folder must be creatable and writable. Results of an earlier run are replaced only with
--overwrite, never through a symbolic link; temporary files of a killed run are removed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pixood_ros import durable
from pixood_ros.bag import bagio
from pixood_ros.bag.best_f1 import remove_stale_spills
from pixood_ros.cli import UserError

ORDER = "the arguments are MODEL BAG"


def _is_model_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".onnx"


def check_model(model: Path, bag: Path, *, required: bool = True) -> None:
    """UserError when MODEL is a bag, a folder, or (when `required`) missing."""
    if bagio.looks_like_bag(model):
        if _is_model_file(bag):
            raise UserError(f"MODEL and BAG are swapped ({ORDER}): {model} is a bag, {bag} a model")
        raise UserError(f"MODEL {model} is a rosbag2 bag, not an ONNX model ({ORDER})")
    if model.is_dir():
        raise UserError(f"MODEL {model} is a directory, expected an ONNX file")
    if required and not model.exists():
        raise UserError(f"model not found: {model}")


def check_bag(bag: Path) -> None:
    """UserError when BAG is a model file (the other argument); the bag itself is checked when
    it is opened (`bagio.open_reader`)."""
    if _is_model_file(bag):
        raise UserError(f"BAG {bag} is an ONNX model, not a rosbag2 bag ({ORDER})")


def prepare_out_dir(out: Path, produced: list[str], overwrite: bool) -> None:
    """Create `out` and remove what killed runs left there; results of an earlier run
    (`produced` names) are replaced only with --overwrite, and a symbolic link among them is
    never followed or replaced."""
    if os.path.lexists(out) and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"output folder {out} is not writable")
    remove_stale_spills(out)
    durable.remove_stale_temporaries(out)
    existing = [out / name for name in produced if os.path.lexists(out / name)]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace the results)")
    for path in existing:
        if path.is_symlink():
            raise UserError(f"{path} is a symbolic link; not replacing it (remove it yourself)")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
