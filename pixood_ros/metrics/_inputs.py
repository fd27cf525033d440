"""Turn the many shapes callers hand us (one array, a stack, a list of per-image arrays) into
flat, validated 1-D arrays, so every metric checks its inputs the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayOrList = np.ndarray | Sequence[np.ndarray]


def as_pairs(
    a: ArrayOrList, b: ArrayOrList, name_a: str, name_b: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair up per-image arrays: a list/tuple holds one array per image, else one array."""
    a_is_seq = isinstance(a, (list, tuple))
    b_is_seq = isinstance(b, (list, tuple))
    if a_is_seq != b_is_seq:
        raise ValueError(
            f"{name_a} and {name_b} must both be arrays or both lists of per-image arrays"
        )
    if a_is_seq:
        if len(a) != len(b):
            raise ValueError(f"{name_a} has {len(a)} images but {name_b} has {len(b)}")
        pairs = [(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True)]
    else:
        pairs = [(np.asarray(a), np.asarray(b))]
    for i, (x, y) in enumerate(pairs):
        if x.shape != y.shape:
            where = f" (image {i})" if a_is_seq else ""
            raise ValueError(
                f"{name_a} shape {x.shape} does not match {name_b} shape {y.shape}{where}"
            )
    return pairs


def flatten_pairs(
    a: ArrayOrList, b: ArrayOrList, name_a: str, name_b: str
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-image arrays into two aligned 1-D arrays (raveled row-major)."""
    pairs = as_pairs(a, b, name_a, name_b)
    if not pairs:
        raise ValueError(f"no images given ({name_a} is an empty list)")
    flat_a = np.concatenate([x.ravel() for x, _ in pairs])
    flat_b = np.concatenate([y.ravel() for _, y in pairs])
    return flat_a, flat_b


def check_finite_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    """Scores must be real numbers: NaN would silently sort to one end and distort every curve."""
    if scores.dtype == bool or not np.issubdtype(scores.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {scores.dtype}")
    if np.issubdtype(scores.dtype, np.floating) and not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return scores


def binary_labels(labels: np.ndarray, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep mask, positive mask over kept pixels) for 0/1 labels with a void value."""
    if labels.dtype == bool:
        keep = np.ones(labels.shape, dtype=bool)
        return keep, labels
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(
                f"labels must be integers (0, 1 or ignore_index), got dtype {labels.dtype}"
            )
    keep = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, dtype=bool)
    kept = labels[keep]
    bad = (kept != 0) & (kept != 1)
    if np.any(bad):
        values = np.unique(kept[bad])[:10].tolist()
        raise ValueError(
            f"labels must be 0 (in-distribution), 1 (anomaly) or {ignore_index} (void); "
            f"found {values}"
        )
    return keep, kept == 1
