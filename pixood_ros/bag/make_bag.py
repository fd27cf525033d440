"""`pixood-make-bag`: image folder, video, pixood-synth split or a public data set in its
published layout (SMIYC RoadAnomaly21 / RoadObstacle21, Fishyscapes Lost & Found) ▶ rosbag2
(sqlite3 or mcap).

Frames become `sensor_msgs/Image` (rgb8/bgr8) or `CompressedImage` messages at a fixed rate;
ground-truth OOD masks (0 in-distribution, 1 anomaly, 255 void) and semantic train ids become
mono8 `Image`s on their own topics with the same header stamp, so `pixood-bag-eval` can pair them
exactly. Uses the pure-Python `rosbags` writer: no ROS install needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pixood_ros.bag import bagio, ros_names
from pixood_ros.cli import (
    OneLineParser,
    UserError,
    finite_float,
    positive_float,
    positive_int,
    progress_parent,
    run_parsed,
)
from pixood_ros.datasets import LAYOUTS, Layout, dataset_files, dataset_source, detect_layout
from pixood_ros.frames import (
    IMAGE_SUFFIXES,
    Source,
    SourceError,
    folder_or_video_source,
    synth_source,
)
from pixood_ros.interruption import interruptible

DEFAULT_TOPIC = "/camera/image_raw"
DEFAULT_GT_TOPIC = "/camera/anomaly_gt"
DEFAULT_SEMANTIC_TOPIC = "/camera/semantic_gt"
DEFAULT_FOLDER_RATE = 10.0
PROG = "pixood-make-bag"


@dataclass
class BagSummary:
    path: Path
    storage: str
    frames: int = 0
    topics: dict[str, str] = field(default_factory=dict)
    start_ns: int = 0
    period_ns: int = 0


def prepare_output(path: Path, overwrite: bool) -> None:
    """Refuse to clobber a bag unless asked; never delete something that is not a bag, nor
    follow a symbolic link; the folder it goes in must be writable (a user mistake, found
    before anything is written)."""
    parent = path.absolute().parent
    while not parent.exists():  # missing folders are created, in the nearest existing one
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot create the output bag in {parent}: not a writable folder")
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link; not replacing it (remove it yourself)")
    if not overwrite:
        raise UserError(f"{path} already exists (use --overwrite to replace it)")
    is_bag = path.is_dir() and (path / "metadata.yaml").is_file()
    is_empty_dir = path.is_dir() and not any(path.iterdir())
    if not (is_bag or is_empty_dir):
        raise UserError(f"{path} exists and is not a rosbag2 bag; not deleting it")
    shutil.rmtree(path)


def write_bag(
    source: Source,
    output: Path,
    *,
    rate: float,
    storage: str = "mcap",
    compressed: str | None = None,
    encoding: str = "rgb8",
    topic: str = DEFAULT_TOPIC,
    gt_topic: str = DEFAULT_GT_TOPIC,
    semantic_topic: str = DEFAULT_SEMANTIC_TOPIC,
    frame_id: str = "camera",
    start_ns: int = 0,
    limit: int | None = None,
    jpeg_quality: int = 90,
    progress: bool = True,
    dataset: str | None = None,
) -> BagSummary:
    """Write `source` into a new bag at `output`; a failed write leaves no half bag behind.
    `dataset` (a published layout's name) is recorded in metadata.yaml's custom_data
    (`DATASET_KEY`), so bag-eval can pick the data set's component track."""
    if rate <= 0:
        raise UserError(f"--rate must be positive, got {rate}")
    period_ns = round(1e9 / rate)
    image_type = bagio.COMPRESSED_TYPE if compressed else bagio.IMAGE_TYPE
    summary = BagSummary(output, storage, start_ns=start_ns, period_ns=period_ns)
    total = source.count if limit is None else min(limit, source.count or limit)
    try:
        with bagio.open_writer(output, storage) as writer:
            if dataset is not None:
                writer.set_custom_data(bagio.DATASET_KEY, dataset)
            image_conn = writer.add_connection(topic, image_type, typestore=bagio.TYPESTORE)
            summary.topics[topic] = image_type
            gt_conn = sem_conn = None
            if source.has_ood:
                gt_conn = writer.add_connection(
                    gt_topic, bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
                )
                summary.topics[gt_topic] = bagio.IMAGE_TYPE
            if source.has_semantic:
                sem_conn = writer.add_connection(
                    semantic_topic, bagio.IMAGE_TYPE, typestore=bagio.TYPESTORE
                )
                summary.topics[semantic_topic] = bagio.IMAGE_TYPE
            bar = tqdm(total=total, unit="frame", desc="make bag", disable=not progress)
            for index, frame in enumerate(source.frames):
                if limit is not None and index >= limit:
                    break
                stamp_ns = start_ns + index * period_ns
                header = bagio.make_header(stamp_ns, frame_id)
                if compressed:
                    msg = bagio.compressed_message(frame.rgb, compressed, header, jpeg_quality)
                else:
                    pixels = frame.rgb if encoding == "rgb8" else frame.rgb[..., ::-1]
                    msg = bagio.image_message(pixels, encoding, header)
                writer.write(image_conn, stamp_ns, bagio.serialize(msg))
                if gt_conn is not None:
                    gt = bagio.image_message(frame.ood, "mono8", header)
                    writer.write(gt_conn, stamp_ns, bagio.serialize(gt))
                if sem_conn is not None:
                    sem = bagio.image_message(frame.semantic, "mono8", header)
                    writer.write(sem_conn, stamp_ns, bagio.serialize(sem))
                summary.frames += 1
                bar.update()
            bar.close()
        bagio.fsync_bag(output)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    if summary.frames == 0:
        shutil.rmtree(output, ignore_errors=True)
        raise UserError("no frames to write")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        parents=[progress_parent()],
        description="Turn an image folder, a video or a pixood-synth split into a rosbag2 bag "
        "of camera images (plus optional ground-truth masks on their own topics, same stamps).",
    )
    _add_source_arguments(parser)
    parser.add_argument(
        "--rate",
        type=positive_float,
        help=f"frame rate in Hz of the header stamps (default: the video's rate, "
        f"else {DEFAULT_FOLDER_RATE:g})",
    )
    parser.add_argument(
        "--storage",
        choices=sorted(bagio.STORAGES),
        default="mcap",
        help="rosbag2 storage plugin (default: mcap, the ROS 2 default since Iron; "
        "sqlite3 for Humble without the mcap plugin)",
    )
    parser.add_argument(
        "--compressed",
        choices=["jpeg", "png"],
        help="write sensor_msgs/CompressedImage in this format instead of raw Image",
    )
    parser.add_argument(
        "--jpeg-quality", type=int, default=90, help="JPEG quality 1..100 (default: 90)"
    )
    parser.add_argument(
        "--encoding",
        choices=["rgb8", "bgr8"],
        default="rgb8",
        help="pixel encoding of raw Image messages (default: rgb8)",
    )
    parser.add_argument(
        "--topic",
        type=ros_names.topic_name,
        help=f"image topic (default: {DEFAULT_TOPIC}, or {DEFAULT_TOPIC}/compressed "
        "with --compressed)",
    )
    parser.add_argument(
        "--gt-topic",
        type=ros_names.topic_name,
        default=DEFAULT_GT_TOPIC,
        help=f"topic of the OOD masks (default: {DEFAULT_GT_TOPIC})",
    )
    parser.add_argument(
        "--semantic-gt-topic",
        type=ros_names.topic_name,
        default=DEFAULT_SEMANTIC_TOPIC,
        help=f"topic of the semantic labels (default: {DEFAULT_SEMANTIC_TOPIC})",
    )
    parser.add_argument(
        "--frame-id", default="camera", help="header.frame_id of all messages (default: camera)"
    )
    parser.add_argument(
        "--start-time",
        type=finite_float,
        metavar="SEC",
        help="header stamp of the first frame in seconds since the epoch (default: now); "
        "fix it for reproducible bags",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="write at most N frames")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the output bag if it exists"
    )
    return parser


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        nargs="?",
        type=Path,
        help="image folder (sorted by name), video file or data set root (--dataset; a "
        "folder in a published layout is detected); omit when using --synth",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="bag directory to create")
    parser.add_argument(
        "--gt",
        type=Path,
        help="folder of OOD masks (mono8 PNG: 0 in-distribution, 1 anomaly, 255 void), "
        "paired with the frames by file stem, else by sorted order",
    )
    parser.add_argument(
        "--semantic-gt",
        type=Path,
        help="folder of semantic label images (mono8 train ids, 255 void), paired like --gt",
    )
    parser.add_argument(
        "--synth",
        type=Path,
        metavar="ROOT",
        help="pixood-synth data set root: take images, OOD masks and semantic labels of --split",
    )
    parser.add_argument(
        "--split", default="ood_val", help="split of the --synth data set (default: ood_val)"
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(LAYOUTS),
        help="INPUT is this data set in its published layout (images and OOD masks; "
        "docs/evaluation.md §3.5); detected when INPUT holds no images itself",
    )


