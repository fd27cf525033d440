"""Table lookups on uint8 and uint16 maps (class ids, labels, quantised scores) at OpenCV's speed.

numpy's `table.take(values)` first widens every index to a 64-bit integer: ~5 ms for a 1920x1080
map here, where `cv2.LUT` takes ~0.8 ms (uint8) or ~1.4 ms (uint16, one thread). Region masks,
label remapping, calibration bins and the overlay's blend run per frame in bag-eval and the node,
so they go through these functions. OpenCV reads 16-bit maps with a 65536-entry table from
version 5; with an older OpenCV (a robot's python3-opencv 4.x) `lookup_uint16` takes numpy's path,
same values.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def lookup_uint8(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`table[values]` for a uint8 `values` array and a 256-entry uint8 or bool `table` (a new
    array of `values`' shape and `table`'s dtype)."""
    _check(table, values, np.uint8)
    if values.size == 0 or values.ndim > 2:
        return table.take(values)
    return _opencv_lookup(table, values)


def lookup_uint16(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`table[values]` for a uint16 `values` array (1-D or 2-D through OpenCV, others through
    numpy) and a 65536-entry uint8 or bool `table` (a new array of `values`' shape and `table`'s
    dtype)."""
    _check(table, values, np.uint16)
    if values.size == 0 or values.ndim > 2 or not _opencv_reads_uint16():
        return table.take(values)
    return _opencv_lookup(table, values)


def _opencv_lookup(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """cv2.LUT of a 1-D or 2-D map (OpenCV maps 2-D arrays one to one: a 1-D one goes as a row)."""
    rows = values if values.ndim == 2 else values.reshape(1, -1)
    return cv2.LUT(rows, table.view(np.uint8)).view(table.dtype).reshape(values.shape)


def _check(table: np.ndarray, values: np.ndarray, dtype: type) -> None:
    entries = 1 << (8 * np.dtype(dtype).itemsize)
    if table.shape != (entries,) or table.dtype not in (np.uint8, np.bool_):
        raise ValueError(
            f"a lookup table has {entries} uint8 or bool entries, got {table.dtype} {table.shape}"
        )
    name = np.dtype(dtype).name
    if values.dtype != dtype:
        raise ValueError(f"lookup_{name} needs {name} values, got {values.dtype}")


@functools.cache
def _opencv_reads_uint16() -> bool:
    """This OpenCV looks up 16-bit maps in a 65536-entry table, with numpy's values."""
    probe = np.array([[0, 1, 65535]], np.uint16)
    table = np.zeros(1 << 16, np.uint8)
    table[[1, 65535]] = (7, 9)
    try:
        return bool(np.array_equal(cv2.LUT(probe, table), [[0, 7, 9]]))
    except cv2.error:
        return False
