"""`pixood-synth OUT_DIR ...`: write the synthetic road-scene data set."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from pixood_ros.cli import (
    OneLineParser,
    UserError,
    count,
    positive_int,
    progress_parent,
    run_parsed,
)

from .dataset import write_dataset
from .scene import MIN_HEIGHT, MIN_WIDTH

PROG = "pixood-synth"
MAX_SIDE = 8192

# split -> (option default, what its frames show)
SPLIT_OPTIONS = {
    "train": (200, "no anomalies"),
    "val": (40, "no anomalies"),
    "ood_val": (40, "anomalies standing on the road"),
    "ood_small": (0, "small, distant anomalies"),
    "ood_roadlike": (0, "anomalies coloured and textured like the road"),
    "ood_shift": (0, "anomalies in dark, foggy or blurred frames"),
}


def _size(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = count(text)
        if not minimum <= value <= MAX_SIDE:
            raise argparse.ArgumentTypeError(f"must be in {minimum}..{MAX_SIDE}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        parents=[progress_parent()],
        description=(
            "Write the procedural road-scene data set: RGB images, Cityscapes train-id labels "
            "(0..18, 255 void) and OOD masks (0 in-distribution, 1 anomaly, 255 void) in the "
            "layout OUT_DIR/{leftImg8bit,gtFine,ood}/<split>/synth/, plus OUT_DIR/meta.json. "
            "Frames are deterministic: each depends only on (seed, split, index)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if missing)")
    for split, (default, shows) in SPLIT_OPTIONS.items():
        p.add_argument(
            "--" + split.replace("_", "-"),
            type=count,
            default=default,
            help=f"frames in '{split}': {shows}",
        )
    for side, minimum, default in (("width", MIN_WIDTH, 512), ("height", MIN_HEIGHT, 256)):
        p.add_argument(
            f"--{side}",
            type=_size(minimum),
            default=default,
            help=f"image {side} in pixels ({minimum}..{MAX_SIDE})",
        )
    p.add_argument("--seed", type=count, default=0, help="random seed (>= 0)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes rendering in parallel (output does not depend on it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing into a non-empty folder that is not a previous "
        "pixood-synth output (nothing there is deleted; same-named files are "
        "replaced). A previous pixood-synth output is always replaced.",
    )
    return p


def _run(args: argparse.Namespace) -> int:
    splits = {split: getattr(args, split) for split in SPLIT_OPTIONS}
    start = time.perf_counter()
    try:
        meta = write_dataset(
            args.out_dir,
            splits,
            width=args.width,
            height=args.height,
            seed=args.seed,
            progress=not args.no_progress,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except OSError as exc:  # an unwritable OUT_DIR is the user's to fix
        raise UserError(f"cannot write to {args.out_dir}: {exc}") from exc
    total = sum(meta["counts"].values())
    elapsed = time.perf_counter() - start
    print(
        f"wrote {total} frames to {args.out_dir} in {elapsed:.1f} s "
        f"({60 * total / max(elapsed, 1e-9):.0f} frames/min)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parsed(PROG, build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
