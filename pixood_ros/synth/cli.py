"""`pixood-synth OUT_DIR ...`: write the synthetic road-scene data set."""

from __future__ import annotations

import argparse
import sys
import time

from pixood_ros.cli import OneLineParser

from .dataset import SynthError, write_dataset
from .scene import MIN_HEIGHT, MIN_WIDTH

MAX_SIDE = 8192


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _size(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not minimum <= value <= MAX_SIDE:
            raise argparse.ArgumentTypeError(f"must be in {minimum}..{MAX_SIDE}, got {value}")
        return value

    return parse


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="pixood-synth",
        description=(
            "Write the procedural road-scene data set: RGB images, Cityscapes train-id labels "
            "(0..18, 255 void) and OOD masks (0 in-distribution, 1 anomaly, 255 void) in the "
            "layout OUT_DIR/{leftImg8bit,gtFine,ood}/<split>/synth/, plus OUT_DIR/meta.json. "
            "Frames are deterministic: each depends only on (seed, split, index)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if missing)")
    p.add_argument("--train", type=_count, default=200, help="frames in 'train' (no anomalies)")
    p.add_argument("--val", type=_count, default=40, help="frames in 'val' (no anomalies)")
    p.add_argument(
        "--ood-val",
        type=_count,
        default=40,
        help="frames in 'ood_val': anomalies standing on the road",
    )
    p.add_argument(
        "--ood-small",
        type=_count,
        default=0,
        help="frames in 'ood_small': small, distant anomalies",
    )
    p.add_argument(
        "--ood-roadlike",
        type=_count,
        default=0,
        help="frames in 'ood_roadlike': anomalies coloured and textured like the road",
    )
    p.add_argument(
        "--ood-shift",
        type=_count,
        default=0,
        help="frames in 'ood_shift': anomalies in dark, foggy or blurred frames",
    )
    p.add_argument(
        "--width",
        type=_size(MIN_WIDTH),
        default=512,
        help=f"image width in pixels ({MIN_WIDTH}..{MAX_SIDE})",
    )
    p.add_argument(
        "--height",
        type=_size(MIN_HEIGHT),
        default=256,
        help=f"image height in pixels ({MIN_HEIGHT}..{MAX_SIDE})",
    )
    p.add_argument("--seed", type=_count, default=0, help="random seed (>= 0)")
    p.add_argument(
        "--workers",
        type=_positive,
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
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    splits = {
        "train": args.train,
        "val": args.val,
        "ood_val": args.ood_val,
        "ood_small": args.ood_small,
        "ood_roadlike": args.ood_roadlike,
        "ood_shift": args.ood_shift,
    }
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
    except SynthError as exc:
        parser.error(str(exc))
    except OSError as exc:
        parser.error(f"cannot write to {args.out_dir}: {exc}")
    total = sum(meta["counts"].values())
    elapsed = time.perf_counter() - start
    print(
        f"wrote {total} frames to {args.out_dir} in {elapsed:.1f} s "
        f"({60 * total / max(elapsed, 1e-9):.0f} frames/min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
