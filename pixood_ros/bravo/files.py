"""Raw BRAVO submission files (docs/evaluation.md §2.1): per input image `X.*`, an 8-bit single-
channel `X_pred.png` of Cityscapes trainIds 0..18 and a 16-bit single-channel `X_conf.png`
(0..65535, higher = more confident in the predicted class), both at the input image's size,
in the same relative folder as the input under the submission root (`bravo_<split>/...`).

The toolkit's encoder reads these with OpenCV and rejects anything else, so the writer checks
ids, dtype and size up front, and the reader checks what it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from pixood_ros.cli import UserError
from pixood_ros.frames import read_image
from pixood_ros.metrics.bravo import NUM_CLASSES, SUBSETS

PRED_SUFFIX = "_pred.png"
CONF_SUFFIX = "_conf.png"


class SubmissionError(UserError, ValueError):
    """A submission or ground-truth file that breaks the BRAVO rules; one line naming it."""


@dataclass(frozen=True)
class SplitSuffixes:
    """File-name endings of one BRAVO split (the part after the shared base name)."""

    pred: str
    conf: str
    gt: str
    mask: str


SPLIT_SUFFIXES: dict[str, SplitSuffixes] = {
    "ACDC": SplitSuffixes(
        "_rgb_anon_pred.png", "_rgb_anon_conf.png", "_gt_labelTrainIds.png", "_gt_invIds.png"
    ),
    "SMIYC": SplitSuffixes(
        "_pred.png", "_conf.png", "_labels_semantic_fake.png", "_labels_semantic.png"
    ),
    "outofcontext": SplitSuffixes(
        "_leftImg8bit_pred.png", "_leftImg8bit_conf.png", "_gt_labelTrainIds.png", "_gt_invIds.png"
    ),
    "synflare": SplitSuffixes(
        "_leftImg8bit_pred.png", "_leftImg8bit_conf.png", "_gt_labelTrainIds.png", "_gt_invIds.png"
    ),
    "synrain": SplitSuffixes(
        "_leftImg8bit_pred.png", "_leftImg8bit_conf.png", "_gt_labelTrainIds.png", "_gt_invIds.png"
    ),
    "synobjs": SplitSuffixes("_pred.png", "_conf.png", "_gt.png", "_mask.png"),
}


def split_of(relpath: str | Path) -> str:
    """BRAVO split of a path relative to the data-set / submission root (`bravo_<split>/...`)."""
    first = PurePosixPath(Path(relpath).as_posix()).parts[0] if str(relpath) else ""
    split = first[len("bravo_") :] if first.startswith("bravo_") else ""
    if split not in SPLIT_SUFFIXES:
        raise SubmissionError(
            f"{relpath}: not inside a BRAVO split folder "
            f"({', '.join('bravo_' + s for s in SPLIT_SUFFIXES)})"
        )
    return split


def subset_of(relpath: str | Path) -> str:
    """BRAVO evaluation subset of a relative path (ACDC splits by condition folder)."""
    split = split_of(relpath)
    posix = "/" + Path(relpath).as_posix()
    for name, spec in SUBSETS.items():
        if spec.split == split and (spec.path_filter is None or spec.path_filter in posix):
            return name
    raise SubmissionError(f"{relpath}: ACDC image outside the fog/rain/night/snow folders")


def mirrored_paths(input_relpath: str | Path, out_root: str | Path) -> tuple[Path, Path]:
    """(pred, conf) paths of an input image given relative to its data-set root: the input's
    folder under `out_root`, file stem + `_pred.png` / `_conf.png`."""
    rel = Path(input_relpath)
    folder = Path(out_root) / rel.parent
    return folder / f"{rel.stem}{PRED_SUFFIX}", folder / f"{rel.stem}{CONF_SUFFIX}"


def prediction_paths(input_relpath: str | Path, out_root: str | Path) -> tuple[Path, Path]:
    """`mirrored_paths` of an input inside a BRAVO split folder (e.g.
    `bravo_ACDC/fog/test/G/G_frame_000041_rgb_anon.png` → `..._rgb_anon_pred.png`)."""
    if Path(input_relpath).is_absolute():
        raise SubmissionError(f"{input_relpath}: give the input path relative to the BRAVO root")
    split_of(input_relpath)
    return mirrored_paths(input_relpath, out_root)


def confidence_to_uint16(confidence: np.ndarray) -> np.ndarray:
    """Float confidence in [0, 1] → uint16 levels round(c · 65535); uint16 passes through."""
    confidence = np.asarray(confidence)
    if confidence.dtype == np.uint16:
        return confidence
    if not np.issubdtype(confidence.dtype, np.floating):
        raise SubmissionError(
            f"confidence must be float in [0, 1] or uint16, not {confidence.dtype}"
        )
    if not np.all(np.isfinite(confidence)) or confidence.min() < 0 or confidence.max() > 1:
        raise SubmissionError("float confidence must be finite and lie in [0, 1]")
    return np.round(confidence.astype(np.float64) * 65535.0).astype(np.uint16)


def write_prediction(
    out_root: str | Path,
    input_relpath: str | Path,
    semantic: np.ndarray,
    confidence: np.ndarray,
    image_size: tuple[int, int] | None = None,
) -> tuple[Path, Path]:
    """`write_prediction_files` at the `prediction_paths` of an input of a BRAVO data set."""
    paths = prediction_paths(input_relpath, out_root)
    return write_prediction_files(paths, semantic, confidence, image_size)


def write_prediction_files(
    paths: tuple[Path, Path],
    semantic: np.ndarray,
    confidence: np.ndarray,
    image_size: tuple[int, int] | None = None,
) -> tuple[Path, Path]:
    """Write one image's `_pred.png` (uint8 ids 0..18) and `_conf.png` (uint16) at `paths`,
    with the checks the BRAVO encoder makes.

    image_size = (height, width) of the input image; when given the maps must match it (the
    evaluator rejects any other size). Returns the two paths written.
    """
    pred_path, conf_path = paths
    semantic = np.asarray(semantic)
    conf16 = confidence_to_uint16(confidence)
    if semantic.ndim != 2 or conf16.shape != semantic.shape:
        raise SubmissionError(
            f"semantic {semantic.shape} and confidence {conf16.shape} must be HxW maps of one shape"
        )
    if image_size is not None and tuple(semantic.shape) != tuple(image_size):
        raise SubmissionError(
            f"maps are {semantic.shape} but the input image is {tuple(image_size)}"
        )
    if not np.issubdtype(semantic.dtype, np.integer) or semantic.dtype == bool:
        raise SubmissionError(f"semantic must hold integer trainIds, got dtype {semantic.dtype}")
    if semantic.size and (int(semantic.min()) < 0 or int(semantic.max()) >= NUM_CLASSES):
        raise SubmissionError(
            f"semantic ids must be Cityscapes trainIds 0..{NUM_CLASSES - 1}, "
            f"got {int(semantic.min())}..{int(semantic.max())}"
        )
    pred_path.parent.mkdir(parents=True, exist_ok=True)
    conf_path.parent.mkdir(parents=True, exist_ok=True)
    for path, image in ((pred_path, semantic.astype(np.uint8)), (conf_path, conf16)):
        if path.is_symlink():  # replaced, not written through
            path.unlink()
        if not cv2.imwrite(str(path), image):
            raise OSError(f"could not write {path}")
    return pred_path, conf_path


def read_single_channel(path: Path, dtype: type, what: str) -> np.ndarray:
    """A single-channel image of `dtype` (prediction, confidence or label PNG), as written."""
    image = read_image(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SubmissionError(f"{path}: missing or not a readable image")
    if image.ndim != 2 or image.dtype != dtype:
        raise SubmissionError(
            f"{path}: {what} must be a single-channel {np.dtype(dtype).name} PNG, "
            f"got {image.dtype} with shape {image.shape}"
        )
    return image


def read_prediction(
    pred_path: str | Path, conf_path: str | Path, image_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load and check one (`_pred.png`, `_conf.png`) pair → (uint8 ids, uint16 confidence)."""
    pred = read_single_channel(Path(pred_path), np.uint8, "prediction")
    conf = read_single_channel(Path(conf_path), np.uint16, "confidence")
    if pred.shape != conf.shape:
        raise SubmissionError(f"{pred_path} is {pred.shape} but {conf_path} is {conf.shape}")
    if image_size is not None and pred.shape != tuple(image_size):
        raise SubmissionError(f"{pred_path} is {pred.shape} but the image is {tuple(image_size)}")
    if pred.size and int(pred.max()) >= NUM_CLASSES:
        raise SubmissionError(
            f"{pred_path}: ids must be 0..{NUM_CLASSES - 1}, found {int(pred.max())}"
        )
    return pred, conf


def ground_truth_paths(pred_relpath: str | Path, gt_root: str | Path) -> tuple[Path, Path]:
    """(ground truth, invalid mask) paths for a `_pred.png` given relative to the submission
    root: the base name (pred path minus the split's pred suffix) plus the GT / mask suffix."""
    rel = Path(pred_relpath).as_posix()
    suffixes = SPLIT_SUFFIXES[split_of(rel)]
    if not rel.endswith(suffixes.pred):
        raise SubmissionError(f"{pred_relpath}: expected a name ending in {suffixes.pred}")
    base = rel[: -len(suffixes.pred)]
    return Path(gt_root) / (base + suffixes.gt), Path(gt_root) / (base + suffixes.mask)
