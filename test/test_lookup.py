"""The uint8 table lookup region masks and drivable spans use: the same values as numpy indexing
for every shape the callers pass, in the table's dtype, and a clear error for anything else."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.lookup import lookup_uint8


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
