"""The experiment directory: resolved config, logs, metrics, stage bookkeeping, atomic saves.

Layout (one directory per experiment, ``--out``)::

    config.yaml          resolved config of the latest run
    train.log            human-readable log of every run (appended)
    metrics.json         {"stage1": {...}, "condense": {...}, "decide": {...}}
    pretrain/            state.pt (resume), backbone.pt (only with pretrain.enabled, demo only)
    stage1/              state.pt (resume), decoder_best.pt, backbone.pt (random-init backbones)
    condense/            state.pt (resume), condensation result
    cache/train/         feature cache (training/data/feature_cache.py)
    checkpoints/<scorer> checkpoint directories (docs/architecture.md §7.2), ``pixood`` = the model
    <stage>/done.json    written last by a finished stage: config hash + summary

A stage is complete when its ``done.json`` exists with the hash of the config sections it depends
on; a changed config makes it (and every later stage) run again, ``--force`` redoes it anyway.
Everything is written to a temporary file, fsynced and renamed (``pixood_ros.durable``), so a
``kill -9`` or a power cut leaves either the old or the new file, never half of one.

``<stage>/state.pt`` holds tensors and plain values only and is read with
``torch.load(weights_only=True)``, so a file placed in the folder cannot run code; its
``state.json`` (the config hash) is compared first, and a state.pt without a matching record is
never opened.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixood_ros import durable
from pixood_ros.cli import UserError, one_line

from .config import TrainConfig, dump_config, section_hash

# Config sections each stage's result depends on (later stages include earlier ones).
STAGE_SECTIONS = {
    "pretrain": ["seed", "model", "data", "pretrain"],
    "stage1": ["seed", "model", "data", "pretrain", "stage1"],
    "condense": ["seed", "model", "data", "pretrain", "stage1", "condense"],
    "decide": ["seed", "model", "data", "pretrain", "stage1", "condense", "decide"],
}
STAGES = list(STAGE_SECTIONS)  # "pretrain" only runs when the config enables it (demo only)
STATE_FILE, STATE_RECORD = "state.pt", "state.json"


def active_stages(config: TrainConfig) -> list[str]:
    """The stages `all` runs: the pretrain stand-in only when ``pretrain.enabled``; no
    condensation for the InternImage family (training/internimage/stages.py)."""
    skipped = {"pretrain"} if not config.pretrain.enabled else set()
    if config.model.family == "internimage":
        skipped.add("condense")
    return [s for s in STAGES if s not in skipped]


# Test hook: PIXOOD_TRAIN_TEST_KILL="<stage>:<step>" SIGKILLs the process right after that stage
# saved its resume state for step <step> (used by test_train.py to test resuming after kill -9).
KILL_ENV = "PIXOOD_TRAIN_TEST_KILL"


class ExperimentFileError(UserError):
    """A file in the experiment folder cannot be read (damaged, or not written by pixood-train)."""


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` that leaves the old file or the new one, never half of one (fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with durable.replacing(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: Path) -> Any:
    """A ``.pt`` file this tool wrote: tensors and plain values only (``weights_only=True``), so
    a file someone put in the folder cannot run code; a damaged or foreign one is one line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused a global the file names
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it names {named.group(1)})" if named else ""
        reason = f"refusing to load it: it holds more than tensors and plain values{what}"
    except Exception as exc:  # torch raises several types for damaged files
        reason = one_line(exc)
    raise ExperimentFileError(
        f"cannot read {path}: {reason}; it was not written by pixood-train or is damaged "
        "(delete it or rerun with --force)"
    )


def rng_state() -> dict[str, Any]:
    """Every random generator's state as tensors and plain values (loadable with weights_only)."""
    name, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def maybe_test_kill(stage: str, step: int) -> None:
    """Honours the KILL_ENV test hook (no effect unless the variable names this stage/step)."""
    target = os.environ.get(KILL_ENV)
    if target and target == f"{stage}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


class Experiment:
    """Paths and bookkeeping of one experiment directory; only rank 0 writes."""

    def __init__(self, directory: str | Path, config: TrainConfig, *, is_main: bool = True):
        self.dir = Path(directory)
        self.config = config
        self.is_main = is_main
        if is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            for folder in (self.dir, *(self.dir / stage for stage in STAGES)):
                durable.remove_stale_temporaries(folder)  # of a killed run

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    # -- logging --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """One line to stderr and train.log (rank 0 only)."""
        if not self.is_main:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(message, file=sys.stderr, flush=True)
        with open(self.path("train.log"), "a") as handle:
            handle.write(line + "\n")

    def write_config(self) -> None:
        if self.is_main:
            durable.write_text(self.path("config.yaml"), dump_config(self.config))

    # -- metrics --------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.path("metrics.json").read_text())
        except (OSError, ValueError):
            return {}

    def update_metrics(self, stage: str, values: dict[str, Any]) -> None:
        if not self.is_main:
            return
        metrics = self.metrics()
        metrics[stage] = values
        durable.write_text(self.path("metrics.json"), json.dumps(metrics, indent=2, sort_keys=True))

    # -- stage state ----------------------------------------------------------------------
    def stage_hash(self, stage: str) -> str:
        return section_hash(self.config, STAGE_SECTIONS[stage])

    def is_done(self, stage: str) -> bool:
        try:
            record = json.loads(self.path(stage, "done.json").read_text())
        except (OSError, ValueError):
            return False
        return record.get("config_hash") == self.stage_hash(stage)

    def mark_done(self, stage: str, summary: dict[str, Any]) -> None:
        if self.is_main:
            record = {"config_hash": self.stage_hash(stage), "finished": time.time(), **summary}
            self.path(stage).mkdir(parents=True, exist_ok=True)
            durable.write_text(self.path(stage, "done.json"), json.dumps(record, indent=2))

    def clear_stage(self, stage: str) -> None:
        """Forget a stage's result and resume state (``--force`` or a changed config)."""
        if not self.is_main:
            return
        for name in ("done.json", STATE_FILE, STATE_RECORD):
            target = self.path(stage, name)
            if target.exists():
                target.unlink()

    def resume_file(self, stage: str) -> Path | None:
        """``<stage>/state.pt`` if its record says it was written with this config, else None
        (checked before the file is opened)."""
        path = self.path(stage, STATE_FILE)
        if not path.is_file():
            return None
        try:
            record = json.loads(self.path(stage, STATE_RECORD).read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            record = None
        if not isinstance(record, dict) or record.get("config_hash") != self.stage_hash(stage):
            self.log(f"{stage}: ignoring resume state not written with this config")
            return None
        return path

    def load_state(self, stage: str) -> dict[str, Any] | None:
        """Resume state of an interrupted stage, if it was written with the same config."""
        path = self.resume_file(stage)
        if path is None:
            return None
        state = load_torch(path)
        if not isinstance(state, dict) or state.get("config_hash") != self.stage_hash(stage):
            self.log(f"{stage}: ignoring resume state not written with this config")
            return None
        return state

    def save_state(self, stage: str, state: dict[str, Any]) -> None:
        """Tensors and plain values only (``torch.load(weights_only=True)`` reads them back).
        ``state.json`` is written after ``state.pt``: a kill between the two leaves the previous
        record, and the hash inside state.pt is compared again once it is loaded."""
        if self.is_main:
            record = {"config_hash": self.stage_hash(stage)}
            save_torch({**state, **record}, self.path(stage, STATE_FILE))
            durable.write_json(self.path(stage, STATE_RECORD), record)
