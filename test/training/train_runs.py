"""`pixood-train` runs for the training tests: a small synthetic data set and the command run in
a fresh process with the test-sized config (config/train/synth_tiny.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "config" / "train" / "synth_tiny.yaml"
KILL_ENV = "PIXOOD_TRAIN_TEST_KILL"


def synth_set(folder: Path, counts: dict[str, int], width: int, height: int, seed: int = 0) -> Path:
    """A pixood-synth data set in `folder`."""
    from pixood_ros.synth import write_dataset

    write_dataset(folder, counts, width=width, height=height, seed=seed, progress=False)
    return folder


def train(
    stage: str, exp: Path, data: Path, *extra: str, kill: str | None = None
) -> subprocess.CompletedProcess:
    """`pixood-train STAGE` on `data` into `exp`; `kill` = "<stage>:<step>" SIGKILLs the run
    after that saved step (the test hook of training/train/experiment.py)."""
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    if kill:
        env[KILL_ENV] = kill
    cmd = [sys.executable, "-m", "pixood_training.train.cli", stage, "--config", str(TINY_CONFIG),
           f"data.root={data}", "--out", str(exp), "--no-progress", *extra]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
