"""Run a PixOOD model over every image of a data set and write BRAVO submission files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pixood_ros.anomaly_modes import DEFAULT_ANOMALY_MODE, anomaly_map
from pixood_ros.bravo.files import write_prediction_files
from pixood_ros.cli import UserError
from pixood_ros.frames import read_rgb
from pixood_ros.metrics.bravo import NUM_CLASSES
from pixood_ros.thresholds import DEFAULT_ANOMALY_THRESHOLD

from .confidence import SCORER, confidence_levels, ood_flags
from .layout import InputImage, output_paths


class PredictError(UserError, ValueError):
    """An input image or the model cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class PredictOptions:
    """How `_conf.png` is computed (field names are pixood-bravo predict's option names); OOD
    flags are the anomaly mode's score >= ood_threshold."""

    confidence: str = SCORER
    ood_threshold: float = DEFAULT_ANOMALY_THRESHOLD
    anomaly_mode: str = DEFAULT_ANOMALY_MODE
    progress: bool = True


@dataclass
class PredictSummary:
    """What a prediction run wrote: image counts per subset and OOD-flagged pixel share."""

    images: dict[str, int] = field(default_factory=dict)
    pixels: int = 0
    flagged_pixels: int = 0

    @property
    def total_images(self) -> int:
        return sum(self.images.values())


def check_bravo_classes(class_names: Sequence[str]) -> None:
    """BRAVO predictions are Cityscapes trainIds 0..18: the model must have those 19 classes."""
    if len(class_names) != NUM_CLASSES:
        raise PredictError(
            f"the model predicts {len(class_names)} classes; BRAVO needs the "
            f"{NUM_CLASSES} Cityscapes train ids (road … bicycle)"
        )


def predict_images(
    segmenter,
    layout: str,
    images: Sequence[InputImage],
    out_root: str | Path,
    options: PredictOptions,
) -> PredictSummary:
    """Segment each image with `segmenter` (a `pixood_ros.engine.Segmenter`) and write its
    `_pred.png` (uint8 ids) and `_conf.png` (uint16, chosen rule) at the image's size."""
    summary = PredictSummary()
    threshold = options.ood_threshold
    progress = tqdm(images, desc="pixood-bravo predict", unit="img", disable=not options.progress)
    for image in progress:
        rgb = read_rgb(image.path)
        result = segmenter(rgb)
        if result.semantic.size and int(result.semantic.max()) >= NUM_CLASSES:
            raise PredictError(
                f"{image.relpath}: the model predicted class id {int(result.semantic.max())}; "
                f"BRAVO allows only 0..{NUM_CLASSES - 1}"
            )
        score = anomaly_map(result, options.anomaly_mode, segmenter.info.eval_labels)
        try:
            levels = confidence_levels(options.confidence, result.confidence, score, threshold)
        except ValueError as exc:
            raise PredictError(f"{image.relpath}: {exc}") from None
        paths = output_paths(layout, image, out_root)
        write_prediction_files(paths, result.semantic, levels, rgb.shape[:2])
        summary.images[image.subset] = summary.images.get(image.subset, 0) + 1
        summary.pixels += levels.size
        summary.flagged_pixels += int(ood_flags(score, threshold).sum())
    return summary
