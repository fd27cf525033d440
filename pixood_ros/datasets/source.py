"""Frames of a public data set in its published layout (`layouts`), as the same `Source` the
image-folder and pixood-synth readers give, so make-bag, bag-eval and pixood-benchmark read
them without knowing the layout.

Only frames with a mask are ground truth: the public SMIYC releases ship masks for the
validation frames and none for the test frames. With masks present the source holds the
masked frames only; without any (a test split) it holds every image and no ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pixood_ros.datasets.layouts import DatasetError, Layout, detect_layout, get_layout
from pixood_ros.frames import Frame, Source, check_ood_values, image_frames, read_label


@dataclass(frozen=True)
class DatasetFiles:
    """The images to read and, parallel to them, their masks (None: no ground truth)."""

    layout: Layout
    images: list[Path]
    masks: list[Path] | None
    #: images in the folder without a mask (left out when `masks` is not None)
    unlabelled: int


def dataset_files(root: Path, layout: Layout, require_masks: bool = False) -> DatasetFiles:
    """The frames of `root` in `layout`; DatasetError for a folder in another layout, or
    (with `require_masks`) one without any mask."""
    images = layout.images(root)
    labelled = [p for p in images if layout.mask_of(p).is_file()]
    if not labelled:
        if require_masks:
            raise DatasetError(
                f"{root}: no {layout.title} masks ({layout.mask_dir}/*{layout.mask_suffix}) "
                f"for any of its {len(images)} images; ground truth is needed here"
            )
        return DatasetFiles(layout, images, None, 0)
    masks = [layout.mask_of(p) for p in labelled]
    return DatasetFiles(layout, labelled, masks, len(images) - len(labelled))


def resolve_layout(root: Path, name: str | None) -> Layout:
    """The layout called `name`, or the one `root` is detected to be in."""
    if name is not None:
        return get_layout(name)
    layout = detect_layout(root)
    if layout is None:
        raise DatasetError(f"{root} is in none of the known data set layouts")
    return layout


def _frames(files: DatasetFiles) -> Iterator[Frame]:
    for index, frame in enumerate(image_frames(files.images)):
        if files.masks is not None:
            mask = files.masks[index]
            frame.ood = read_label(mask, frame.rgb.shape[:2], "OOD mask")
            check_ood_values(frame.ood, mask)
        yield frame


def dataset_source(files: DatasetFiles) -> Source:
    """The frames as a `Source` (OOD masks when the data set has them, never semantic labels)."""
    return Source(
        _frames(files),
        len(files.images),
        has_ood=files.masks is not None,
        file_names=[p.name for p in files.images],
    )
