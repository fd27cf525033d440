"""Reading and writing rosbag2 image topics with `rosbags` (no ROS install needed).

One place for the type store, the message builders and the reader set-up, so the bag maker, the
offline evaluator and the tests agree on types, stamps and error messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from pixood_ros import durable, image_conversion
from pixood_ros.bag.errors import BagError
from pixood_ros.bag.salvage import MAGIC as MCAP_MAGIC
from pixood_ros.cli import one_line

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
SQLITE_MAGIC = b"SQLite format 3\x00"
DATASET_KEY = "pixood.dataset"  # custom_data key: the published layout a bag was made from
BAG_VERSION = 9  # rosbag2 metadata version written by Iron and later; Humble reads up to 8 fine

# Our ROS target distro; sensor_msgs/Image and CompressedImage are identical in all ROS 2 distros.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


@dataclass(frozen=True, eq=False)
class BagMessage:
    """One message with its bag (receive) time and header stamp, both in ns: deserialised
    (`msg`) and as stored (`raw` CDR bytes, which are published and copied as they are)."""

    topic: str
    msgtype: str
    bag_time_ns: int
    stamp_ns: int
    msg: Any
    raw: bytes


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Any:
    Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
    Header = TYPESTORE.types["std_msgs/msg/Header"]
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(array: np.ndarray, encoding: str, header: Any) -> Any:
    """A rosbags sensor_msgs/Image (rgb8, bgr8, mono8 or 32FC1) built like the node builds its."""
    return image_conversion.array_to_image(
        np.ascontiguousarray(array), encoding, header, msg_type=TYPESTORE.types[IMAGE_TYPE]
    )


def compressed_message(rgb: np.ndarray, fmt: str, header: Any, jpeg_quality: int = 90) -> Any:
    """A sensor_msgs/CompressedImage the way image_transport's compressed plugin writes it."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        raise ValueError(f"unknown compression format {fmt!r} (use jpeg or png)")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    CompressedImage = TYPESTORE.types[COMPRESSED_TYPE]
    return CompressedImage(
        header=header, format=f"bgr8; {fmt} compressed bgr8", data=buf.reshape(-1)
    )


def serialize(msg: Any) -> bytes:
    return TYPESTORE.serialize_cdr(msg, msg.__msgtype__)


def open_writer(path: Path, storage: str) -> Writer:
    """A rosbag2 writer; the caller uses it as a context manager so metadata.yaml gets written."""
    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}: use one of {', '.join(STORAGES)}")
    return Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])


def finish_writer(writer: Writer, path: Path) -> None:
    """Close `writer` (index, metadata.yaml) and flush the bag's files and folder to disk, which
    the writer does not; when closing fails (disk full) the writer is aborted, so its files are
    closed, and the error is raised."""
    try:
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.abort()
        raise
    fsync_bag(path)


def fsync_bag(path: Path) -> None:
    """Flush a closed bag's files and folder (and its entry in the parent) to disk."""
    for file in path.iterdir():
        if file.is_file():
            durable.fsync_file(file)
    durable.fsync_dir(path)
    durable.fsync_dir(path.parent)


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(magic)) == magic
    except OSError:
        return False


def looks_like_bag(path: Path) -> bool:
    """A rosbag2 folder, or a file in one of its storage formats (by content, not name)."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(map(looks_like_bag, path.glob("*.mcap")))
    return _starts_with(path, MCAP_MAGIC) or _starts_with(path, SQLITE_MAGIC)


def check_bag_path(path: Path) -> None:
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is a directory without metadata.yaml, so not a rosbag2 bag")
    if path.is_file() and not _starts_with(path, MCAP_MAGIC):
        raise BagError(
            f"{path} is not a rosbag2 bag (expected a bag folder with metadata.yaml or an "
            f".mcap file)"
        )


def open_reader(path: Path) -> AnyReader:
    """An opened AnyReader, or a one-line BagError for a missing, foreign or corrupt bag."""
    check_bag_path(path)
    try:
        reader = AnyReader([path], default_typestore=TYPESTORE)
        reader.open()
    except Exception as exc:  # rosbags raises several types (ReaderError, sqlite, mcap, yaml)
        raise BagError(f"cannot open bag {path}: {one_line(exc)}") from exc
    return reader


def message_counts(reader: AnyReader) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in reader.connections:
        counts[c.topic] = counts.get(c.topic, 0) + int(c.msgcount)
    return counts


def choose_image_topic(
    reader: AnyReader, topic: str | None, label_topics: Collection[str] = ()
) -> str:
    """The requested image topic, or the only one in the bag; otherwise a BagError naming them."""
    return choose_topic_from({c.topic: c.msgtype for c in reader.connections}, topic, label_topics)


def choose_topic_from(
    all_topics: dict[str, str], topic: str | None, label_topics: Collection[str] = ()
) -> str:
    """Like choose_image_topic; `label_topics` (ground truth) never count as camera topics."""
    images = {
        t: m for t, m in all_topics.items() if m in IMAGE_TYPES and t not in set(label_topics)
    }
    if topic is not None:
        if topic not in all_topics:
            listed = ", ".join(sorted(all_topics)) or "none"
            raise BagError(f"topic {topic} is not in the bag (topics: {listed})")
        if topic not in images:
            raise BagError(f"topic {topic} has type {all_topics[topic]}, not an image type")
        return topic
    if len(images) == 1:
        return next(iter(images))
    if not images:
        raise BagError("the bag has no sensor_msgs/Image or CompressedImage topic")
    listed = ", ".join(f"{t} ({m.rsplit('/', 1)[-1]})" for t, m in sorted(images.items()))
    raise BagError(f"the bag has several image topics, choose one with --topic: {listed}")


def custom_data(path: Path) -> dict[str, str]:
    """metadata.yaml's custom_data of a bag folder ({} for a bare file or unreadable metadata)."""
    try:
        info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        custom = info.get("custom_data") or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {}


def storage_identifier(path: Path) -> str:
    """sqlite3 / mcap, from the storage file names (works for damaged bags too)."""
    if path.is_file():
        return "mcap" if path.suffix == ".mcap" else "unknown"
    if any(path.glob("*.mcap")):
        return "mcap"
    if any(path.glob("*.db3")):
        return "sqlite3"
    return "unknown"


def iter_messages(reader: AnyReader, topics: list[str]) -> Iterator[BagMessage]:
    """Messages of `topics` in bag-time order, with their header stamps."""
    connections = [c for c in reader.connections if c.topic in topics]
    for connection, bag_time_ns, raw in reader.messages(connections=connections):
        msg = reader.deserialize(raw, connection.msgtype)
        yield bag_message(connection.topic, connection.msgtype, int(bag_time_ns), bytes(raw), msg)


def bag_message(topic: str, msgtype: str, bag_time_ns: int, raw: bytes, msg: Any) -> BagMessage:
    """`msg` with its header stamp (its bag time if it has no header)."""
    header = getattr(msg, "header", None)
    stamp_ns = stamp_to_ns(header.stamp) if header is not None else bag_time_ns
    return BagMessage(topic, msgtype, bag_time_ns, stamp_ns, msg, raw)
