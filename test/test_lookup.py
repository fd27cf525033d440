"""The table lookups region masks, drivable spans, calibration bins and the overlay use: the same
values as numpy indexing for every shape the callers pass, in the table's dtype, through OpenCV
or (an OpenCV without 16-bit tables) numpy, and a clear error for anything else."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros import lookup
from pixood_ros.lookup import lookup_uint8, lookup_uint16


@pytest.mark.parametrize("shape", [(1080, 1920), (1, 1), (7, 9), (5,), (4, 5, 3), (0, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_lookup_equals_numpy_indexing(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(len(shape))
    values = rng.integers(0, 256, shape, dtype=np.uint8)
    table = rng.integers(0, 256, 256, dtype=np.uint8).astype(dtype)
    got = lookup_uint8(table, values)
    assert got.dtype == table.dtype and got.shape == values.shape
    np.testing.assert_array_equal(got, table[values])


def test_a_strided_view_is_looked_up_correctly() -> None:
    values = np.random.default_rng(0).integers(0, 256, (40, 60), dtype=np.uint8)[::2, ::3]
    table = np.arange(256, dtype=np.uint8)[::-1].copy()
    np.testing.assert_array_equal(lookup_uint8(table, values), table[values])


@pytest.mark.parametrize(
    ("table", "values"),
    [
        (np.zeros(255, np.uint8), np.zeros((2, 2), np.uint8)),
        (np.zeros(256, np.float32), np.zeros((2, 2), np.uint8)),
        (np.zeros(256, np.uint8), np.zeros((2, 2), np.int32)),
    ],
    ids=["short table", "float table", "int32 values"],
)
def test_other_tables_and_values_are_refused(table: np.ndarray, values: np.ndarray) -> None:
    with pytest.raises(ValueError):
        lookup_uint8(table, values)


@pytest.mark.parametrize("opencv", [True, False], ids=["opencv", "numpy"])
@pytest.mark.parametrize("shape", [(1080, 1920), (2073600,), (1, 1), (7, 9), (4, 5, 3), (0,)])
@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_uint16_lookup_equals_numpy_indexing(
    shape: tuple[int, ...], dtype: type, opencv: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not opencv:
        monkeypatch.setattr(lookup, "_opencv_reads_uint16", lambda: False)
    rng = np.random.default_rng(len(shape))
    values = rng.integers(0, 1 << 16, shape, dtype=np.uint16)
    values.reshape(-1)[:2] = (0, 65535)[: values.size]  # both ends of the table
    table = rng.integers(0, 256, 1 << 16, dtype=np.uint8).astype(dtype)
    got = lookup_uint16(table, values)
    assert got.dtype == table.dtype and got.shape == values.shape
    np.testing.assert_array_equal(got, table[values])


def test_uint16_lookup_refuses_short_tables_and_other_values() -> None:
    with pytest.raises(ValueError, match="65536"):
        lookup_uint16(np.zeros(256, np.uint8), np.zeros((2, 2), np.uint16))
    with pytest.raises(ValueError, match="uint16 values"):
        lookup_uint16(np.zeros(1 << 16, np.uint8), np.zeros((2, 2), np.uint8))
