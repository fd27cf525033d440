"""``pixood-train``: run the PixOOD training stages into one experiment directory.

    pixood-train all --config config/train/synth_small.yaml --out experiments/synth_small
    pixood-train stage1 --config config/train/cityscapes_vitl14.yaml data.root=/data/cityscapes

Stages: ``stage1`` (decoder), ``condense`` (prototypes), ``decide`` (decision strategy, one
checkpoint directory per scorer under ``EXP/checkpoints/``, anomaly metrics), ``all`` (the three in
order). ``pretrain`` (synthetic demo only, ``pretrain.enabled`` in the config) trains the small
random ViT on the train split as a stand-in for DINOv2's pretraining before the backbone is frozen;
``all`` runs it first when the config enables it, and it is off for real DINOv2 weights.
Finished stages are skipped unless ``--force`` or their config changed; an interrupted stage
resumes from its last saved state. Multi-GPU: ``torchrun --nproc_per_node N -m
pixood_training.train.cli ...`` (DDP for stage 1 and the feature extraction).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pixood_ros.cli import (
    EXIT_INTERRUPTED,
    OneLineParser,
    UserError,
    fail,
    progress_parent,
    run_command,
)

from .config import ConfigError, TrainConfig, load_config
from .distributed import init_distributed, shutdown_distributed
from .experiment import STAGES, Experiment, active_stages

PROG = "pixood-train"


class StageOrderError(UserError):
    """A stage was asked for before the stage it builds on has finished."""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        parents=[progress_parent()],
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Overrides use dotted keys, values in YAML syntax, e.g. stage1.epochs=5 "
        "data.root=/data/cityscapes model.eval_labels=[0,1]. Test hook (not for users): "
        "PIXOOD_TRAIN_TEST_KILL=<stage>:<step> SIGKILLs the run after that saved step.",
    )
    parser.add_argument(
        "stage",
        choices=[*STAGES, "all"],
        help="stage1 = decoder training (CE, best val mIoU); condense = stage 2 prototypes on "
        "cached features; decide = stage 3 decision strategy + checkpoints for every scorer + "
        "anomaly metrics; all = the three in order (preceded by pretrain when the config sets "
        "pretrain.enabled); pretrain = demo-only stand-in for DINOv2 pretraining: trains the "
        "small random ViT on the train split, then it stays frozen",
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="training config YAML (see config/train/)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="config overrides applied after the file (YAML values)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="experiment directory (default: experiments/<config file stem>)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="redo the requested stage(s) even if already complete (later stages are redone too)",
    )
    return parser


def _run_stage(stage: str, exp: Experiment, ctx) -> None:
    from .condense import run_condense
    from .decide import run_decide
    from .pretrain import run_pretrain
    from .stage1 import run_stage1

    runners = {
        "pretrain": run_pretrain,
        "stage1": run_stage1,
        "condense": run_condense,
        "decide": run_decide,
    }
    if exp.config.model.family == "internimage" and stage == "decide":
        from ..internimage.stages import run_decide as run_internimage_decide

        runners["decide"] = run_internimage_decide
    runners[stage](exp, ctx)


def preflight(config: TrainConfig) -> None:
    """Find every configured split's files and the weights file before anything is written, so
    a wrong path fails in a second with one line instead of after the first stage."""
    from . import parts

    parts.check_family(config)
    weights = config.model.backbone_weights
    if weights is not None and not Path(weights).is_file():
        raise ConfigError(f"model.backbone_weights file {weights} not found")
    for role, spec in config.data.splits.items():
        if spec:
            parts.dataset(config, role)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    if args.no_progress:
        config.progress = False
    out = args.out or Path("experiments") / args.config.stem
    try:
        ctx = init_distributed(config.device)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        stages = active_stages(config)
        if args.stage not in ("all", *stages):
            hint = (
                "model.family internimage has no condensation (PixOOD's scorer does not apply)"
                if args.stage == "condense"
                else "set pretrain.enabled=true to use it"
            )
            raise ConfigError(f"stage {args.stage} is off in this config ({hint})")
        preflight(config)
        exp = Experiment(out, config, is_main=ctx.is_main)
        exp.write_config()
        if "condense" not in stages:
            exp.log("condense: skipped, model.family internimage has no condensation stage")
        requested = stages if args.stage == "all" else [args.stage]
        first = stages.index(requested[0])
        for earlier in stages[:first]:
            if not exp.is_done(earlier):
                raise StageOrderError(
                    f"stage {earlier} is not complete in {out} (or its config changed); "
                    f"run `pixood-train {earlier}` first"
                )
        redo_rest = False
        for stage in requested:
            if exp.is_done(stage) and not (args.force or redo_rest):
                exp.log(f"{stage}: already complete in {out} (use --force to redo)")
                continue
            # Anything downstream of a stage that runs is stale now.
            for later in stages[stages.index(stage) :]:
                if later != stage or args.force:
                    exp.clear_stage(later)
            redo_rest = True
            exp.log(f"{stage}: starting (experiment {out})")
            ctx.barrier()
            _run_stage(stage, exp, ctx)
            ctx.barrier()
        if ctx.is_main:
            _print_summary(exp)
        return 0
    finally:
        shutdown_distributed()


def _print_summary(exp: Experiment) -> None:
    metrics = exp.metrics()
    if exp.config.pretrain.enabled and "pretrain" in metrics:
        last = metrics["pretrain"]["history"][-1]
        print(f"pretrain final loss {last['loss']:.4f} (ce {last['ce']:.4f})")
    if "stage1" in metrics:
        print(f"stage1   val mIoU {metrics['stage1']['val_miou']:.4f}")
    for name, values in metrics.get("decide", {}).get("scorers", {}).items():
        if "ap" in values:
            print(
                f"{name:8s} AP {values['ap']:.4f}  AUROC {values['auroc']:.4f}  "
                f"FPR95 {values['fpr95']:.4f}  -> {values['checkpoint']}"
            )
    print(f"experiment: {exp.dir}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)

    def body() -> int:
        try:
            return run(args)
        except KeyboardInterrupt:
            return fail(PROG, "interrupted (rerun the same command to resume)", EXIT_INTERRUPTED)

    return run_command(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
