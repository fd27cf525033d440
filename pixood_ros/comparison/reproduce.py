"""`pixood-benchmark --reproduce`: the benchmark table from nothing, with the commands a person
would type, each printed before it runs:

1. `pixood-synth DATA_ROOT` (the training data of the config, when not there yet),
2. `pixood-synth WORK/bench_data` with the benchmark splits (same seed and size),
3. `pixood-train all --config CONFIG --out EXPERIMENT` (default experiments/<config stem>, the
   place pixood-train uses by itself; it resumes or skips finished stages),
   and, when its config exists, the InternImage-OOD family model (`--internimage-config`),
4. `pixood-export EXPERIMENT/checkpoints/<name> -o WORK/models/<name>.onnx` per checkpoint
   (`comparison.rows` says which rows come from which checkpoint and anomaly map),
5. `pixood-benchmark "NAME=WORK/models/<name>.onnx[@MODE]" ... --data WORK/bench_data -o OUT`.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixood_ros.comparison.rows import Row, comparison_rows, legend, spec_text
from pixood_ros.comparison.specs import BenchmarkError, Comparison, ModelSpec
from pixood_ros.metrics.protocols import DEFAULT_PROTOCOL

SYNTH_SPLIT_OPTIONS = {
    "ood_val": "--ood-val",
    "ood_small": "--ood-small",
    "ood_roadlike": "--ood-roadlike",
    "ood_shift": "--ood-shift",
}

DEFAULT_EVAL_LABELS = [0, 1]


@dataclass(frozen=True)
class Step:
    what: str
    command: list[str]
    done: bool
    #: an export of a checkpoint that a training stage may not write (skipped when absent)
    optional: bool = False


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
        eval_labels = list((cfg.get("model") or {}).get("eval_labels", DEFAULT_EVAL_LABELS))
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise BenchmarkError(f"{path}: cannot read data.root / decide.scorers ({exc})") from exc
    if cfg["data"].get("kind", "synth") != "synth":
        raise BenchmarkError(f"{path}: --reproduce needs a pixood-synth config (data.kind: synth)")
    return {"root": root, "scorers": scorers, "eval_labels": eval_labels}


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


def _export_steps(rows: list[Row]) -> list[Step]:
    """Step 4, once per checkpoint, always run: a file exported earlier may come from an older
    exporter (another graph, no `unknown_score`), which no file date shows."""
    export = _script("pixood-export")
    steps, seen = [], set()
    for row in rows:
        if row.onnx in seen:
            continue
        seen.add(row.onnx)
        command = [export, str(row.checkpoint), "-o", str(row.onnx)]
        steps.append(Step(f"export {row.onnx.stem}", command, False, row.optional))
    return steps


def _training(config: Path, experiment: Path, quiet: list[str]) -> list[Step]:
    """Steps 1 and 3 for one training config: its data (when missing) and its training."""
    cfg = _read_config(config)
    synth, train = _script("pixood-synth"), _script("pixood-train")
    command = [train, "all", "--config", str(config), "--out", str(experiment), *quiet]
    return [
        Step("training data", [synth, str(cfg["root"]), *quiet], _has_synth(cfg["root"])),
        Step(f"training ({config.stem})", command, False),
    ]


def plan(args: argparse.Namespace) -> tuple[list[Step], Comparison]:
    """Steps 1-4 and the comparison step 5 runs (its `chain` lists all five commands)."""
    cfg = _read_config(args.config)
    work: Path = args.work
    bench_data = work / "bench_data"
    experiment = args.experiment or Path("experiments") / args.config.stem
    splits = list(args.splits or SYNTH_SPLIT_OPTIONS)
    unknown = [s for s in splits if s not in SYNTH_SPLIT_OPTIONS]
    if unknown:
        raise BenchmarkError(
            f"--reproduce can generate only {', '.join(SYNTH_SPLIT_OPTIONS)}, not {unknown[0]}"
        )
    counts = {split: args.eval_frames for split in splits}
    bench_command = [_script("pixood-synth"), str(bench_data), "--train", "0", "--val", "0"]
    for split, option in SYNTH_SPLIT_OPTIONS.items():
        bench_command += [option, str(counts.get(split, 0))]
    quiet = ["--no-progress"] if args.no_progress else []
    first, train = _training(args.config, experiment, quiet)
    steps = [
        first,
        Step("benchmark data", [*bench_command, *quiet], _has_synth(bench_data, counts)),
    ]
    steps.append(train)
    internimage = args.internimage_config
    extra = None
    if internimage is not None and internimage.is_file():
        extra = Path("experiments") / internimage.stem
        data_step, train_step = _training(internimage, extra, quiet)
        if data_step.command != first.command:
            steps.append(data_step)
        steps.append(train_step)
    rows = comparison_rows(cfg["scorers"], cfg["eval_labels"], experiment, work / "models", extra)
    steps += _export_steps(rows)
    specs = [ModelSpec(row.name, row.onnx, row.mode) for row in rows]
    return steps, Comparison(specs, bench_data, splits, legend=legend(rows, cfg["eval_labels"]))


def chain(steps: list[Step], comparison: Comparison, args: argparse.Namespace) -> list[str]:
    """The commands of the chain as a user types them, the benchmark command last."""
    benchmark_command = [
        "pixood-benchmark",
        *(spec_text(m) for m in comparison.models),
        "--data", str(comparison.data), "-o", str(args.out_dir),
        "--splits", *(comparison.splits or []),
    ]  # fmt: skip
    if args.eval_region != "auto":
        benchmark_command += ["--eval-region", args.eval_region]
    if args.protocol != DEFAULT_PROTOCOL:
        benchmark_command += ["--protocol", args.protocol]
    return [_shown(step.command) for step in steps] + [shlex.join(benchmark_command)]


def _shown(command: list[str]) -> str:
    """The command as a user types it (console-script names, not venv paths)."""
    return shlex.join([Path(command[0]).name, *command[1:]])


def prepare(args: argparse.Namespace) -> Comparison | None:
    """Run steps 1-4 (skipping finished ones) and return step 5 for the command to run; with
    `--dry-run` print the chain instead and return None. StepFailed when a step fails. A row
    whose checkpoint a training stage did not write (`Row.optional`) is left out, and said so."""
    steps, comparison = plan(args)
    if args.dry_run:
        print("\n".join(chain(steps, comparison, args)))
        return None
    total = len(steps) + 1
    for index, step in enumerate(steps, start=1):
        checkpoint = Path(step.command[1]) if step.optional else None
        if checkpoint is not None and not checkpoint.is_dir():
            print(f"[{index}/{total}] {step.what}: no checkpoint {checkpoint}, row left out")
            onnx = Path(step.command[-1])
            comparison.models = [m for m in comparison.models if m.path != onnx]
            continue
        if step.done:
            print(f"[{index}/{total}] {step.what}: already done, skipped", flush=True)
            continue
        print(f"[{index}/{total}] {step.what}: {_shown(step.command)}", flush=True)
        code = subprocess.run(step.command, check=False).returncode
        if code:
            raise StepFailed(f"{step.what} failed (exit code {code})")
    ran = [s for s in steps if not (s.optional and not Path(s.command[1]).is_dir())]
    comparison.chain = chain(ran, comparison, args)
    print(f"[{total}/{total}] benchmark: {comparison.chain[-1]}", flush=True)
    return comparison