def _check(args: argparse.Namespace) -> None:
    """Combinations and values the parser cannot check alone."""
    if (args.input is None) == (args.synth is None):
        raise UserError("give either an INPUT folder/video or --synth ROOT (not both)")
    if args.synth is not None and (args.gt or args.semantic_gt):
        raise UserError("--gt/--semantic-gt cannot be combined with --synth (it has its own)")
    if args.dataset is not None and (args.gt or args.semantic_gt or args.synth):
        raise UserError("--dataset reads its own masks; drop --gt/--semantic-gt/--synth")
    if not 1 <= args.jpeg_quality <= 100:
        raise UserError(f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}")
    for option, folder in (("--gt", args.gt), ("--semantic-gt", args.semantic_gt)):
        if folder is not None and not folder.is_dir():
            raise UserError(f"{option} folder not found: {folder}")


def _dataset_layout(args: argparse.Namespace) -> Layout | None:
    """The published layout INPUT is in: the one named by --dataset, or the one detected in a
    folder that holds no images itself (so a plain image folder is never taken for one)."""
    if args.dataset is not None:
        return LAYOUTS[args.dataset]
    if args.input is None or not args.input.is_dir() or args.gt or args.semantic_gt:
        return None
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in args.input.iterdir()):
        return None
    return detect_layout(args.input)


