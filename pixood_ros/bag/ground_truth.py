"""The ground truth of a bag evaluation: which topics hold it, or a folder of masks, and its
labels decoded and checked against the frame they belong to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixood_ros import image_conversion
from pixood_ros.bag import bagio
from pixood_ros.bag.bag_input import BagInput
from pixood_ros.bag.errors import BagError
from pixood_ros.bag.make_bag import DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC
from pixood_ros.bag.options import GroundTruthOptions
from pixood_ros.cli import UserError
from pixood_ros.frames import SourceError, list_images, read_label

DEFAULT_LABEL_TOPICS = frozenset({DEFAULT_GT_TOPIC, DEFAULT_SEMANTIC_TOPIC})


class GtFolder:
    """Ground-truth OOD masks from a folder, the i-th file for the i-th frame."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.files = list_images(folder)
        except SourceError as exc:
            raise UserError(str(exc)) from exc

    def label(self, index: int, shape: tuple[int, int]) -> np.ndarray | None:
        if index >= len(self.files):
            return None
        return read_label(self.files[index], shape, "OOD mask")


def decode_labels(msg: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """A mono8 label image of the frame's size, else ValueError with the reason."""
    if getattr(msg, "encoding", None) not in ("mono8", "8UC1"):
        raise ValueError(f"{what} has encoding {getattr(msg, 'encoding', '?')}, expected mono8")
    labels = image_conversion.image_to_array(msg)
    if labels.shape != shape:
        raise ValueError(
            f"{what} is {labels.shape[1]}x{labels.shape[0]} but the frame is {shape[1]}x{shape[0]}"
        )
    return labels


def _check_label_topic(types: dict[str, str], topic: str, option: str) -> None:
    if topic not in types:
        raise BagError(f"{option} {topic} is not in the bag (topics: {', '.join(sorted(types))})")
    if types[topic] != bagio.IMAGE_TYPE:
        raise BagError(
            f"{option} {topic} has type {types[topic]}, expected a mono8 {bagio.IMAGE_TYPE}"
        )


def resolve_gt_topics(bag: BagInput, gt: GroundTruthOptions) -> tuple[str | None, str | None]:
    """(OOD topic, semantic topic): explicit topics must exist; without them the default topic
    names are used if present."""
    if not gt.use_gt:
        return None, None
    types = bag.topic_types()
    ood = gt.gt_topic
    if ood is not None:
        _check_label_topic(types, ood, "--gt-topic")
    elif gt.gt_dir is None and types.get(DEFAULT_GT_TOPIC) == bagio.IMAGE_TYPE:
        ood = DEFAULT_GT_TOPIC
    semantic = gt.semantic_gt_topic
    if semantic is not None:
        _check_label_topic(types, semantic, "--semantic-gt-topic")
    elif types.get(DEFAULT_SEMANTIC_TOPIC) == bagio.IMAGE_TYPE:
        semantic = DEFAULT_SEMANTIC_TOPIC
    return ood, semantic


def camera_topic(bag: BagInput, topic: str | None, label_topics: list[str]) -> str:
    """The image topic to replay; label topics (also the default ones) never count."""
    return bag.choose_image_topic(topic, DEFAULT_LABEL_TOPICS | set(label_topics))
