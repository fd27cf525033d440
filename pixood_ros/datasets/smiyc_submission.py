"""SMIYC submission files (docs/evaluation.md §3.6): one HDF5 file per frame,
`anomaly_p/<method>/<split>/<frame>.hdf5`, holding the frame's anomaly scores as a float16
HxW dataset named `value` (gzip level 9), split `AnomalyTrack-all` (RoadAnomaly21) or
`ObstacleTrack-all` (RoadObstacle21): what the road-anomaly-benchmark toolkit's
`Evaluation.save_output` writes and its metrics read back. Scores are stored through the
rank-preserving map of `pixood_ros.metrics.score_storage`, so float16 keeps their order.
h5py is needed only here (imported when a file is written or read).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from pixood_ros import durable
from pixood_ros.cli import UserError
from pixood_ros.metrics.score_storage import to_float16

#: the toolkit's persistence name of each track's frames
SPLIT_NAMES = {"smiyc-ra21": "AnomalyTrack-all", "smiyc-ro21": "ObstacleTrack-all"}
DATASET_KEY = "value"
GZIP_LEVEL = 9


def _h5py() -> ModuleType:
    try:
        import h5py
    except ImportError as exc:
        raise UserError("SMIYC submission files are HDF5: install h5py (pip install h5py)") from exc
    return h5py


def submission_path(out_dir: Path, method: str, layout_name: str, frame: str) -> Path:
    """Where the toolkit looks for the scores of `frame` (its image file's stem)."""
    if layout_name not in SPLIT_NAMES:
        raise UserError(f"SMIYC submissions exist for {', '.join(SPLIT_NAMES)}, not {layout_name}")
    return out_dir / "anomaly_p" / method / SPLIT_NAMES[layout_name] / f"{frame}.hdf5"


def write_scores(path: Path, scores: np.ndarray) -> None:
    """One frame's file, complete or absent (written beside it, then renamed)."""
    h5py = _h5py()
    path.parent.mkdir(parents=True, exist_ok=True)
    with durable.replacing(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset(
            DATASET_KEY, data=to_float16(scores), compression="gzip", compression_opts=GZIP_LEVEL
        )


def read_scores(path: Path) -> np.ndarray:
    """The stored float16 map of one frame, as the toolkit reads it."""
    with _h5py().File(path, "r") as handle:
        return handle[DATASET_KEY][:]