def _source(args: argparse.Namespace) -> tuple[Source, Layout | None]:
    """The frames, and the published layout they come from (None for other inputs)."""
    if args.synth is not None:
        return synth_source(args.synth, args.split), None
    layout = _dataset_layout(args)
    if layout is None:
        return folder_or_video_source(args.input, args.gt, args.semantic_gt), None
    files = dataset_files(args.input, layout)
    masks = "no OOD masks" if files.masks is None else "their OOD masks"
    skipped = f"; {files.unlabelled} images without a mask left out" if files.unlabelled else ""
    print(f"{layout.title}: {len(files.images)} frames with {masks}{skipped}")
    return dataset_source(files), layout


def _run(args: argparse.Namespace) -> None:
    _check(args)
    try:
        source, layout = _source(args)
    except SourceError as exc:
        raise UserError(str(exc)) from exc
    prepare_output(args.output, args.overwrite)
    rate = args.rate if args.rate is not None else source.native_rate or DEFAULT_FOLDER_RATE
    topic = args.topic or (DEFAULT_TOPIC + "/compressed" if args.compressed else DEFAULT_TOPIC)
    start = args.start_time if args.start_time is not None else time.time()
    try:
        summary = write_bag(
            source,
            args.output,
            rate=rate,
            storage=args.storage,
            compressed=args.compressed,
            encoding=args.encoding,
            topic=topic,
            gt_topic=args.gt_topic,
            semantic_topic=args.semantic_gt_topic,
            frame_id=args.frame_id,
            start_ns=round(start * 1e9),
            limit=args.limit,
            jpeg_quality=args.jpeg_quality,
            progress=not args.no_progress,
            dataset=layout.name if layout is not None else None,
        )
    except SourceError as exc:  # a frame or label that cannot be read, found while writing
        raise UserError(str(exc)) from exc
    topics = ", ".join(f"{t} ({m.rsplit('/', 1)[-1]})" for t, m in summary.topics.items())
    print(
        f"wrote {summary.frames} frames at {rate:g} Hz to {summary.path} "
        f"[{summary.storage}]: {topics}"
    )


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code. Ctrl-C or SIGTERM ends it with one line, exit 130 /
    143, and no half-written bag."""
    parser = build_parser()
    return run_parsed(PROG, parser, argv, lambda args: interruptible(PROG, lambda: _run(args)))


if __name__ == "__main__":
    sys.exit(main())
