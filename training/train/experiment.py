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
Everything is written to a temporary file and renamed, so a ``kill -9`` leaves either the old or
the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import TrainConfig, dump_config, section_hash

# Config sections each stage's result depends on (later stages include earlier ones).
STAGE_SECTIONS = {
    "pretrain": ["seed", "model", "data", "pretrain"],
    "stage1": ["seed", "model", "data", "pretrain", "stage1"],
    "condense": ["seed", "model", "data", "pretrain", "stage1", "condense"],
    "decide": ["seed", "model", "data", "pretrain", "stage1", "condense", "decide"],
}
STAGES = list(STAGE_SECTIONS)  # "pretrain" only runs when the config enables it (demo only)


def active_stages(config: TrainConfig) -> list[str]:
    """The stages `all` runs: the pretrain stand-in only when ``pretrain.enabled``."""
    return [s for s in STAGES if s != "pretrain" or config.pretrain.enabled]


# Test hook: PIXOOD_TRAIN_TEST_KILL="<stage>:<step>" SIGKILLs the process right after that stage
# saved its resume state for step <step> (used by test_train.py to test resuming after kill -9).
KILL_ENV = "PIXOOD_TRAIN_TEST_KILL"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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
            atomic_write_text(self.path("config.yaml"), dump_config(self.config))

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
        atomic_write_text(self.path("metrics.json"), json.dumps(metrics, indent=2, sort_keys=True))

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
            atomic_write_text(self.path(stage, "done.json"), json.dumps(record, indent=2))

    def clear_stage(self, stage: str) -> None:
        """Forget a stage's result and resume state (``--force`` or a changed config)."""
        if not self.is_main:
            return
        for name in ("done.json", "state.pt"):
            target = self.path(stage, name)
            if target.exists():
                target.unlink()

    def load_state(self, stage: str) -> dict[str, Any] | None:
        """Resume state of an interrupted stage, if it was written with the same config."""
        path = self.path(stage, "state.pt")
        if not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("config_hash") != self.stage_hash(stage):
            self.log(f"{stage}: ignoring resume state written with a different config")
            return None
        return state

    def save_state(self, stage: str, state: dict[str, Any]) -> None:
        if self.is_main:
            record = {**state, "config_hash": self.stage_hash(stage)}
            atomic_torch_save(record, self.path(stage, "state.pt"))
