"""Component metrics at the data set's best-F1 threshold (SMIYC's operating point) without holding
the frames in memory.

The threshold is only known after the last frame, so the frames have to be seen twice. Pass 1
(the evaluation itself) appends each frame's float32 scores and its (region-restricted) uint8
labels to a temporary file (`ScoreSpill`, 5 bytes per pixel, deleted at the end) while the binned
`PixelMetricAccumulator` counts them. Then:

1. From the histogram, every bin gets an upper bound of the F1 any threshold inside it can reach
   (TP of the bin's lower edge, FP of the next edge); only bins whose bound reaches the best F1
   already achieved at a bin edge can hold the exact optimum (usually one or two bins).
2. One pass over the file collects the distinct scores in those bins with their label counts and
   forms the exact curve points there: the threshold equals `pixel_metrics(...)`'s
   `best_f1_threshold` (same F1 formula, same first-maximum rule) on all frames at once.
3. A second pass computes the components with `score >= threshold`, the rule of
   `pixood_ros.metrics.component_metrics(..., threshold=None)`.

A second pass over the output bag was not used because it may be switched off (--no-output-bag),
live mode has none of its own, and the labels would have to be re-paired and re-restricted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pixood_ros.metrics.components import ComponentMetricAccumulator

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
    """Append-only temporary file of (scores, labels) frames; read back one frame at a time."""

    def __init__(self, directory: Path | None = None) -> None:
        prefix = f"{SPILL_PREFIX}{os.getpid()}_"
        self._dir = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
        self.path = self._dir / "scores.bin"
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._frames: list[tuple[int, int, int]] = []  # (offset, height, width)
        self._offset = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes_written(self) -> int:
        return self._offset

    def append(self, scores: np.ndarray, labels: np.ndarray) -> None:
        if scores.shape != labels.shape or scores.ndim != 2:
            raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be HxW")
        height, width = scores.shape
        # the arrays' own buffers, without a copy
        self._file.write(np.ascontiguousarray(scores, dtype=np.float32).data)
        self._file.write(np.ascontiguousarray(labels, dtype=np.uint8).data)
        self._frames.append((self._offset, height, width))
        self._offset += 5 * height * width

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self._file.flush()
        with open(self.path, "rb") as reader:
            for offset, height, width in self._frames:
                reader.seek(offset)
                count = height * width
                scores = np.fromfile(reader, np.float32, count).reshape(height, width)
                labels = np.fromfile(reader, np.uint8, count).reshape(height, width)
                yield scores, labels

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _bin_index(scores: np.ndarray, bins: int) -> np.ndarray:
    """The bin `PixelMetricAccumulator` puts each score in (same arithmetic)."""
    return np.minimum((scores.astype(np.float64) * bins).astype(np.int64), bins - 1)


def exact_best_f1_threshold(
    pos_counts: np.ndarray, neg_counts: np.ndarray, spill: ScoreSpill
) -> float | None:
    """The exact best-F1 curve threshold of all spilled pixels (None without anomaly pixels).

    `pos_counts` / `neg_counts` are the histogram of the same pixels from
    `PixelMetricAccumulator` (bin b holds scores in [b/B, (b+1)/B))."""
    pos = np.asarray(pos_counts, np.int64)
    neg = np.asarray(neg_counts, np.int64)
    bins = pos.size
    n_pos = int(pos.sum())
    if n_pos == 0:
        return None
    tp_from = np.cumsum(pos[::-1])[::-1]  # pixels in bins >= b
    fp_from = np.cumsum(neg[::-1])[::-1]
    fp_above = np.append(fp_from[1:], 0)  # pixels in bins > b
    tp_above = np.append(tp_from[1:], 0)
    used = (pos + neg) > 0
    edge_f1 = 2 * tp_from / (tp_from + fp_from + n_pos)
    achieved = float(edge_f1[used].max())
    # a threshold inside bin b keeps at most tp_from[b] anomalies and at least fp_above[b] false
    # alarms; F1 rises with TP and falls with FP, so this bounds every point of the bin
    bound = 2 * tp_from / (tp_from + fp_above + n_pos)
    candidates = np.flatnonzero(used & (bound >= achieved))
    is_candidate = np.zeros(bins, dtype=bool)
    is_candidate[candidates] = True

    values, positives, negatives = [], [], []
    for scores, labels in spill.frames():
        keep = labels != VOID
        kept = scores[keep]
        chosen = is_candidate[_bin_index(kept, bins)]
        if not chosen.any():
            continue
        unique, inverse = np.unique(kept[chosen], return_inverse=True)
        positive = labels[keep][chosen] == 1
        values.append(unique)
        positives.append(np.bincount(inverse, weights=positive, minlength=unique.size))
        negatives.append(np.bincount(inverse, weights=~positive, minlength=unique.size))
    unique, inverse = np.unique(np.concatenate(values), return_inverse=True)
    pos_at = np.bincount(inverse, weights=np.concatenate(positives)).astype(np.int64)
    neg_at = np.bincount(inverse, weights=np.concatenate(negatives)).astype(np.int64)
    # exact curve points inside the candidate bins, highest score first
    order = np.arange(unique.size)[::-1]
    unique, pos_at, neg_at = unique[order], pos_at[order], neg_at[order]
    bin_of = _bin_index(unique, bins)
    tp = np.empty(unique.size, np.int64)
    fp = np.empty(unique.size, np.int64)
    for b in np.unique(bin_of):
        inside = bin_of == b
        tp[inside] = tp_above[b] + np.cumsum(pos_at[inside])
        fp[inside] = fp_above[b] + np.cumsum(neg_at[inside])
    f1 = 2 * tp / (tp + fp + n_pos)
    return float(unique[int(np.argmax(f1))])


def components_at_threshold(
    spill: ScoreSpill,
    threshold: float,
    *,
    track: str,
    min_pred_size: int | None,
    min_gt_size: int | None,
) -> dict[str, float]:
    """SMIYC component metrics of the spilled frames with `score >= threshold`."""
    acc = ComponentMetricAccumulator(
        threshold=threshold,
        track=track,
        min_pred_size=min_pred_size,
        min_gt_size=min_gt_size,
        inclusive=True,
    )
    for scores, labels in spill.frames():
        acc.update(scores, labels)
    return acc.compute()
