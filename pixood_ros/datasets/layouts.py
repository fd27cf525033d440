"""Published folder layouts of public anomaly-segmentation data sets: where the images and the
OOD label masks of one data set lie, and how to tell the layouts apart (docs/evaluation.md §3.5).

Each layout pairs an image with its mask by file name; masks hold 0 (not anomaly), 1 (anomaly)
and 255 (void), the values `pixood_ros.frames` checks. None of these data sets has semantic
labels, so tools that read them report no semantic metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixood_ros.frames import IMAGE_SUFFIXES, SourceError


class DatasetError(SourceError):
    """A folder that is not in the layout asked for (one line, exit code 2)."""


@dataclass(frozen=True)
class Layout:
    """One published layout: `images/<stem><suffix>` beside `<masks>/<stem><mask_suffix>`."""

    name: str  # the command-line name, e.g. "smiyc-ra21"
    title: str
    image_dir: str
    image_suffix: str
    mask_dir: str
    mask_suffix: str
    #: SMIYC component track (size filters) the data set is evaluated with
    track: str
    #: folder names the data set is distributed under (the root itself, or one level below)
    folder_names: tuple[str, ...]

    def expected(self) -> str:
        return f"{self.image_dir}/*{self.image_suffix} and {self.mask_dir}/*{self.mask_suffix}"

    def root_of(self, root: Path) -> Path | None:
        """The folder holding `image_dir`: `root` itself or one of the published subfolders."""
        for candidate in (root, *(root / name for name in self.folder_names)):
            if (candidate / self.image_dir).is_dir():
                return candidate
        return None

    def images(self, root: Path) -> list[Path]:
        """The data set's images, sorted by name; DatasetError naming the layout when the folder
        does not hold them."""
        base = self.root_of(root)
        if base is None:
            raise DatasetError(
                f"{root} is not a {self.title} folder: no {self.image_dir}/ folder "
                f"(expected {self.expected()})"
            )
        folder = base / self.image_dir
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == self.image_suffix)
        if not files:
            others = sorted({p.suffix for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES})
            hint = f" (found {', '.join(others)} files)" if others else ""
            raise DatasetError(f"no {self.image_suffix} images in {folder}{hint}")
        return files

    def mask_of(self, image: Path) -> Path:
        return image.parent.parent / self.mask_dir / f"{image.stem}{self.mask_suffix}"


# SegmentMeIfYouCan (road-anomaly-benchmark toolkit): dataset_AnomalyTrack and
# dataset_ObstacleTrack, each with images/ and labels_masks/<frame>_labels_semantic.png.
SMIYC_RA21 = Layout(
    name="smiyc-ra21",
    title="SMIYC RoadAnomaly21",
    image_dir="images",
    image_suffix=".jpg",
    mask_dir="labels_masks",
    mask_suffix="_labels_semantic.png",
    track="anomaly",
    folder_names=("dataset_AnomalyTrack",),
)
SMIYC_RO21 = Layout(
    name="smiyc-ro21",
    title="SMIYC RoadObstacle21",
    image_dir="images",
    image_suffix=".webp",
    mask_dir="labels_masks",
    mask_suffix="_labels_semantic.png",
    track="obstacle",
    folder_names=("dataset_ObstacleTrack",),
)
# Fishyscapes Lost & Found validation set as folders (the BDL-benchmark release written out
# per frame): LostAndFound/original/<frame>.png and LostAndFound/labels/<frame>.png.
FISHYSCAPES_LF = Layout(
    name="fishyscapes-lf",
    title="Fishyscapes Lost & Found",
    image_dir="original",
    image_suffix=".png",
    mask_dir="labels",
    mask_suffix=".png",
    track="anomaly",
    folder_names=("LostAndFound",),
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (SMIYC_RA21, SMIYC_RO21, FISHYSCAPES_LF)
}


def detect_layout(root: Path) -> Layout | None:
    """The layout `root` is in, when exactly one fits (its image folder with images of its
    suffix); None for any other folder."""
    fits = []
    for layout in LAYOUTS.values():
        base = layout.root_of(root)
        if base is not None and any(
            p.suffix.lower() == layout.image_suffix for p in (base / layout.image_dir).iterdir()
        ):
            fits.append(layout)
    return fits[0] if len(fits) == 1 else None


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise DatasetError(f"unknown data set layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]
