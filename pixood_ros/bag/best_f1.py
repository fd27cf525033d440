"""Component metrics at the data set's best-F1 threshold (SMIYC's operating point) without holding
the frames in memory.

The threshold is only known after the last frame, so the frames are seen twice: the evaluation
itself appends each frame to a temporary file (`ScoreSpill`, deleted at the end) while the
binned `PixelMetricAccumulator` counts it; after the last frame the threshold is the best-F1
point of that binned curve, a bin edge b / 65536, and one pass over the file computes the
components with `score >= b / 65536`.

What is stored is what that pass needs, compactly (about 0.2 MB per 1080p frame instead of 10):
the frame's region labels, and the fine score bin floor(score * 65536) (the histogram's bin, the
output bag's 16-bit value) of the labelled pixels only (predictions inside void are cleared
before the components are formed), row-major, delta-coded, each zstd-compressed. Exact: for an
integer b, floor(score * 65536) >= b holds exactly when score >= b / 65536, so the stored bins
pass the threshold for exactly the pixels the full-precision scores pass. Under `--protocol
smiyc` the codes are the bit patterns of SMIYC's stored float16 scores instead (ordered like the
values), compared with `>` against the toolkit's threshold: again exactly its rule.

A second pass over the output bag was not used because it may be switched off (--no-output-bag),
live mode has none of its own, and the labels would have to be re-paired and re-restricted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixood_ros.bag.histogram import FINE_BINS
from pixood_ros.metrics.components import ComponentMetricAccumulator
from pixood_ros.metrics.curves import BinaryCurve, DegenerateLabelsError, best_f1
from pixood_ros.metrics.score_storage import to_float16
from pixood_ros.metrics.smiyc import SmiycPixelAccumulator

try:
    from compression import zstd  # Python >= 3.14
except ImportError:  # pragma: no cover - older Pythons: rosbags' own dependency
    from backports import zstd

VOID = 255
SPILL_PREFIX = ".pixood_scores_"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_spills(folder: Path) -> list[Path]:
    """Remove score files of runs that were killed (kill -9 skips every clean-up): ours carry
    the process id in their name, and a folder whose process is gone (or is this one, or that
    has no id) is stale; a run still going in the same folder keeps its own."""
    removed = []
    for stale in folder.glob(f"{SPILL_PREFIX}*"):
        pid = stale.name[len(SPILL_PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
            removed.append(stale)
    return removed


class ScoreSpill:
    """Append-only temporary file of (uint16 score codes, region labels) frames; read back one
    frame at a time as (codes of the labelled pixels, labels)."""

    def __init__(self, directory: Path | None = None) -> None:
        prefix = f"{SPILL_PREFIX}{os.getpid()}_"
        self._dir = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
        self.path = self._dir / "scores.bin"
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._frames: list[tuple[int, int, int, int, int]] = []  # offset, h, w, label, bin bytes
        self._offset = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes_written(self) -> int:
        return self._offset

    def append(self, bins: np.ndarray, labels: np.ndarray) -> None:
        """`bins`: the frame's uint16 score codes (only the labelled pixels' are kept)."""
        if bins.shape != labels.shape or bins.ndim != 2:
            raise ValueError(f"bins {bins.shape} and labels {labels.shape} must be HxW")
        labels = np.ascontiguousarray(labels, dtype=np.uint8)
        kept = bins[labels != VOID].astype(np.uint16, copy=False)
        deltas = kept.copy()
        deltas[1:] -= kept[:-1]  # wraps modulo 2**16; a cumulative sum undoes it
        packed_labels = zstd.compress(labels.data, level=1)
        packed_bins = zstd.compress(deltas.data, level=1)
        self._file.write(packed_labels)
        self._file.write(packed_bins)
        height, width = labels.shape
        self._frames.append((self._offset, height, width, len(packed_labels), len(packed_bins)))
        self._offset += len(packed_labels) + len(packed_bins)

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self._file.flush()
        with open(self.path, "rb") as reader:
            for offset, height, width, label_bytes, bin_bytes in self._frames:
                reader.seek(offset)
                labels = np.frombuffer(zstd.decompress(reader.read(label_bytes)), np.uint8)
                deltas = np.frombuffer(zstd.decompress(reader.read(bin_bytes)), np.uint16)
                yield np.cumsum(deltas, dtype=np.uint16), labels.reshape(height, width)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass(frozen=True)
class BestF1Point:
    """The component threshold of one protocol: its value in score units (reported), the stored
    code it compares against and how (`>=` for exact, `>` for SMIYC)."""

    value: float
    code: int
    inclusive: bool
    predicted: str
    note: str


def exact_point(curve: BinaryCurve | None) -> BestF1Point | None:
    """Best-F1 point of the 65536-bin curve: a bin edge b / 65536; floor(score * 65536) >= b
    holds exactly when score >= b / 65536. None without anomaly pixels."""
    if curve is None or curve.n_pos == 0:
        return None
    value = best_f1(curve)[1]
    return BestF1Point(
        value,
        int(value * FINE_BINS),
        True,
        "score >= value",
        "the data set's best-F1 pixel threshold (SMIYC) at 1/65536",
    )


def _float16_codes(stored: np.ndarray) -> np.ndarray:
    """uint16 codes of non-negative float16 values, in the order of the values (their bit
    patterns sort like the numbers; -0 becomes 0)."""
    return stored.view(np.uint16) & np.uint16(0x7FFF)


def smiyc_codes(scores: np.ndarray) -> np.ndarray:
    """uint16 codes of SMIYC's stored float16 scores, in the order of their values."""
    return _float16_codes(to_float16(scores))


def smiyc_point(acc: SmiycPixelAccumulator) -> BestF1Point | None:
    """The SMIYC toolkit's component threshold: the binned best-F1 lower edge of the stored
    float16 scores, applied with `stored > edge`. None when the toolkit's curve is undefined."""
    try:
        values = acc.compute()
    except DegenerateLabelsError:
        return None
    edge = values["best_f1_stored"]  # a percentile: may lie between two float16 values
    nearest = np.array([edge], dtype=np.float16)
    code = int(_float16_codes(nearest)[0])
    if float(nearest[0]) > edge:
        code -= 1  # the last code whose value is <= edge: stored > edge is code > it
    return BestF1Point(
        values["best_f1_threshold"],
        code,
        False,
        "float16 stored score > stored value (SMIYC)",
        "SMIYC's binned best-F1 threshold of the stored float16 scores",
    )


def components_at_threshold(
    spill: ScoreSpill,
    point: BestF1Point,
    *,
    track: str,
    min_pred_size: int | None,
    min_gt_size: int | None,
) -> dict[str, float]:
    """SMIYC component metrics of the spilled frames at `point` (codes compared exactly)."""
    acc = ComponentMetricAccumulator(
        threshold=point.value,
        track=track,
        min_pred_size=min_pred_size,
        min_gt_size=min_gt_size,
        inclusive=point.inclusive,
    )
    for kept_codes, labels in spill.frames():
        passed = kept_codes >= point.code if point.inclusive else kept_codes > point.code
        mask = np.zeros(labels.shape, dtype=bool)
        mask[labels != VOID] = passed
        acc.update_mask(mask, labels)
    return acc.compute()
