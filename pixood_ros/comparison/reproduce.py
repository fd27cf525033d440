"""`pixood-benchmark --reproduce`: the benchmark table from nothing, with the commands a person
would type, each printed before it runs:

1. `pixood-synth DATA_ROOT` (the training data of the config, when not there yet),
2. `pixood-synth WORK/bench_data` with the benchmark splits (same seed and size),
3. `pixood-train all --config CONFIG --out EXPERIMENT` (default experiments/<config stem>, the
   place pixood-train uses by itself; it resumes or skips finished stages),
4. `pixood-export EXPERIMENT/checkpoints/<scorer> -o WORK/models/<scorer>.onnx` per scorer,
5. `pixood-benchmark <scorer>=WORK/models/<scorer>.onnx ... --data WORK/bench_data -o OUT`.

This module runs steps 1-4 and hands step 5 to the command as a `Comparison`. Training and export
run as separate processes (the runtime package never imports PyTorch); they need the training
extra (`pip install -e '.[train]'`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pixood_ros.comparison.specs import BenchmarkError, Comparison, ModelSpec

SYNTH_SPLIT_OPTIONS = {
    "ood_val": "--ood-val",
    "ood_small": "--ood-small",
    "ood_roadlike": "--ood-roadlike",
    "ood_shift": "--ood-shift",
}

Step = tuple[str, list[str], bool]  # (what, command, already done)


class StepFailed(Exception):
    """A step of the chain exited with an error (its own output says why): exit code 1."""


def _script(name: str) -> str:
    """The console script next to this Python (the venv), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise BenchmarkError(f"{name} not found (pip install -e '.[train]' installs it)")
    return found


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BenchmarkError(f"training config not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
        root = Path(cfg["data"]["root"])
        scorers = list(cfg["decide"]["scorers"])
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise BenchmarkError(f"{path}: cannot read data.root / decide.scorers ({exc})") from exc
    if cfg["data"].get("kind", "synth") != "synth":
        raise BenchmarkError(f"{path}: --reproduce needs a pixood-synth config (data.kind: synth)")
    return {"root": root, "scorers": scorers}


def _has_synth(root: Path, counts: dict[str, int] | None = None) -> bool:
    meta = root / "meta.json"
    if not meta.is_file():
        return False
    if counts is None:
        return True
    try:
        have = json.loads(meta.read_text()).get("counts", {})
    except (OSError, ValueError):
        return False
    return all(have.get(split) == count for split, count in counts.items())


def _export_steps(scorers: list[str], experiment: Path, models: Path) -> list[Step]:
    """Step 4, per scorer; a model newer than its checkpoint is not exported again."""
    export = _script("pixood-export")
    steps = []
    for scorer in scorers:
        ckpt = experiment / "checkpoints" / scorer
        onnx = models / f"{scorer}.onnx"
        weights = ckpt / "model.safetensors"
        done = (
            onnx.is_file() and weights.is_file() and onnx.stat().st_mtime > weights.stat().st_mtime
        )
        steps.append((f"export {scorer}", [export, str(ckpt), "-o", str(onnx)], done))
    return steps


def plan(args: argparse.Namespace) -> tuple[list[Step], Comparison]:
    """Steps 1-4 and the comparison step 5 runs (its `chain` lists all five commands)."""
    cfg = _read_config(args.config)
    work: Path = args.work
    bench_data = work / "bench_data"
    experiment = args.experiment or Path("experiments") / args.config.stem
    models = work / "models"
    splits = list(args.splits)
    unknown = [s for s in splits if s not in SYNTH_SPLIT_OPTIONS]
    if unknown:
        raise BenchmarkError(
            f"--reproduce can generate only {', '.join(SYNTH_SPLIT_OPTIONS)}, not {unknown[0]}"
        )
    synth, train = _script("pixood-synth"), _script("pixood-train")
    counts = {split: args.eval_frames for split in splits}
    bench_command = [synth, str(bench_data), "--train", "0", "--val", "0"]
    for split, option in SYNTH_SPLIT_OPTIONS.items():
        bench_command += [option, str(counts.get(split, 0))]
    quiet = ["--no-progress"] if args.no_progress else []
    train_command = [train, "all", "--config", str(args.config), "--out", str(experiment)]
    steps = [
        ("training data", [synth, str(cfg["root"]), *quiet], _has_synth(cfg["root"])),
        ("benchmark data", [*bench_command, *quiet], _has_synth(bench_data, counts)),
        ("training", [*train_command, *quiet], False),
        *_export_steps(cfg["scorers"], experiment, models),
    ]
    specs = [ModelSpec(s, models / f"{s}.onnx") for s in cfg["scorers"]]
    benchmark_command = [
        "pixood-benchmark",
        *(f"{m.name}={m.path}" for m in specs),
        "--data", str(bench_data), "-o", str(args.out_dir),
        "--splits", *splits,
    ]  # fmt: skip
    if args.eval_region != "auto":
        benchmark_command += ["--eval-region", args.eval_region]
    chain = [_shown(c) for _, c, _ in steps] + [shlex.join(benchmark_command)]
    return steps, Comparison(specs, bench_data, splits, chain)


def _shown(command: list[str]) -> str:
    """The command as a user types it (console-script names, not venv paths)."""
    return shlex.join([Path(command[0]).name, *command[1:]])


def prepare(args: argparse.Namespace) -> Comparison | None:
    """Run steps 1-4 (skipping finished ones) and return step 5 for the command to run; with
    `--dry-run` print the chain instead and return None. StepFailed when a step fails."""
    steps, comparison = plan(args)
    assert comparison.chain is not None
    if args.dry_run:
        print("\n".join(comparison.chain))
        return None
    total = len(steps) + 1
    for index, (what, step, done) in enumerate(steps, start=1):
        if done:
            print(f"[{index}/{total}] {what}: already done, skipped", flush=True)
            continue
        print(f"[{index}/{total}] {what}: {_shown(step)}", flush=True)
        code = subprocess.run(step, check=False).returncode
        if code:
            raise StepFailed(f"{what} failed (exit code {code})")
    print(f"[{total}/{total}] benchmark: {comparison.chain[-1]}", flush=True)
    return comparison
